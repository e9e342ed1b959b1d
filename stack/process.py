"""One real child process: started in a session of its own, tied to its parent, stopped whole.

Every child gets its own session (so a signal to the group reaches its helpers) and asks the
kernel to SIGTERM it if the thread that started it dies first (PR_SET_PDEATHSIG), so not even a
SIGKILLed parent leaves servers behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from stack.procfs import descendants

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
_PR_SET_PDEATHSIG = 1


def _libc_prctl() -> Callable[..., int] | None:
    """libc's prctl(), looked up once here rather than in a child between fork and exec."""
    try:
        prctl: Callable[..., int] = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _libc_prctl()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Have the kernel SIGTERM this child when the thread that started it goes away."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Proc:
    """A child process, its log file and, for servers, its base URL."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(
        cls, name: str, args: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> Self:
        """Start `args` in a session of its own, output appended to `log_path`.

        The environment is a clean one plus `env`; the child gets PR_SET_PDEATHSIG, so the
        kernel ends it if the calling thread dies. Start children from the main thread only.
        """
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONUNBUFFERED": "1",
            "HOME": str(ROOT),
            "LANG": "C.UTF-8",
        }
        if os.environ.get("PC_BENCH_RUN"):
            # Marks every process of a benchmark run, so a test can check none outlives it.
            full_env["PC_BENCH_RUN"] = os.environ["PC_BENCH_RUN"]
        full_env.update(env or {})
        with log_path.open("ab") as handle:
            popen = subprocess.Popen(
                args,
                cwd=ROOT,
                env=full_env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        return cls(name, popen, log_path)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def log(self) -> str:
        """Everything the process wrote so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.popen.poll() is None

    def family(self) -> list[int]:
        """This process and every live descendant (gunicorn workers, RQ's scheduler and horse)."""
        return [self.pid, *descendants(self.pid)] if self.alive() else []

    def terminate(self, sig: int = signal.SIGTERM, *, family: bool = True) -> list[int]:
        """Send `sig` to the process group and, with `family`, to every descendant as well;
        returns the pids signalled one by one.

        RQ's work horse runs in a session of its own: a group signal alone spares it, so the
        worker stops warm (it lets the horse finish its job).
        """
        pids = self.family() if family else []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        return pids

    def finish(self, pids: list[int], timeout: float = 10.0) -> None:
        """Wait for the exit that terminate() asked for; SIGKILL whatever lingers."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        for pid in [*pids, *descendants(self.pid)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def stop(
        self, sig: int = signal.SIGTERM, timeout: float = 10.0, *, family: bool = True
    ) -> None:
        """Signal (see terminate()) and wait, killing what does not go."""
        self.finish(self.terminate(sig, family=family), timeout)

    def kill(self) -> None:
        """SIGKILL the process and every descendant at once: a crash, no clean-up of any kind."""
        for pid in self.family():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05
) -> bool:
    """Poll `predicate()` until it is truthy or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
