"""Start the project's pieces as real processes, ready to use, and stop them all on the way out.

Redis, the Punchh sandbox, gunicorn (with the repository's gunicorn.conf.py) and the RQ worker,
each started through a `Spawn` (the caller chooses where logs go and how a process stops).
`Stack` stops everything it started, in reverse order, on the way out of its `with` block,
whatever happened inside.
"""

from __future__ import annotations

import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx

from stack.process import BIN, PYTHON, Proc, free_port, wait_until
from stack.procfs import descendants

_SANDBOX_URL = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")

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

    With `reaper`, run under stack.reaper, so its forks (scheduler, work horse) end with it
    even if the parent is killed outright; `Proc.family()[1]` is then the worker itself.
    """
    args = [PYTHON, "-m", "workers", "--maintenance-seconds", str(maintenance_seconds)]
    if reaper:
        args = [PYTHON, "-m", "stack.reaper", *args]
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
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="pc-stack-"))

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
        """The RQ worker (`python -m workers`) under stack.reaper, so its forks (scheduler,
        work horse) end with it even if whoever started the stack is killed outright;
        `Proc.family()[1]` is the worker itself."""
        return start_worker(self.spawn, env, maintenance_seconds, reaper=True)
