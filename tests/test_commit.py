"""The commit job against the sandbox over real HTTP: every fault class, each outcome."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from adapters.types import DistributionRequest
from ledger.states import State
from tests.helpers import campaigns, dist_request, fault, request_count, submit
from tests.procs import Proc, wait_until
from wiring.services import Services
from workers.commit import Committer, choose_start_time
from workers.outcomes import RETRY_AFTER_CEILING_SECONDS, backoff_seconds


def commit_once(services: Services, req: DistributionRequest | None = None) -> str:
    """Intake one request and run one attempt in-process; returns the distribution id."""
    req = req or dist_request()
    result = submit(services, req)
    Committer(services).run(result.distribution_id)
    return result.distribution_id


def state_of(services: Services, dist_id: str) -> str:
    dist = services.ledger.get(dist_id)
    assert dist is not None
    return dist.state


def test_happy_path_commits_one_campaign_with_resolved_ids(
    services: Services, sandbox: httpx.Client
) -> None:
    dist_id = commit_once(services)
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.state == State.COMMITTED
    made = campaigns(sandbox)
    assert len(made) == 1
    body = made[0]["body"]
    assert body["segment_id"] == 1306904
    seed = json.loads(Path("sandbox/seed.json").read_text())
    coffee = next(r for r in seed["redeemables"] if r["name"] == "Free Coffee")
    assert body["redeemable_uuid"] == coffee["redeemable_uuid"]
    assert body["category"] == "gift_redeemable"
    assert body["campaign_type"] == "mass_gifting"
    assert body["external_campaign_id"] == dist_id
    assert body["start_time"].endswith("Z")
    start = datetime.strptime(body["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert start >= datetime.now(UTC) + timedelta(minutes=15)
    assert dist.as_dict()["campaign_id"] == made[0]["campaign_id"]
    # A second run (an RQ re-delivery) never posts again.
    assert Committer(services).run(dist_id) == "committed"
    assert len(campaigns(sandbox)) == 1


def test_server_errors_twice_then_success_makes_one_campaign(
    services: Services, sandbox: httpx.Client
) -> None:
    fault(sandbox, "campaigns", "500", count=2)
    dist_id = commit_once(services)
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.state == State.QUEUED
    assert "500" in dist.fields["last_error"]
    assert float(dist.fields["next_attempt_at"]) > float(dist.fields["updated_at"])
    assert Committer(services).run(dist_id) == "queued"
    assert Committer(services).run(dist_id) == "committed"
    assert len(campaigns(sandbox)) == 1
    assert request_count(sandbox, "campaigns") == 3


def test_retry_after_is_honoured(services: Services, sandbox: httpx.Client) -> None:
    fault(sandbox, "campaigns", "429", count=1, retry_after=4)
    dist_id = commit_once(services)
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.state == State.QUEUED
    wait = float(dist.fields["next_attempt_at"]) - float(dist.fields["updated_at"])
    assert 3.9 <= wait <= 4.1
    assert Committer(services).run(dist_id) == "committed"
    assert len(campaigns(sandbox)) == 1


def test_invalid_segment_is_rejected_after_one_post(
    services: Services, sandbox: httpx.Client, env: dict[str, str]
) -> None:
    # A stale cache entry names a segment id Punchh no longer has.
    cached = services.settings.with_overrides(list_cache_seconds=60)
    svc = Services.build(cached, services.redis)
    svc.catalog.cache.set(
        svc.catalog._cache_key("segments", "Lapsed 90 days"),
        json.dumps([{"segment_id": 42, "name": "Lapsed 90 days"}]),
    )
    dist_id = commit_once(svc)
    dist = svc.ledger.get(dist_id)
    assert dist is not None and dist.state == State.REJECTED
    assert "Invalid segment id" in dist.fields["last_error"]
    assert request_count(sandbox, "campaigns") == 1
    assert Committer(svc).run(dist_id) == "rejected"
    assert request_count(sandbox, "campaigns") == 1


def test_commit_then_drop_is_unknown_after_one_post(
    services: Services, sandbox: httpx.Client
) -> None:
    fault(sandbox, "campaigns", "commit_drop")
    dist_id = commit_once(services)
    assert state_of(services, dist_id) == State.UNKNOWN
    assert len(campaigns(sandbox)) == 1
    assert Committer(services).run(dist_id) == "unknown"
    assert request_count(sandbox, "campaigns") == 1


def test_read_timeout_and_504_are_ambiguous(services: Services, sandbox: httpx.Client) -> None:
    fault(sandbox, "campaigns", "commit_hang", seconds=3.5)
    first = commit_once(services, dist_request("hang"))
    fault(sandbox, "campaigns", "504")
    second = commit_once(services, dist_request("gateway"))
    assert state_of(services, first) == State.UNKNOWN
    assert state_of(services, second) == State.UNKNOWN
    # The sandbox logs a hung request when it ends; wait for it, then count both POSTs.
    assert wait_until(lambda: request_count(sandbox, "campaigns") == 2, 5)
    assert len(campaigns(sandbox)) == 1  # the hung one was created, the 504 was not


def test_punchh_down_past_the_budget_fails(services: Services, sandbox: httpx.Client) -> None:
    fault(sandbox, "campaigns", "503", count=10)
    dist_id = submit(services, dist_request()).distribution_id
    outcomes = [Committer(services).run(dist_id) for _ in range(5)]
    assert outcomes == ["queued", "queued", "queued", "failed", "failed"]
    dist = services.ledger.get(dist_id)
    assert dist is not None
    assert dist.fields["last_error"].startswith("gave up after 4 attempts")
    assert request_count(sandbox, "campaigns") == 4
    assert campaigns(sandbox) == []


def test_connection_refused_is_retried(services: Services, sandbox: httpx.Client) -> None:
    dead = services.settings.with_overrides(punchh_base_url="http://127.0.0.1:9")
    svc = Services.build(dead, services.redis)
    dist_id = commit_once(svc)
    dist = svc.ledger.get(dist_id)
    assert dist is not None and dist.state == State.QUEUED
    assert "could not connect" in dist.fields["last_error"]


def test_unknown_and_ambiguous_names_are_rejected_without_posting(
    services: Services, sandbox: httpx.Client
) -> None:
    unknown = commit_once(services, dist_request("a", segment="Lapsed 900 days"))
    ambiguous = commit_once(services, dist_request("b", segment="Weekend Regulars"))
    case_only = commit_once(services, dist_request("c", segment="BIRTHDAY CLUB"))
    d1, d2 = services.ledger.get(unknown), services.ledger.get(ambiguous)
    assert d1 is not None and d1.state == State.REJECTED
    assert 'no Punchh segment is named "Lapsed 900 days"' in d1.fields["last_error"]
    assert d2 is not None and d2.state == State.REJECTED
    assert d2.fields["last_error"].count("segment_id") == 2
    # Two names differ only in case from "BIRTHDAY CLUB": ambiguous as well.
    assert state_of(services, case_only) == State.REJECTED
    assert request_count(sandbox, "campaigns") == 0
    # The exact-case name wins over its case-variant twin.
    exact = commit_once(services, dist_request("d", segment="birthday club"))
    assert state_of(services, exact) == State.COMMITTED


@pytest.mark.parametrize(
    ("redeemable", "message"),
    [
        ("Holiday Pie 2024", "Redeemable is expired."),
        ("Free Latte Classic", "Redeemable is deactivated."),
        ("Summer Patio Lemonade", "Redeemable is scheduled."),
    ],
)
def test_redeemable_states_are_rejected_with_punchhs_words(
    services: Services, sandbox: httpx.Client, redeemable: str, message: str
) -> None:
    dist_id = commit_once(services, dist_request(redeemable=redeemable))
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.state == State.REJECTED
    assert message in dist.fields["last_error"]


def test_wrong_api_key_fails_once_and_stops_calling_punchh(
    services: Services, sandbox: httpx.Client
) -> None:
    wrong = services.settings.with_overrides(punchh_api_key="not-the-key")
    svc = Services.build(wrong, services.redis)
    first = commit_once(svc, dist_request("a"))
    before = request_count(sandbox, "segments")
    second = commit_once(svc, dist_request("b"))
    for dist_id in (first, second):
        dist = svc.ledger.get(dist_id)
        assert dist is not None and dist.state == State.FAILED
        assert "PUNCHH_API_KEY" in dist.fields["last_error"]
    assert request_count(sandbox, "segments", 401) == 1
    assert request_count(sandbox, "segments") == before  # the second never reached Punchh


def test_a_run_that_died_while_posting_becomes_unknown(
    services: Services, sandbox: httpx.Client
) -> None:
    dist_id = submit(services, dist_request()).distribution_id
    services.ledger.transition(dist_id, State.COMMITTING)
    assert Committer(services).run(dist_id) == "unknown"
    assert request_count(sandbox, "campaigns") == 0


def test_a_run_that_died_while_resolving_is_redone(
    services: Services, sandbox: httpx.Client
) -> None:
    dist_id = submit(services, dist_request()).distribution_id
    services.ledger.transition(dist_id, State.RESOLVING, fields={"attempts": 1})
    assert Committer(services).run(dist_id) == "committed"
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.int_field("attempts") == 2
    assert len(campaigns(sandbox)) == 1


def test_a_locked_distribution_is_left_to_its_holder(
    services: Services, sandbox: httpx.Client
) -> None:
    dist_id = submit(services, dist_request()).distribution_id
    assert services.ledger.acquire_lock(dist_id, "other-worker", 10_000)
    assert Committer(services).run(dist_id) == "locked"
    assert state_of(services, dist_id) == State.QUEUED
    assert request_count(sandbox, "campaigns") == 0


def test_start_time_rules() -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, 500000, tzinfo=UTC)
    floor = datetime(2026, 11, 26, 12, 17, 1, tzinfo=UTC)
    assert choose_start_time(None, now, 120) == floor
    assert choose_start_time("2026-11-26T12:10:00Z", now, 120) == floor
    assert choose_start_time("2026-12-01T09:00:00Z", now, 120) == datetime(
        2026, 12, 1, 9, 0, tzinfo=UTC
    )


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    samples = [backoff_seconds(3, 5.0, 600.0, None) for _ in range(200)]
    assert all(10.0 <= s <= 20.0 for s in samples)
    assert len({round(s, 3) for s in samples}) > 50
    assert backoff_seconds(10, 5.0, 60.0, None) <= 60.0
    assert backoff_seconds(1, 5.0, 600.0, 42.0) == 42.0
    # Punchh asking for longer than our own cap is respected, not cut short.
    assert backoff_seconds(1, 5.0, 30.0, 3000.0) == 3000.0
    assert backoff_seconds(1, 5.0, 30.0, -3.0) == 0.0


@pytest.mark.slow
def test_retry_after_beyond_retry_max_is_waited_out_by_a_real_worker(
    services: Services, sandbox: httpx.Client, worker: Proc, env: dict[str, str]
) -> None:
    """RETRY_MAX_SECONDS caps our own backoff only: no POST before Punchh's Retry-After."""
    asked = 8.0
    assert float(env["RETRY_MAX_SECONDS"]) < asked - 2
    fault(sandbox, "campaigns", "429", count=1, retry_after=asked)
    dist_id = submit(services, dist_request("patient")).distribution_id
    assert wait_until(lambda: request_count(sandbox, "campaigns") == 1, 20, 0.02)
    refused_at = time.monotonic()
    assert wait_until(lambda: services.redis.zcard("rq:scheduled:punchh") == 1, 10, 0.02)
    dist = services.ledger.get(dist_id)
    assert dist is not None
    scheduled = services.redis.zrange("rq:scheduled:punchh", 0, -1, withscores=True)
    assert len(scheduled) == 1 and scheduled[0][1] >= float(dist.fields["updated_at"]) + asked - 1
    # RETRY_MAX_SECONDS would have posted again by now; Punchh's wait has not elapsed yet.
    time.sleep(max(0.0, refused_at + asked - 1.0 - time.monotonic()))
    assert request_count(sandbox, "campaigns") == 1
    assert wait_until(lambda: state_of(services, dist_id) == State.COMMITTED, 20)
    assert time.monotonic() - refused_at >= asked - 0.5
    assert len(campaigns(sandbox)) == 1


def test_retry_after_beyond_the_ceiling_fails_for_an_operator(
    services: Services, sandbox: httpx.Client
) -> None:
    """Longer than a worker waits by itself: `failed` at once, naming the wait; no retry job."""
    fault(sandbox, "campaigns", "429", count=1, retry_after=RETRY_AFTER_CEILING_SECONDS + 1)
    dist_id = commit_once(services)
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.state == State.FAILED
    assert f"asked to wait {RETRY_AFTER_CEILING_SECONDS + 1} s" in dist.fields["last_error"]
    assert "retry" in dist.fields["last_error"]
    assert services.redis.zcard("rq:scheduled:punchh") == 0
    assert request_count(sandbox, "campaigns") == 1
