"""Start and stop real child processes, and read about them from /proc.

The one implementation of the process helpers: the benchmark uses it through `Stack`, and the
test suite through tests/procs.py. Every child gets its own session (so a signal to the group
reaches its helpers) and asks the kernel to SIGTERM it if the thread that started it dies first
(PR_SET_PDEATHSIG), so not even a SIGKILLed benchmark leaves servers behind. `Stack` stops
everything it started, in reverse order, on the way out of its `with` block, whatever happened
inside.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
_PR_SET_PDEATHSIG = 1
_SANDBOX_URL = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


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


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (which may contain spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    """Every live descendant of a process, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the given processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue  # exited in between
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of one process."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0


def client_ports(pids: list[int], server_port: int) -> set[int]:
    """Local ports of the TCP connections these processes hold open to `server_port`."""
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            links = [os.readlink(fd) for fd in fd_dir.iterdir()]
        except OSError:
            continue
        inodes.update(link[8:-1] for link in links if link.startswith("socket:["))
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, remote, inode = cols[1], cols[2], cols[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


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


# --- starting the pieces -------------------------------------------------------------------------
P = TypeVar("P", bound=Proc)
#: Starts a child: (name, args, extra environment) -> Proc. `Stack.spawn` is one.
Spawn = Callable[[str, list[str], dict[str, str] | None], P]


def failed(proc: Proc, what: str) -> RuntimeError:
    """Stop a process that did not come up; the error to raise, with the end of its log."""
    proc.stop()
    return RuntimeError(f"{what}; its log ({proc.log_path}):\n{proc.log()[-4000:]}")


def start_redis(
    spawn: Spawn[P], port: int, data_dir: Path, *, persist: bool, name: str = "redis"
) -> P:
    """A private redis-server on `port`, ready (it answers PING); `proc.url` is its db 0.

    With `persist`, an append-only file fsynced on every write, so a restart on the same port
    and `data_dir` keeps the data; without, no persistence at all.
    """
    if persist:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"]
    else:
        persistence = ["--appendonly", "no"]
    proc = spawn(
        name,
        [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(data_dir), "--save", "", *persistence,
        ],
        None,
    )
    proc.url = f"redis://127.0.0.1:{port}/0"

    def up() -> bool:
        if not proc.alive():
            return True
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    if not wait_until(up, 10) or not proc.alive():
        raise failed(proc, "redis-server did not start")
    return proc


def start_sandbox(spawn: Spawn[P], port: int = 0, env: dict[str, str] | None = None) -> P:
    """The Punchh sandbox (quiet: no per-request lines) on `port`, or on a free one with 0;
    `proc.url` is the address it says it listens on."""
    proc = spawn(
        "sandbox",
        [PYTHON, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port), "--quiet"],
        env,
    )
    found: list[str] = []

    def ready() -> bool:
        match = _SANDBOX_URL.search(proc.log())
        if match:
            found.append(match.group(1))
        return bool(match) or not proc.alive()

    wait_until(ready, 20)
    if not found:
        raise failed(proc, "the sandbox did not start")
    proc.url = found[0]
    return proc


def start_gunicorn(
    spawn: Spawn[P],
    env: dict[str, str],
    *,
    workers: int,
    threads: int,
    app: str | None = None,
    name: str = "gunicorn",
) -> P:
    """gunicorn on a free port with the repository's gunicorn.conf.py (`app` overrides its
    wsgi_app); ready once /healthz answers and every worker has booted."""
    port = free_port()
    full = dict(env)
    full.update(
        {"PORT": str(port), "WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads)}
    )
    args = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"]
    if app:
        args.append(app)
    proc = spawn(name, args, full)
    proc.url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if not proc.alive():
            return True
        try:
            if httpx.get(proc.url + "/healthz", timeout=1).status_code >= 500:
                return False
        except httpx.HTTPError:
            return False
        # Every worker booted: the master's children are the workers (gthread: no forks).
        return len(descendants(proc.pid)) >= workers

    if not wait_until(up, 60, 0.1) or not proc.alive():
        raise failed(proc, f"gunicorn ({name}) did not come up")
    return proc


def start_worker(
    spawn: Spawn[P], env: dict[str, str], maintenance_seconds: int, *, reaper: bool = False
) -> P:
    """The RQ worker the Procfile runs (`python -m workers`), scheduler on; ready once it
    listens on its queue.

    With `reaper`, run under bench.reaper, so its forks (scheduler, work horse) end with it
    even if the parent is killed outright; `Proc.family()[1]` is then the worker itself.
    """
    args = [PYTHON, "-m", "workers", "--maintenance-seconds", str(maintenance_seconds)]
    if reaper:
        args = [PYTHON, "-m", "bench.reaper", *args]
    proc = spawn("worker", args, env)
    ok = wait_until(lambda: "Listening on" in proc.log() or not proc.alive(), 30)
    if not ok or not proc.alive():
        raise failed(proc, "the RQ worker did not start")
    return proc


class Stack:
    """Starts processes and stops every one of them on exit (reverse order)."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self.procs: list[Proc] = []
        #: A folder made here is removed on a clean exit; one given by the caller is theirs.
        self._own_dir = log_dir is None
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="pc-bench-"))

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()
        if self._own_dir:
            if exc_type is None:
                shutil.rmtree(self.log_dir, ignore_errors=True)
            else:
                print(f"process logs kept in {self.log_dir}", file=sys.stderr)

    def stop_all(self) -> None:
        """Stop every process started: all signalled first (newest first), then waited for."""
        procs, self.procs = self.procs[::-1], []
        signalled = []
        for proc in procs:
            try:
                signalled.append((proc, proc.terminate()))
            except Exception:  # keep stopping the others
                signalled.append((proc, []))
        for proc, pids in signalled:
            proc.finish(pids)

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        """Start a child (see Proc.start), logging to `<name>.log` in the log directory."""
        proc = Proc.start(name, args, self.log_dir / f"{name}.log", env)
        self.procs.append(proc)
        return proc

    # --- the pieces ---------------------------------------------------------------------
    def redis(self, name: str = "redis") -> Proc:
        """A private redis-server: no persistence, nothing else on it."""
        return start_redis(self.spawn, free_port(), self.log_dir, persist=False, name=name)

    def sandbox(self) -> Proc:
        """The Punchh sandbox on a free port (quiet: no per-request lines)."""
        return start_sandbox(self.spawn)

    def gunicorn(
        self,
        name: str,
        env: dict[str, str],
        *,
        workers: int,
        threads: int,
        app: str | None = None,
    ) -> Proc:
        """gunicorn with the repository's gunicorn.conf.py; `app` overrides its wsgi_app."""
        return start_gunicorn(
            self.spawn, env, workers=workers, threads=threads, app=app, name=name
        )

    def worker(self, env: dict[str, str], maintenance_seconds: int = 60) -> Proc:
        """The RQ worker (`python -m workers`) under bench.reaper, so its forks (scheduler,
        work horse) end with it even if the benchmark is killed outright;
        `Proc.family()[1]` is the worker itself."""
        return start_worker(self.spawn, env, maintenance_seconds, reaper=True)
