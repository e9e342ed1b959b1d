"""Start and stop real local processes: used by tests, bench and scripts.

`process` is one child (its own session, ended with its parent), `procfs` reads about running
processes from /proc, `pieces` starts Redis, the sandbox, gunicorn and the RQ worker ready to
use (and `Stack` stops all it started), `reaper` ends what a child forked. Nothing here imports
the connector, the benchmark or the tests.
"""

from stack.pieces import (
    Spawn,
    Stack,
    failed,
    start_gunicorn,
    start_redis,
    start_sandbox,
    start_worker,
)
from stack.process import BIN, PYTHON, ROOT, Proc, free_port, wait_until
from stack.procfs import client_ports, cpu_seconds, descendants, rss_bytes

__all__ = [
    "BIN",
    "PYTHON",
    "ROOT",
    "Proc",
    "Spawn",
    "Stack",
    "client_ports",
    "cpu_seconds",
    "descendants",
    "failed",
    "free_port",
    "rss_bytes",
    "start_gunicorn",
    "start_redis",
    "start_sandbox",
    "start_worker",
    "wait_until",
]
