"""The RQ worker class the Procfile runs: Heroku-safe shutdown, plus the ledger sweeper."""

from __future__ import annotations

import logging

from rq.worker import HerokuWorker

from ledger.sweep import sweep
from workers import context
from workers.commit import commit_distribution  # noqa: F401 - loaded once, before forking

log = logging.getLogger("connector.worker")


class ConnectorWorker(HerokuWorker):
    """HerokuWorker that lets an in-flight Punchh POST finish inside the 30 s SIGTERM window."""

    #: Seconds between SIGTERM and cancelling the job: Punchh's timeouts (25 s) fit inside it,
    #: and Heroku's SIGKILL comes at 30 s.
    imminent_shutdown_delay = 27

    def run_maintenance_tasks(self) -> None:
        """RQ's own clean-up, then re-queue ledger records that lost their job."""
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        try:
            services = context.services()
            count = sweep(
                services.ledger,
                services.queue,
                stale_seconds=services.settings.sweep_stale_seconds,
            )
        except Exception:  # the sweep must never stop the worker loop
            log.exception("ledger sweep failed")
        else:
            if count:
                log.warning("ledger sweep re-queued %d distributions", count)
