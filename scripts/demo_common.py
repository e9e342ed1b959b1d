"""What both acts of scripts/demo.py use: its output, waiting for a commit through /v1, and
reading and steering the Punchh sandbox (its campaigns, clock and guests' rewards)."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

SEGMENT = "Lapsed 90 days"
REDEEMABLE = "Free Coffee"
SETTLED = {"committed", "rejected", "failed", "unknown", "held", "cancelled"}


def say(text: str = "") -> None:
    """One line of demo output."""
    print(text, flush=True)


def api_auth(args: argparse.Namespace) -> dict[str, str]:
    """The Authorization header of /v1."""
    return {"Authorization": f"Bearer {args.api_token}"}


def wait_settled(args: argparse.Namespace, dist_id: str) -> dict[str, Any]:
    """Poll the distribution until it is committed (or otherwise settled)."""
    deadline = time.monotonic() + args.timeout
    dist: dict[str, Any] = {}
    last_state = ""
    while time.monotonic() < deadline:
        reply = httpx.get(f"{args.web}/v1/distributions/{dist_id}", headers=api_auth(args),
                          timeout=10)
        if reply.status_code == 200:
            dist = reply.json()
            if dist["state"] != last_state:
                say(f"   state: {dist['state']}")
                last_state = dist["state"]
            if dist["state"] in SETTLED:
                return dist
        time.sleep(0.3)
    return dist


def committed(
    args: argparse.Namespace, dist_id: str, *, counted: bool = True
) -> dict[str, Any] | None:
    """Wait for the worker's commit and say what it made (with the requests it `counted`);
    None when it was not committed."""
    dist = wait_settled(args, dist_id)
    if dist.get("state") != "committed":
        say(f"   not committed: {dist.get('state')} {dist.get('last_error') or ''}")
        return None
    count = f", {dist['recipients']} recipients counted" if counted else ""
    say(f"   committed: Punchh campaign {dist['campaign_id']}, starts {dist['start_time']}{count}")
    return dist


def items(sandbox: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """A sandbox control list, whether it answers a bare list or wraps it in an object."""
    reply = sandbox.get(path, params=params)
    reply.raise_for_status()
    body = reply.json()
    if isinstance(body, dict):
        return list(next(v for v in body.values() if isinstance(v, list)))
    return list(body)


def show_campaigns(sandbox: httpx.Client, dist_id: str, heading: str) -> bool:
    """Print the Punchh campaigns made for this distribution; whether there is exactly one."""
    made = [c for c in items(sandbox, "/_sandbox/campaigns")
            if c.get("body", {}).get("external_campaign_id") == dist_id]
    say(f"{heading}Punchh campaigns for this send: {len(made)}")
    for campaign_made in made:
        say("   " + json.dumps({"campaign_id": campaign_made.get("campaign_id"),
                                **campaign_made.get("body", {})}))
    return len(made) == 1


@contextlib.contextmanager
def clock_past(sandbox: httpx.Client, start_time: str, step: int) -> Iterator[None]:
    """Move the sandbox clock past a start time (gifting what became due), then put it back."""
    clock = sandbox.get("/_sandbox/clock").json()
    now = datetime.fromisoformat(clock["now"].replace("Z", "+00:00"))
    start = datetime.strptime(start_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    advance = max(0.0, (start - now).total_seconds()) + 60
    sandbox.post("/_sandbox/clock", json={"advance_seconds": advance}).raise_for_status()
    say(f"{step}. Moved the sandbox clock {advance:.0f}s forward, past the start time.")
    try:
        yield
    finally:
        # Left ahead, the clock would make Punchh refuse the next real send's start time.
        offset = clock.get("offset_seconds", 0)
        sandbox.post("/_sandbox/clock", json={"offset_seconds": offset}).raise_for_status()
        say(f"{step + 1}. Put the sandbox clock back where it was.")


def rewards_from(sandbox: httpx.Client, guest_id: int, campaign_id: int) -> list[dict[str, Any]]:
    """One guest's rewards from one Punchh campaign."""
    return [r for r in items(sandbox, f"/_sandbox/guests/{guest_id}/rewards")
            if r.get("campaign_id") == campaign_id]


