"""Re-queue distributions that no job will otherwise finish (a crash between two writes)."""

from __future__ import annotations

import logging
import time

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from ledger.jobs import enqueue_commit
from ledger.store import Ledger

log = logging.getLogger("connector.sweeper")

#: Job states in which RQ will still run the job by itself.
PENDING_JOB_STATES = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED})


def sweep(ledger: Ledger, queue: Queue, *, stale_seconds: float, now: float | None = None) -> int:
    """Queue a commit job for every stale active record with no lock and no pending job."""
    now = time.time() if now is None else now
    requeued = 0
    for dist_id in ledger.active_ids(older_than=now - stale_seconds):
        if ledger.lock_held(dist_id):
            continue  # a worker is on it now
        dist = ledger.get(dist_id)
        if dist is None:
            ledger.forget_active(dist_id)
            continue
        if _job_pending(queue, dist.fields.get("job_id")):
            continue
        due = dist.float_field("next_attempt_at")
        if due is not None and due > now:
            continue  # Punchh asked for a wait (Retry-After): never post before it is over
        # The job decides what the state means: queued/resolving → try again; committing →
        # unknown (the POST may have been sent).
        enqueue_commit(queue, ledger, dist_id)
        ledger.record_event(
            dist_id, {"at": _now_iso(now), "by": "sweeper", "note": f"re-queued from {dist.state}"}
        )
        log.warning(
            "re-queued a stale distribution",
            extra={"distribution_id": dist_id, "state": dist.state},
        )
        requeued += 1
    for dist_id in ledger.audience.due_ids(before=now - stale_seconds):
        # A committed audience send still delivering late recipients: its run was lost.
        if ledger.lock_held(dist_id):
            continue
        dist = ledger.get(dist_id)
        if dist is None:
            ledger.audience.clear_due(dist_id)
            continue
        if _job_pending(queue, dist.fields.get("job_id")):
            continue
        enqueue_commit(queue, ledger, dist_id)
        log.warning("re-queued an audience delivery", extra={"distribution_id": dist_id})
        requeued += 1
    return requeued


def _job_pending(queue: Queue, job_id: str | None) -> bool:
    """Whether RQ still holds a job that will run for this record."""
    if not job_id:
        return False
    try:
        job = Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED:
        # A worker that popped the id and then lost Redis (a restart, a kill) leaves the job
        # saying "queued" in no queue: nobody would ever run it, so it is not pending.
        return queue.connection.lpos(queue.key, job_id) is not None
    if status == JobStatus.SCHEDULED:
        return queue.connection.zscore(queue.scheduled_job_registry.key, job_id) is not None
    return status in PENDING_JOB_STATES


def _now_iso(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
