"""`python -m workers`: an RQ worker on the configured Redis, scheduler on."""

from __future__ import annotations

import argparse
import logging

from connector.logs import configure_logging
from workers import context
from workers.worker import ConnectorWorker

#: How often (seconds) the worker runs RQ's maintenance and our ledger sweep.
DEFAULT_MAINTENANCE_SECONDS = 60


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
    worker = ConnectorWorker(
        [services.queue],
        connection=services.redis,
        maintenance_interval=args.maintenance_seconds,
        # RQ blocks on the queue for worker_ttl - 15 s and runs maintenance only between
        # waits; this keeps the ledger sweep on its interval even when the queue is idle.
        worker_ttl=max(args.maintenance_seconds, 1) + 15,
    )
    worker.work(
        burst=args.burst,
        with_scheduler=True,
        logging_level=logging.getLevelName(services.settings.log_level),
    )


if __name__ == "__main__":
    main()
