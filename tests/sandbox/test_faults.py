"""Queued faults, through the test client and over real HTTP (drops, hangs, holds)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient

from tests.sandbox.support import (
    ADMIN,
    CAMPAIGNS,
    DISCONNECTED,
    REDEEMABLES,
    SEGMENTS,
    add_fault,
    commit_body,
    held_count,
    live_commit,
    post_campaign,
    run_in_thread,
    sandbox_now,
    wait_until,
)


@pytest.mark.parametrize("status", ["500", "502", "503", "504"])
def test_server_error_faults_do_not_act(sb: FlaskClient, status: str) -> None:
    sb.post("/_sandbox/faults", json={"endpoint": "campaigns", "mode": status, "count": 2})
    assert [post_campaign(sb).status_code for _ in range(3)] == [int(status)] * 2 + [200]
    assert len(sb.get("/_sandbox/campaigns").json) == 1


def test_429_with_and_without_retry_after(sb: FlaskClient) -> None:
    sb.post("/_sandbox/faults", json={"endpoint": "segments", "mode": "429", "retry_after": 7})
    sb.post("/_sandbox/faults", json={"endpoint": "segments", "mode": "429"})
    first, second = sb.get(SEGMENTS, headers=ADMIN), sb.get(SEGMENTS, headers=ADMIN)
    assert (first.status_code, first.headers.get("Retry-After")) == (429, "7")
    assert (second.status_code, second.headers.get("Retry-After")) == (429, None)
    assert sb.get(SEGMENTS, headers=ADMIN).status_code == 200


def test_faults_are_fifo_per_endpoint_and_can_be_cleared(sb: FlaskClient) -> None:
    sb.post("/_sandbox/faults", json={"endpoint": "redeemables", "mode": "502"})
    sb.post("/_sandbox/faults", json={"endpoint": "redeemables", "mode": "503"})
    sb.post("/_sandbox/faults", json={"endpoint": "segments", "mode": "500"})
    assert [f["mode"] for f in sb.get("/_sandbox/faults").json["redeemables"]] == ["502", "503"]
    assert sb.get(REDEEMABLES, headers=ADMIN).status_code == 502
    assert sb.get(REDEEMABLES, headers=ADMIN).status_code == 503
    assert sb.get(REDEEMABLES, headers=ADMIN).status_code == 200
    assert sb.delete("/_sandbox/faults").status_code == 200
    assert sb.get(SEGMENTS, headers=ADMIN).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "segments", "mode": "commit_drop"},
        {"endpoint": "campaigns", "mode": "explode"},
        {"endpoint": "users", "mode": "500"},
        {"endpoint": "campaigns", "mode": "500", "count": 0},
        {"endpoint": "campaigns", "mode": "hang", "seconds": -1},
        {"endpoint": "campaigns", "mode": "429", "retry_after": "soon"},
    ],
)
def test_bad_fault_requests_are_refused(sb: FlaskClient, body: dict[str, Any]) -> None:
    assert sb.post("/_sandbox/faults", json=body).status_code == 400
    assert sb.get("/_sandbox/faults").json == {}


def test_drop_under_the_test_client_raises(sb: FlaskClient) -> None:
    sb.post("/_sandbox/faults", json={"endpoint": "campaigns", "mode": "commit_drop"})
    with pytest.raises(ConnectionAbortedError):
        post_campaign(sb)
    assert len(sb.get("/_sandbox/campaigns").json) == 1


def test_drop_closes_without_a_response_and_does_not_act(live: httpx.Client) -> None:
    add_fault(live, endpoint="campaigns", mode="drop")
    with pytest.raises(DISCONNECTED):
        live_commit(live)
    assert live.get("/_sandbox/campaigns").json() == []
    assert live.get("/_sandbox/requests").json()["counts"] == {"campaigns": {"dropped": 1}}
    assert live_commit(live).status_code == 200  # the server is still fine


def test_drop_on_a_list_endpoint(live: httpx.Client) -> None:
    add_fault(live, endpoint="segments", mode="drop")
    with pytest.raises(DISCONNECTED):
        live.get(SEGMENTS)
    assert live.get(SEGMENTS).status_code == 200


def test_commit_drop_creates_then_drops(live: httpx.Client) -> None:
    add_fault(live, endpoint="campaigns", mode="commit_drop")
    with pytest.raises(DISCONNECTED):
        live_commit(live)
    (campaign,) = live.get("/_sandbox/campaigns").json()
    assert campaign["status"] == "scheduled"


def test_hang_times_the_client_out_without_acting(live: httpx.Client) -> None:
    add_fault(live, endpoint="campaigns", mode="hang", seconds=1)
    with pytest.raises(httpx.ReadTimeout):
        live_commit(live, timeout=0.3)
    assert live.get("/_sandbox/campaigns").json() == []
    add_fault(live, endpoint="segments", mode="hang", seconds=0.3)
    started = time.monotonic()
    assert live.get(SEGMENTS).status_code == 503
    assert time.monotonic() - started >= 0.3


def test_commit_hang_creates_then_stalls(live: httpx.Client) -> None:
    add_fault(live, endpoint="campaigns", mode="commit_hang", seconds=1)
    with pytest.raises(httpx.ReadTimeout):
        live_commit(live, timeout=0.3)
    assert len(live.get("/_sandbox/campaigns").json()) == 1


@pytest.mark.parametrize(("mode", "created_while_held"), [("hold", 0), ("commit_hold", 1)])
def test_hold_blocks_until_released(live: httpx.Client, mode: str, created_while_held: int) -> None:
    add_fault(live, endpoint="campaigns", mode=mode, seconds=5)
    body = commit_body(sandbox_now(live))
    thread, out = run_in_thread(lambda: live.post(CAMPAIGNS, json=body))
    wait_until(lambda: held_count(live) == 1)
    assert len(live.get("/_sandbox/campaigns").json()) == created_while_held
    assert out == []
    assert live.post("/_sandbox/release").json() == {"released": 1}
    thread.join(timeout=3)
    (response,) = out
    assert response.status_code == 200
    assert held_count(live) == 0
    assert len(live.get("/_sandbox/campaigns").json()) == 1


def test_hold_gives_up_after_its_seconds(live: httpx.Client) -> None:
    add_fault(live, endpoint="segments", mode="hold", seconds=0.3)
    assert live.get(SEGMENTS).status_code == 200


def test_reset_frees_held_requests(live: httpx.Client) -> None:
    add_fault(live, endpoint="segments", mode="hold", seconds=10)
    thread, out = run_in_thread(lambda: live.get(SEGMENTS))
    wait_until(lambda: held_count(live) == 1)
    live.post("/_sandbox/reset")
    thread.join(timeout=3)
    assert out[0].status_code == 200
