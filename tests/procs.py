"""Start and stop the real processes tests drive: sandbox, gunicorn, RQ worker."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


@dataclass
class Proc:
    """A child process with its log file and, for servers, its base URL."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Signal the process group, then kill it if it lingers."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)

    def kill(self) -> None:
        """SIGKILL the process and every descendant (a crash; RQ's work horse has its own
        session, so killing the process group alone would spare it)."""
        for pid in [*descendants(self.popen.pid), self.popen.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait(5)


def descendants(pid: int) -> list[int]:
    """Every live descendant of a process, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(args: list[str], env: dict[str, str] | None, name: str) -> Proc:
    log = Path(tempfile.mkstemp(prefix=f"pc-{name}-", suffix=".log")[1])
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1", "HOME": str(ROOT)}
    full_env.update(env or {})
    handle = log.open("wb")
    popen = subprocess.Popen(
        args,
        cwd=ROOT,
        env=full_env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()
    return Proc(popen, log)


def wait_until(predicate: object, timeout: float = 20.0, interval: float = 0.05) -> bool:
    """Poll `predicate()` until it is truthy or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False


def start_sandbox(extra_env: dict[str, str] | None = None, port: int = 0) -> Proc:
    """The Punchh sandbox on a free port (or on `port`, to bring one back after a stop)."""
    proc = _spawn(
        [PYTHON, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port), "--quiet"],
        extra_env,
        "sandbox",
    )
    pattern = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
    found: list[str] = []

    def ready() -> bool:
        match = pattern.search(proc.log())
        if match:
            found.append(match.group(1))
        return bool(match) or not proc.alive()

    wait_until(ready, 20)
    if not found:
        proc.stop()
        raise RuntimeError(f"sandbox did not start:\n{proc.log()}")
    proc.url = found[0]
    return proc


def _wait_http(proc: Proc, path: str, timeout: float = 30.0) -> None:
    def up() -> bool:
        if not proc.alive():
            raise RuntimeError(f"process exited:\n{proc.log()}")
        try:
            return httpx.get(proc.url + path, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    if not wait_until(up, timeout, 0.1):
        proc.stop()
        raise RuntimeError(f"{proc.url} did not come up:\n{proc.log()}")


def start_gunicorn(env: dict[str, str], workers: int = 2, threads: int = 8) -> Proc:
    """The connector under gunicorn, with the repository's gunicorn.conf.py."""
    port = free_port()
    full = dict(env)
    full.update({"PORT": str(port), "WEB_CONCURRENCY": str(workers),
                 "GUNICORN_THREADS": str(threads)})
    proc = _spawn([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"], full, "gunicorn")
    proc.url = f"http://127.0.0.1:{port}"
    _wait_http(proc, "/healthz")
    return proc


def start_worker(env: dict[str, str], maintenance_seconds: int = 1) -> Proc:
    """A real RQ worker process (`python -m workers`), scheduler on."""
    proc = _spawn(
        [PYTHON, "-m", "workers", "--maintenance-seconds", str(maintenance_seconds)],
        env,
        "worker",
    )
    ok = wait_until(lambda: "Listening on" in proc.log() or not proc.alive(), 30)
    if not ok or not proc.alive():
        proc.stop()
        raise RuntimeError(f"worker did not start:\n{proc.log()}")
    return proc


def start_redis(port: int, data_dir: Path) -> Proc:
    """A private redis-server with append-only persistence, for tests that stop Redis."""
    proc = _spawn(
        [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(data_dir), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "",
        ],
        None,
        "redis",
    )
    proc.url = f"redis://127.0.0.1:{port}/0"

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    if not wait_until(up, 10):
        proc.stop()
        raise RuntimeError(f"redis did not start:\n{proc.log()}")
    return proc
