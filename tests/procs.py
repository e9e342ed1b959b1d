"""Start and stop the real processes tests drive: sandbox, gunicorn, RQ worker, Redis.

A thin layer over the `stack` package, which holds the one implementation of these helpers
(the benchmark uses it too). Here every process logs to a temporary file that outlives it (read
it with `proc.log()`), and like every child `stack` starts gets PR_SET_PDEATHSIG, so a crashed
pytest leaves no servers behind (tests start processes from the main thread only).
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import stack
from stack import BIN, PYTHON, ROOT, descendants, free_port, wait_until

__all__ = [
    "BIN",
    "PYTHON",
    "ROOT",
    "Proc",
    "descendants",
    "free_port",
    "start_gunicorn",
    "start_redis",
    "start_sandbox",
    "start_worker",
    "wait_until",
]


class Proc(stack.Proc):
    """A child process with its log file and, for servers, its base URL."""

    def stop(
        self, sig: int = signal.SIGTERM, timeout: float = 15.0, *, family: bool = False
    ) -> None:
        """Signal the process group, then kill it (and its descendants) if it lingers.

        Only the group, by default: RQ's work horse, in a session of its own, may finish its
        job (a warm stop); `kill()` is the crash.
        """
        super().stop(sig, timeout, family=family)


def _start(name: str, args: list[str], env: dict[str, str] | None) -> Proc:
    """Start a child in its own session, logging to a new temporary file."""
    handle, log = tempfile.mkstemp(prefix=f"pc-{name}-", suffix=".log")
    os.close(handle)
    return Proc.start(name, args, Path(log), env)


def _spawn(args: list[str], env: dict[str, str] | None, name: str) -> Proc:
    """Start `args` (see _start); the order of arguments tests use."""
    return _start(name, args, env)


def start_sandbox(extra_env: dict[str, str] | None = None, port: int = 0) -> Proc:
    """The Punchh sandbox on a free port (or on `port`, to bring one back after a stop)."""
    return stack.start_sandbox(_start, port, extra_env)


def start_gunicorn(env: dict[str, str], workers: int = 2, threads: int = 8) -> Proc:
    """The connector under gunicorn, with the repository's gunicorn.conf.py."""
    return stack.start_gunicorn(_start, env, workers=workers, threads=threads)


def start_worker(env: dict[str, str], maintenance_seconds: int = 1) -> Proc:
    """A real RQ worker process (`python -m workers`), scheduler on."""
    return stack.start_worker(_start, env, maintenance_seconds)


def start_redis(port: int, data_dir: Path) -> Proc:
    """A private redis-server with append-only persistence (fsync on every write) on `port`,
    for tests that stop Redis: started again on the same port and folder, it keeps its data."""
    return stack.start_redis(_start, port, data_dir, persist=True)


def restart_under_load(
    redis_proc: Proc, port: int, data_dir: Path, send: Callable[[threading.Event], None]
) -> Proc:
    """Stop and restart a private Redis while `send` streams requests; the restarted Redis.

    `send` runs in its own thread until the event is set: a second and a half before the
    stop, a second and a half of outage, two seconds after the restart.
    """
    stop = threading.Event()
    sender = threading.Thread(target=send, args=(stop,))
    sender.start()
    try:
        time.sleep(1.5)
        redis_proc.stop()  # SIGTERM: Redis syncs its append-only file and exits
        time.sleep(1.5)
        restarted = start_redis(port, data_dir)
        time.sleep(2.0)
    finally:
        stop.set()
        sender.join()
    return restarted
