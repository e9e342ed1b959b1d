"""Braze fan-out end to end: 2,000 recipients over 32 connections → one Punchh campaign."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import auth
from tests.helpers import campaigns, leaked, redis_dump
from tests.procs import Proc, wait_until

pytestmark = pytest.mark.slow

TOKEN = {"Authorization": "Bearer braze-token-1"}
TEMPLATE = {
    "punchh_segment": "Lapsed 90 days",
    "punchh_redeemable": "Free Coffee",
    "campaign_id": "6d8f-spring",
    "campaign_name": "Spring winback",
}


def fan_out(web: Proc, bodies: list[dict[str, Any]], connections: int = 32) -> list[int]:
    """Send every body over `connections` keep-alive connections; return the statuses."""
    local = threading.local()

    def send(body: dict[str, Any]) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=web.url, timeout=30)
        return int(local.client.post("/webhooks/braze", json=body, headers=TOKEN).status_code)

    with ThreadPoolExecutor(connections) as pool:
        return list(pool.map(send, bodies))


def wait_committed(web: Proc, dist_id: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.update(httpx.get(f"{web.url}/v1/distributions/{dist_id}", headers=auth()).json())
        return seen.get("state") in {"committed", "rejected", "failed", "unknown"}

    assert wait_until(done, 30, 0.1), seen
    return seen


def test_scheduled_send_fan_out_makes_one_campaign_and_keeps_no_guest_data(
    web: Proc, worker: Proc, sandbox: httpx.Client, rdb: redis.Redis
) -> None:
    guests = [(f"braze-user-{i:05d}", f"guest.{i:05d}@example.org") for i in range(2000)]
    bodies = [
        {**TEMPLATE, "send_key": "dsp-001", "dispatch_id": "dsp-001", "user_id": u, "email": e}
        for u, e in guests
    ]
    statuses = fan_out(web, bodies)
    assert statuses.count(202) == 2000, {s: statuses.count(s) for s in set(statuses)}

    dist = wait_committed(web, "braze:6d8f-spring:dsp-001")
    assert dist["state"] == "committed"
    assert dist["recipients"] == 2000
    made = campaigns(sandbox)
    assert len(made) == 1
    assert made[0]["body"]["segment_id"] == dist["segment_id"] == 1306904
    assert made[0]["body"]["redeemable_uuid"] == dist["redeemable_uuid"]
    assert made[0]["body"]["external_campaign_id"] == "braze:6d8f-spring:dsp-001"

    needles = [g for pair in guests[::97] for g in pair] + ["braze-user-", "@example.org"]
    assert leaked(redis_dump(rdb), needles) == []
    assert leaked(web.log() + worker.log(), needles) == []

    # A run with a new dispatch_id within the fan-out window waits for an operator; released,
    # it is a second campaign.
    again = fan_out(web, [{**bodies[0], "send_key": "dsp-002", "dispatch_id": "dsp-002"}] * 50)
    assert set(again) == {202}
    second = "braze:6d8f-spring:dsp-002"
    shown = httpx.get(f"{web.url}/v1/distributions/{second}", headers=auth()).json()
    assert shown["state"] == "held", shown
    released = httpx.post(f"{web.url}/v1/distributions/{second}/release", headers=auth())
    assert released.status_code == 200, released.text
    assert wait_committed(web, second)["recipients"] == 50
    assert len(campaigns(sandbox)) == 2


def test_canvas_with_per_guest_dispatch_ids_is_held_by_the_fan_out_guard(
    web: Proc, worker: Proc, sandbox: httpx.Client
) -> None:
    canvas = {
        "punchh_segment": "VIP Guests",
        "punchh_redeemable": "Free Dessert",
        "canvas_id": "cv-77",
        "canvas_name": "Welcome",
        "campaign_id": "step-1",
    }
    # A mis-built Canvas template: every guest's dispatch id becomes a send key.
    bodies = [{**canvas, "send_key": f"per-guest-{i}", "user_id": f"u{i}"} for i in range(40)]
    statuses = fan_out(web, bodies, connections=8)
    assert set(statuses) == {202}
    listing = httpx.get(
        f"{web.url}/v1/distributions", params={"source": "braze", "limit": 100}, headers=auth()
    ).json()
    records = [d for d in listing["items"] if d["campaign_ref"] == "cv-77:step-1"]
    # One send went ahead; every other per-guest key is folded into one held record.
    held = [d for d in records if d["state"] == "held"]
    assert len(records) == 2 and len(held) == 1, [d["state"] for d in records]
    assert held[0]["recipients"] == 39
    assert "fan-out guard" in held[0]["last_error"]
    assert wait_until(lambda: len(campaigns(sandbox)) == 1, 30)
    time.sleep(1)
    assert len(campaigns(sandbox)) == 1  # the guard acts before a second campaign, never 40

    # Without any send key: the step's send is followed, one campaign however many requests.
    daily = {**canvas, "canvas_id": "cv-daily"}
    assert set(fan_out(web, [daily] * 30, connections=8)) == {202}
    assert wait_until(lambda: len(campaigns(sandbox)) == 2, 30)


def test_test_sends_and_wrong_tokens_commit_nothing(
    web: Proc, worker: Proc, sandbox: httpx.Client, rdb: redis.Redis
) -> None:
    test_send = {**TEMPLATE, "send_key": "dispatch_id_for_unsent_campaign"}
    reply = httpx.post(f"{web.url}/webhooks/braze", json=test_send, headers=TOKEN)
    assert reply.status_code == 200 and reply.json()["valid"] is True
    wrong = httpx.post(
        f"{web.url}/webhooks/braze",
        json={**TEMPLATE, "send_key": "real"},
        headers={"Authorization": "Bearer stolen"},
    )
    assert wrong.status_code == 401
    assert rdb.keys("pc:d:*") == []
    assert campaigns(sandbox) == []
