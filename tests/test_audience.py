"""Audience mode's worker steps against the sandbox over real HTTP, run in-process.

One custom segment per send, created once; recipients delivered in batches of at most 1,000
and deleted from Redis once Punchh has them; one commit when the send is quiet; recipients
after the commit added until late_at, then counted late and never stored.
"""

from __future__ import annotations

import math
import time
from typing import Any

import httpx
import pytest
import redis

from adapters.types import DistributionRequest, Guest
from ledger.states import State
from tests.helpers import audience_request, campaigns, fault, leaked, redis_dump, request_count
from tests.helpers import submit as intake
from wiring.services import Services
from wiring.settings import Settings
from workers.audience import CS_ID, LATE_AT
from workers.commit import Committer

#: Seeded sandbox guests (sandbox/seed.json): 880001 … 880040, guestN@example.com.
KNOWN = [Guest("user_id", str(880000 + n)) for n in range(1, 41)]


def unknown(n: int) -> list[Guest]:
    """Identifiers of guests Punchh does not have (counted as invalid, never an error)."""
    return [Guest("user_id", str(700000 + i)) for i in range(n)]


@pytest.fixture
def quick(env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client) -> Services:
    """Services whose audience sends are over after one quiet second."""
    from workers import context

    env["AUDIENCE_QUIET_SECONDS"] = "1"
    built = Services.build(Settings.from_env(env))
    context.use(built)
    return built


def send(services: Services, guests: list[Guest], key: str = "send-1") -> str:
    """Every recipient's request of one audience send; returns the distribution id."""
    dist_id = ""
    for guest in guests:
        dist_id = intake(services, audience_request(key), guest).distribution_id
    return dist_id


def custom_segments(sandbox: httpx.Client) -> list[dict[str, Any]]:
    reply = sandbox.get("/_sandbox/custom_segments")
    reply.raise_for_status()
    return list(reply.json())


def run(services: Services, dist_id: str) -> str:
    return Committer(services).run(dist_id)


def test_one_custom_segment_one_campaign_and_no_identifier_left(
    quick: Services, sandbox: httpx.Client, rdb: redis.Redis
) -> None:
    guests = KNOWN + unknown(2460)  # 2,500 recipients: three batches
    dist_id = send(quick, guests)
    assert run(quick, dist_id) == State.QUEUED  # the send is not quiet yet: full batches only
    assert request_count(sandbox, "add_users") == 2
    time.sleep(1.1)
    assert run(quick, dist_id) == State.COMMITTED
    segments = custom_segments(sandbox)
    assert len(segments) == 1 and len(segments[0]["member_guest_ids"]) == 40
    made = campaigns(sandbox)
    assert len(made) == 1
    assert made[0]["custom_segment_id"] == segments[0]["custom_segment_id"]
    assert request_count(sandbox, "add_users") == 3  # ceil(2,500 / 1,000)
    assert request_count(sandbox, "create_custom_segment") == 1
    dist = quick.ledger.get(dist_id)
    assert dist is not None
    assert dist.int_field("audience_added") == 2500
    assert dist.int_field("audience_invalid") == 2460
    assert dist.fields[CS_ID] == str(segments[0]["custom_segment_id"])
    # No identifier anywhere in Redis once Punchh has them all.
    assert leaked(redis_dump(rdb), [g.value for g in KNOWN[:5]] + ["700123"]) == []
    # A second run never commits again, and has nothing left to deliver.
    run(quick, dist_id)
    assert len(campaigns(sandbox)) == 1


def test_a_lost_create_answer_is_recovered_by_name_not_by_a_second_segment(
    quick: Services, sandbox: httpx.Client
) -> None:
    fault(sandbox, "create_custom_segment", "commit_drop")
    dist_id = send(quick, KNOWN[:3])
    time.sleep(1.1)
    for _ in range(3):
        if run(quick, dist_id) == State.COMMITTED:
            break
    assert len(custom_segments(sandbox)) == 1
    assert len(campaigns(sandbox)) == 1


@pytest.mark.parametrize("mode", ["503", "429", "drop"])
def test_add_users_faults_are_retried_and_every_recipient_added(
    quick: Services, sandbox: httpx.Client, mode: str
) -> None:
    fault(sandbox, "add_users", mode, count=2)
    dist_id = send(quick, KNOWN[:10])
    time.sleep(1.1)
    outcomes = []
    for _ in range(4):
        outcomes.append(run(quick, dist_id))
        if outcomes[-1] == State.COMMITTED:
            break
        dist = quick.ledger.get(dist_id)
        assert dist is not None
        time.sleep(max((dist.float_field("next_attempt_at") or 0) - time.time(), 0))
    assert outcomes[-1] == State.COMMITTED, outcomes
    assert len(custom_segments(sandbox)[0]["member_guest_ids"]) == 10
    assert len(campaigns(sandbox)) == 1


def test_a_batch_past_the_retry_budget_fails_the_send_and_never_commits_partially(
    quick: Services, sandbox: httpx.Client
) -> None:
    fault(sandbox, "add_users", "503", count=50)
    dist_id = send(quick, KNOWN[:7])
    time.sleep(1.1)
    for _ in range(quick.settings.commit_max_attempts):
        state = run(quick, dist_id)
        if state == State.FAILED:
            break
        dist = quick.ledger.get(dist_id)
        assert dist is not None
        time.sleep(max((dist.float_field("next_attempt_at") or 0) - time.time(), 0))
    dist = quick.ledger.get(dist_id)
    assert dist is not None and dist.state == State.FAILED
    assert dist.int_field("audience_not_added") == 7
    assert "7 guests not added" in dist.fields["last_error"]
    assert campaigns(sandbox) == []


