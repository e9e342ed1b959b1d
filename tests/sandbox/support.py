"""What the sandbox tests share: paths, the seed, valid bodies and small waits."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from sandbox.app import create_app
from sandbox.seed import SEED_PATH

ADMIN = {"Authorization": "Bearer sandbox-admin-key", "User-Agent": "Tests/Sandbox/1.0"}
SEGMENTS = "/api2/dashboard/segments"
REDEEMABLES = "/api2/dashboard/redeemables"
CAMPAIGNS = "/api2/dashboard/campaigns"
CUSTOM_SEGMENTS = "/api2/dashboard/custom_segments"
MEMBERS = "/api2/dashboard/custom_segments/members"
ADD_USERS = "/api2/dashboard/custom_segments/members/add_users"
SEED: dict[str, Any] = json.loads(SEED_PATH.read_text())
ROOT = Path(__file__).resolve().parents[2]
DISCONNECTED = (httpx.RemoteProtocolError, httpx.ReadError)
"""What an httpx client raises when the sandbox drops the connection."""


def seed_segment(name: str) -> dict[str, Any]:
    """The one seeded segment with exactly this name."""
    (found,) = [s for s in SEED["segments"] if s["name"] == name]
    return found


def seed_redeemable(name: str) -> dict[str, Any]:
    """The seeded redeemable with exactly this name."""
    (found,) = [r for r in SEED["redeemables"] if r["name"] == name]
    return found


def sandbox_now(client: FlaskClient | httpx.Client) -> datetime:
    """The sandbox clock's now."""
    response = client.get("/_sandbox/clock")
    data = response.json() if isinstance(response, httpx.Response) else response.json
    return datetime.fromisoformat(data["now"])


def utc_z(moment: datetime) -> str:
    """ISO 8601 UTC with Z, as the connector sends it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def commit_body(now: datetime, **overrides: Any) -> dict[str, Any]:
    """A valid commit body starting 20 minutes after ``now``; overrides replace fields."""
    body: dict[str, Any] = {
        "redeemable_uuid": seed_redeemable("Free Coffee")["redeemable_uuid"],
        "segment_id": seed_segment("Lapsed 90 days")["segment_id"],
        "category": "gift_redeemable",
        "campaign_type": "mass_gifting",
        "name": "Win-back coffee",
        "start_time": utc_z(now + timedelta(minutes=20)),
        "external_campaign_id": "braze:abc:2026-11-25",
    }
    body.update(overrides)
    return body


def post_campaign(sb: FlaskClient, **overrides: Any) -> Any:
    """POST a commit body (valid unless overridden) and return the test response."""
    return sb.post(CAMPAIGNS, json=commit_body(sandbox_now(sb), **overrides), headers=ADMIN)


def live_commit(client: httpx.Client, **kwargs: Any) -> httpx.Response:
    """POST a valid commit body over real HTTP."""
    return client.post(CAMPAIGNS, json=commit_body(sandbox_now(client)), **kwargs)


def add_fault(client: httpx.Client, **fault: Any) -> None:
    """Queue a fault, failing the test if the sandbox refuses it."""
    client.post("/_sandbox/faults", json=fault).raise_for_status()


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll until ``predicate`` holds, or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def run_in_thread(call: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[Any]]:
    """Start ``call`` in a thread; its response (or exception) lands in the returned list."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(call())
        except Exception as error:
            out.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def held_count(client: httpx.Client) -> int:
    """How many requests the sandbox is holding."""
    return int(client.get("/_sandbox/held").json()["held"])


@contextmanager
def serving(app: Flask | None = None) -> Iterator[str]:
    """A sandbox app (a fresh one by default) on a threaded server on a free port."""
    server = make_server("127.0.0.1", 0, app or create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
