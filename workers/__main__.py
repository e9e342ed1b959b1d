"""`python -m workers`: an RQ worker on the configured Redis, scheduler on."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import redis

from wiring.logs import configure_logging
from workers import context
from workers.worker import ConnectorWorker

log = logging.getLogger("connector.worker")

#: How often (seconds) the worker runs RQ's maintenance and our ledger sweep.
DEFAULT_MAINTENANCE_SECONDS = 60
#: Longest wait between attempts to get back to an unreachable Redis.
MAX_RECONNECT_SECONDS = 30.0


def main(argv: list[str] | None = None) -> None:
    """Run a worker until SIGTERM (or until the queue is empty with --burst)."""
    parser = argparse.ArgumentParser(prog="python -m workers")
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    parser.add_argument(
        "--maintenance-seconds",
        type=int,
        default=DEFAULT_MAINTENANCE_SECONDS,
        help="interval of RQ maintenance and the ledger sweep",
    )
    args = parser.parse_args(argv)
    services = context.services()  # fails loudly here on missing configuration
    configure_logging(services.settings.log_level)
    # Decided once, before any job: the work horses inherit it (ledger/durability.py).
    services.ledger.decide_durability()

    def make_worker() -> ConnectorWorker:
        return ConnectorWorker(
            [services.queue],
            connection=services.redis,
            maintenance_interval=args.maintenance_seconds,
            # RQ blocks on the queue for worker_ttl - 15 s and runs maintenance only between
            # waits; this keeps the ledger sweep on its interval even when the queue is idle.
            worker_ttl=max(args.maintenance_seconds, 1) + 15,
        )

    run_until_stopped(
        make_worker,
        burst=args.burst,
        with_scheduler=True,
        logging_level=logging.getLevelName(services.settings.log_level),
    )


def run_until_stopped(make_worker: Callable[[], ConnectorWorker], **work: Any) -> None:
    """Run workers one after another until a requested stop.

    RQ survives a Redis outage while it waits on the queue, but not one that strikes during a
    job or a heartbeat: the worker then exits. A platform restarts a crashed process only
    after a back-off, so the process starts a fresh worker itself once Redis answers again;
    the sweeper re-queues whatever the lost one was doing.
    """
    delay = 1.0
    while True:
        try:
            make_worker().work(**work)
            return  # stopped by SIGTERM/SIGINT, or a --burst run found the queue empty
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.error(
                "worker lost Redis; starting a new one",
                extra={"error": type(exc).__name__, "retry_in": delay},
            )
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_, event=stop: event.set())
        if stop.wait(delay):
            return
        delay = min(delay * 2, MAX_RECONNECT_SECONDS)


if __name__ == "__main__":
    main()