def test_recipients_after_the_commit_are_added_until_late_at_then_counted_late(
    quick: Services, sandbox: httpx.Client, rdb: redis.Redis
) -> None:
    dist_id = send(quick, KNOWN[:5])
    time.sleep(1.1)
    assert run(quick, dist_id) == State.COMMITTED
    send(quick, KNOWN[5:8])  # after the commit, before late_at: still added
    assert run(quick, dist_id) == State.COMMITTED
    assert len(custom_segments(sandbox)[0]["member_guest_ids"]) == 8
    quick.ledger.set_fields(dist_id, {LATE_AT: time.time() - 1})  # the start time is near
    send(quick, KNOWN[8:10])
    dist = quick.ledger.get(dist_id)
    assert dist is not None and dist.int_field("audience_late") == 2
    assert quick.ledger.audience.waiting(dist_id).total == 0
    assert run(quick, dist_id) == State.COMMITTED
    assert len(custom_segments(sandbox)[0]["member_guest_ids"]) == 8
    assert len(campaigns(sandbox)) == 1
    assert leaked(redis_dump(rdb), [g.value for g in KNOWN[:10]]) == []


def test_a_run_that_rq_starts_early_still_schedules_the_commit(
    quick: Services, sandbox: httpx.Client, rdb: redis.Redis
) -> None:
    """RQ may start a scheduled run up to a second early: that run must not take its own
    check for one still ahead, or the send waits for the sweep (the bench saw 58 s)."""
    dist_id = send(quick, KNOWN[:3])
    second = math.floor(time.time())
    # This run was scheduled for second + 0.999, which RQ keeps as `second`; the send's last
    # recipient came at second + 0.099, so it is quiet (a one-second gap) at second + 1.099.
    check_at = second + 0.999
    quick.ledger.set_fields(dist_id, {"last_seen": check_at - 0.9, "check_at": check_at})
    scheduled = quick.queue.scheduled_job_registry
    before = set(scheduled.get_job_ids())
    assert run(quick, dist_id) == State.QUEUED
    fresh = set(scheduled.get_job_ids()) - before
    assert len(fresh) == 1  # the commit is scheduled again, for the moment the send is quiet
    dist = quick.ledger.get(dist_id)
    assert dist is not None and dist.float_field("check_at") == second + 2  # never early


def test_a_run_that_dies_between_the_commit_and_its_bookkeeping_still_delivers_latecomers(
    quick: Services, sandbox: httpx.Client, rdb: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.sweep import sweep
    from workers.audience import AudienceRun

    def dies(self: AudienceRun, distribution_id: str, start: Any) -> None:
        raise SystemExit("worker killed right after Punchh answered")

    monkeypatch.setattr(AudienceRun, "committed", dies)
    dist_id = send(quick, KNOWN[:2])
    time.sleep(1.1)
    with pytest.raises(SystemExit):
        run(quick, dist_id)
    monkeypatch.undo()
    send(quick, KNOWN[2:4])  # after the commit, before the start time
    assert quick.ledger.get(dist_id).state == State.COMMITTED  # type: ignore[union-attr]
    # No job was queued for them; the sweep finds the send through the due set.
    for job_id in quick.queue.get_job_ids():
        quick.queue.remove(job_id)
    assert sweep(quick.ledger, quick.queue, stale_seconds=0, now=time.time() + 1) >= 1
    assert run(quick, dist_id) == State.COMMITTED
    dist = quick.ledger.get(dist_id)
    assert dist is not None and dist.float_field(LATE_AT) is not None
    assert len(custom_segments(sandbox)[0]["member_guest_ids"]) == 4
    assert quick.ledger.audience.waiting(dist_id).total == 0
    assert len(campaigns(sandbox)) == 1


def test_a_rejected_or_cancelled_send_stores_no_more_identifiers_and_keeps_none_longer(
    quick: Services, sandbox: httpx.Client, rdb: redis.Redis
) -> None:
    from ledger.actions import cancel

    req = audience_request("bad-offer")
    bad = DistributionRequest(**{**req.__dict__, "redeemable": "No Such Offer"})
    dist_id = ""
    for guest in KNOWN[:3]:
        dist_id = intake(quick, bad, guest).distribution_id
    time.sleep(1.1)
    assert run(quick, dist_id) == State.REJECTED
    for guest in KNOWN[3:5]:  # a late wave on a rejected send: counted, never stored
        intake(quick, bad, guest)
    dist = quick.ledger.get(dist_id)
    assert dist is not None and dist.int_field("audience_not_added") == 2
    assert quick.ledger.audience.waiting(dist_id).total == 0
    # Identifiers still waiting when a send is rejected live no longer than its record.
    waiting_id = intake(quick, audience_request("later"), KNOWN[5]).distribution_id
    later = quick.ledger.get(waiting_id)
    assert later is not None
    Committer(quick).settle(later, State.REJECTED, "test", allowed_from=(State.QUEUED,))
    ttl = rdb.ttl(quick.ledger.audience.pending_key(waiting_id))
    assert 0 < ttl <= quick.ledger.retention_seconds
    # A cancelled send forgets its identifiers, and stores none that arrive after.
    other = intake(quick, audience_request("cancelled"), KNOWN[6]).distribution_id
    cancel(quick.ledger, other, actor="t")
    intake(quick, audience_request("cancelled"), KNOWN[7])
    assert quick.ledger.audience.waiting(other).total == 0
