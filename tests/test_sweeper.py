"""The ledger sweep: a record whose job was never queued (a crash between writes) gets one."""

from __future__ import annotations

import time

import httpx

from ledger import sweep
from ledger.states import State
from tests.helpers import campaigns, dist_request, submit
from wiring.services import Services
from workers.commit import Committer


def sweep_once(services: Services, *, now: float | None = None) -> int:
    """One sweep as the worker's maintenance pass runs it."""
    stale = services.settings.sweep_stale_seconds
    return sweep.sweep(services.ledger, services.queue, stale_seconds=stale, now=now)


def test_record_without_a_job_is_requeued_and_committed(
    services: Services, sandbox: httpx.Client
) -> None:
    # The web process wrote the record, then died before enqueueing the job.
    dist_id = services.ledger.intake(dist_request(), now=time.time() - 120).distribution_id
    assert services.queue.get_job_ids() == []
    assert sweep_once(services) == 1
    job_ids = services.queue.get_job_ids()
    assert len(job_ids) == 1
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.fields["job_id"] == job_ids[0]
    assert sweep_once(services) == 0  # its job is pending now
    Committer(services).run(dist_id)
    assert len(campaigns(sandbox)) == 1


def test_fresh_locked_or_settled_records_are_left_alone(
    services: Services, sandbox: httpx.Client
) -> None:
    fresh = services.ledger.intake(dist_request("fresh")).distribution_id
    old = time.time() - 120
    locked = services.ledger.intake(dist_request("locked"), now=old).distribution_id
    services.ledger.acquire_lock(locked, "someone", 10_000)
    done = submit(services, dist_request("done")).distribution_id
    Committer(services).run(done)
    assert sweep_once(services) == 0
    assert services.ledger.get(fresh) is not None
    assert services.ledger.get(done).state == State.COMMITTED  # type: ignore[union-attr]


def test_a_stale_committing_record_is_settled_as_unknown_not_reposted(
    services: Services, sandbox: httpx.Client
) -> None:
    dist_id = submit(services, dist_request()).distribution_id
    services.ledger.transition(dist_id, State.COMMITTING, now=time.time() - 120)
    services.queue.empty()
    assert sweep_once(services) == 1
    job_id = services.queue.get_job_ids()[0]
    assert job_id
    Committer(services).run(dist_id)
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.state == State.UNKNOWN
    assert campaigns(sandbox) == []
    assert [e.get("by") for e in services.ledger.events(dist_id)][-2:] == ["sweeper", "worker"]


def test_a_job_popped_by_a_worker_that_died_is_not_taken_for_pending(
    services: Services, sandbox: httpx.Client
) -> None:
    # A worker popped the job id off the queue, then lost Redis (a restart) before it could
    # mark the job started: the job's hash still says "queued", but no queue holds it.
    dist_id = services.ledger.intake(dist_request(), now=time.time() - 120).distribution_id
    assert sweep_once(services) == 1
    popped = services.redis.lpop(services.queue.key)
    assert popped is not None
    assert sweep_once(services) == 1  # re-queued, not left waiting for a job nobody will run
    assert len(services.queue.get_job_ids()) == 1
    Committer(services).run(dist_id)
    assert len(campaigns(sandbox)) == 1


def test_a_retry_whose_job_was_lost_waits_for_its_time(
    services: Services, sandbox: httpx.Client
) -> None:
    # Punchh asked for a wait (Retry-After) and the scheduled job was then lost: the sweeper
    # re-queues the send only once the wait is over, never posting early.
    dist_id = services.ledger.intake(dist_request(), now=time.time() - 120).distribution_id
    services.ledger.set_fields(dist_id, {"next_attempt_at": time.time() + 600})
    assert sweep_once(services) == 0
    assert sweep_once(services, now=time.time() + 601) == 1
