"""Enqueueing the workers' jobs: the one place that names them and sets their RQ options."""

from __future__ import annotations

from datetime import timedelta

from rq import Queue, Retry

from ledger.store import Ledger

#: The commit job, importable by path so the web tier never imports worker code.
COMMIT_JOB = "workers.commit.commit_distribution"
#: The alert job: one operator message per state that needs a human.
ALERT_JOB = "workers.alerts.send_alert"
#: RQ's own limit on one commit job; our Punchh timeouts keep a run far below it.
COMMIT_JOB_TIMEOUT = 300
#: RQ deletes a job as soon as it succeeds: the ledger is the record that matters, and a
#: finished job kept around would cost each distribution about as much memory again as its
#: record (bench/README.md, bytes per distribution). A job that raised is kept for its
#: failure_ttl.
JOB_RESULT_TTL = 0


def enqueue_commit(
    queue: Queue, ledger: Ledger, distribution_id: str, *, delay: float = 0.0
) -> str:
    """Queue (or schedule) the commit job and note its id on the record, in one transaction."""
    with ledger.redis.pipeline(transaction=True) as pipe:
        options = {
            "args": (distribution_id,),
            "job_timeout": COMMIT_JOB_TIMEOUT,
            "result_ttl": JOB_RESULT_TTL,
            "failure_ttl": 7 * 86400,
            "description": f"commit {distribution_id}",
            "pipeline": pipe,
        }
        if delay > 0:
            job = queue.enqueue_in(timedelta(seconds=delay), COMMIT_JOB, **options)
        else:
            job = queue.enqueue(COMMIT_JOB, **options)
        pipe.hset(ledger.record_key(distribution_id), "job_id", job.id)
        pipe.execute()
    return str(job.id)


def enqueue_alert(queue: Queue, distribution_id: str, state: str) -> None:
    """Queue one alert for a state that needs an operator (never per recipient)."""
    queue.enqueue(
        ALERT_JOB,
        args=(distribution_id, state),
        job_timeout=60,
        result_ttl=JOB_RESULT_TTL,
        failure_ttl=86400,
        description=f"alert {state} {distribution_id}",
        # Needs the worker's scheduler (on in workers/__main__.py); the job raises on failure.
        retry=Retry(max=3, interval=[10, 60, 300]),
    )
