"""End to end over real processes: gunicorn, an RQ worker, the sandbox, and Redis."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from tests.conftest import auth
from tests.helpers import campaigns, fault
from tests.procs import Proc, wait_until

pytestmark = pytest.mark.slow

BODY = {"segment": "Lapsed 90 days", "redeemable": "Free Coffee", "campaign_name": "Win-back"}


def distribution(web: Proc, dist_id: str) -> dict:  # type: ignore[type-arg]
    return httpx.get(f"{web.url}/v1/distributions/{dist_id}", headers=auth()).json()


def wait_state(web: Proc, dist_id: str, states: set[str], timeout: float = 30) -> dict:  # type: ignore[type-arg]
    seen: dict = {}  # type: ignore[type-arg]

    def done() -> bool:
        seen.update(distribution(web, dist_id))
        return seen.get("state") in states

    assert wait_until(done, timeout, 0.1), seen
    return seen


def test_500_requests_from_20_threads_make_one_campaign_and_gift_once(
    web: Proc, worker: Proc, sandbox: httpx.Client, rdb: redis.Redis
) -> None:
    headers = {**auth(), "Idempotency-Key": "spring-send-1"}

    def send(_: int) -> int:
        with httpx.Client(base_url=web.url, timeout=10) as c:
            return c.post("/v1/distributions", json=BODY, headers=headers).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(send, range(500)))
    assert statuses.count(202) == 500
    dist = wait_state(web, "api:default:spring-send-1", {"committed"})
    assert dist["recipients"] == 500
    made = campaigns(sandbox)
    assert len(made) == 1
    assert made[0]["body"]["segment_id"] == dist["segment_id"] == 1306904
    assert made[0]["body"]["redeemable_uuid"] == dist["redeemable_uuid"]
    assert made[0]["body"]["name"] == "Win-back"
    assert dist["campaign_id"] == made[0]["campaign_id"]

    # Punchh's side: when the start time arrives every guest of the segment is gifted once.
    sandbox.post("/_sandbox/clock", json={"advance_seconds": 3600}).raise_for_status()
    sandbox.post("/_sandbox/clock", json={"advance_seconds": 3600}).raise_for_status()
    guests = sandbox.get("/_sandbox/guests", params={"segment_id": 1306904}).json()
    guest_list = guests["guests"] if isinstance(guests, dict) else guests
    assert len(guest_list) >= 10
    for guest in guest_list:
        rewards = sandbox.get(f"/_sandbox/guests/{guest['guest_id']}/rewards").json()
        reward_list = rewards["rewards"] if isinstance(rewards, dict) else rewards
        assert [r["campaign_id"] for r in reward_list] == [made[0]["campaign_id"]]


def test_worker_retries_through_faults(
    web: Proc, worker: Proc, sandbox: httpx.Client
) -> None:
    fault(sandbox, "campaigns", "500", count=2)
    fault(sandbox, "campaigns", "429", count=1, retry_after=2)
    started = time.monotonic()
    reply = httpx.post(
        f"{web.url}/v1/distributions", json=BODY, headers={**auth(), "Idempotency-Key": "faulty"}
    )
    assert reply.status_code == 202
    dist = wait_state(web, "api:default:faulty", {"committed", "failed"}, timeout=60)
    assert dist["state"] == "committed"
    assert dist["attempts"] == 4
    assert time.monotonic() - started >= 2.0  # the Retry-After wait was honoured
    assert len(campaigns(sandbox)) == 1
