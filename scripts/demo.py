"""Demo: a Braze-style fan-out (one webhook per recipient) becomes one Punchh campaign.

Against a local stack started with `make run` (it reads the URLs and tokens that run saved),
or any connector given with --web/--sandbox and the tokens. Steps: send N webhooks for one
send, wait until the distribution is committed, show the one Punchh campaign in the sandbox,
move the sandbox clock past its start time, show the rewards in a few guests' accounts, and put
the clock back where it was. It resets nothing: every run is a new campaign and a new send, and
the stack is left as it was found (a send made after the demo is judged on the same clock).
`--api` sends through the generic API (POST /v1/distributions) instead of Braze's webhook.
Exit status 0 when exactly one campaign was made and the guests got their reward.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx

from wiring import local_stack

SEGMENT = "Lapsed 90 days"
REDEEMABLE = "Free Coffee"
SETTLED = {"committed", "rejected", "failed", "unknown", "held", "cancelled"}


def say(text: str = "") -> None:
    """One line of demo output."""
    print(text, flush=True)


def first(value: str) -> str:
    """The first of a comma-separated list of tokens."""
    return value.split(",")[0] if value else ""


def defaults() -> dict[str, str]:
    """URLs and tokens: environment first, then what `make run` saved."""
    saved = local_stack.read()
    return {
        "web": os.environ.get("CONNECTOR_URL") or saved.get("web_url", "http://127.0.0.1:5000"),
        "sandbox": os.environ.get("SANDBOX_URL")
        or saved.get("sandbox_url", "http://127.0.0.1:8900"),
        "api_token": first(os.environ.get("API_TOKEN", "")) or saved.get("api_token", ""),
        "braze_token": first(os.environ.get("BRAZE_WEBHOOK_TOKEN", ""))
        or saved.get("braze_token", ""),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    d = defaults()
    parser = argparse.ArgumentParser(prog="scripts/demo.py", description=__doc__.split("\n")[0])
    parser.add_argument("--web", default=d["web"], help="connector base URL")
    parser.add_argument("--sandbox", default=d["sandbox"], help="Punchh sandbox base URL")
    parser.add_argument("--api-token", default=d["api_token"], help="API_TOKEN")
    parser.add_argument("--braze-token", default=d["braze_token"], help="BRAZE_WEBHOOK_TOKEN")
    parser.add_argument("--requests", type=int, default=200, help="recipients in the fan-out")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--api", action="store_true", help="use the generic API, not Braze")
    parser.add_argument("--guests", type=int, default=3, help="guests whose rewards to show")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait to commit")
    args = parser.parse_args(argv)
    if not args.api_token or (not args.api and not args.braze_token):
        parser.error(
            "no tokens: start the stack with `make run`, or pass --api-token/--braze-token"
        )
    return args


def fan_out(args: argparse.Namespace, send_key: str, campaign: str) -> tuple[str, dict[int, int]]:
    """Send one request per recipient; returns the distribution id and the status counts."""
    if args.api:
        url = f"{args.web}/v1/distributions"
        headers = {"Authorization": f"Bearer {args.api_token}", "Idempotency-Key": send_key}
        dist_id = f"api:{campaign}:{send_key}"
    else:
        url = f"{args.web}/webhooks/braze"
        headers = {"Authorization": f"Bearer {args.braze_token}"}
        dist_id = f"braze:{campaign}:{send_key}"

    def body(i: int) -> dict[str, Any]:
        if args.api:
            return {
                "segment": SEGMENT,
                "redeemable": REDEEMABLE,
                "campaign_ref": campaign,
                "campaign_name": "Demo",
            }
        # What a Braze template renders per recipient; the guest fields are dropped at once.
        return {
            "punchh_segment": SEGMENT,
            "punchh_redeemable": REDEEMABLE,
            "campaign_id": campaign,
            "campaign_name": "Demo",
            "send_key": send_key,
            "user_id": f"demo-user-{i}",
            "email": f"guest{i}@example.com",
        }

    statuses: dict[int, int] = {}
    with httpx.Client(timeout=10, limits=httpx.Limits(max_connections=args.concurrency)) as web:

        def send(i: int) -> int:
            reply = web.post(url, json=body(i), headers=headers)
            if reply.status_code >= 400 and i == 0:
                say(f"   first request refused: {reply.status_code} {reply.text[:300]}")
            elif i == 0 and isinstance(reply.json(), dict):
                nonlocal dist_id
                dist_id = reply.json().get("distribution_id", dist_id)
            return reply.status_code

        # The first request alone, so its answer names the distribution for the rest.
        first = send(0)
        statuses[first] = 1
        with ThreadPoolExecutor(args.concurrency) as pool:
            for status in pool.map(send, range(1, args.requests)):
                statuses[status] = statuses.get(status, 0) + 1
    return dist_id, statuses


def wait_settled(args: argparse.Namespace, dist_id: str) -> dict[str, Any]:
    """Poll the distribution until it is committed (or otherwise settled)."""
    headers = {"Authorization": f"Bearer {args.api_token}"}
    deadline = time.monotonic() + args.timeout
    dist: dict[str, Any] = {}
    last_state = ""
    while time.monotonic() < deadline:
        reply = httpx.get(f"{args.web}/v1/distributions/{dist_id}", headers=headers, timeout=10)
        if reply.status_code == 200:
            dist = reply.json()
            if dist["state"] != last_state:
                say(f"   state: {dist['state']}")
                last_state = dist["state"]
            if dist["state"] in SETTLED:
                return dist
        time.sleep(0.3)
    return dist


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when one campaign was made and guests were gifted."""
    args = parse_args(argv)
    run = uuid.uuid4().hex[:8]
    # A fresh campaign per run: Braze sends are guarded against more than a few distinct send
    # keys per campaign within an hour (the fan-out guard), and repeated demos would trip it.
    campaign, send_key = f"demo-campaign-{run}", f"send-{run}"
    via = "the generic API" if args.api else "Braze-style webhooks"
    say(f"1. Sending {args.requests} requests for one send through {via} …")
    started = time.monotonic()
    dist_id, statuses = fan_out(args, send_key, campaign)
    say(f"   answers: {json.dumps(statuses)} in {time.monotonic() - started:.1f}s")
    say(f"   distribution: {dist_id}")

    say("2. Waiting for the worker to commit it to Punchh …")
    dist = wait_settled(args, dist_id)
    if dist.get("state") != "committed":
        say(f"   not committed: {dist.get('state')} {dist.get('last_error') or ''}")
        return 1
    say(f"   committed: Punchh campaign {dist['campaign_id']}, starts {dist['start_time']}, "
        f"{dist['recipients']} recipients counted")

    sandbox = httpx.Client(base_url=args.sandbox, timeout=10)
    body = sandbox.get("/_sandbox/campaigns").json()
    made = [
        c for c in (body["campaigns"] if isinstance(body, dict) else body)
        if c.get("body", {}).get("external_campaign_id") == dist_id
    ]
    say(f"3. Punchh campaigns for this send: {len(made)}")
    for campaign_made in made:
        say("   " + json.dumps({"campaign_id": campaign_made.get("campaign_id"),
                                **campaign_made.get("body", {})}))
    if len(made) != 1:
        return 1

    clock = sandbox.get("/_sandbox/clock").json()
    now = datetime.fromisoformat(clock["now"].replace("Z", "+00:00"))
    start = datetime.strptime(dist["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    advance = max(0.0, (start - now).total_seconds()) + 60
    sandbox.post("/_sandbox/clock", json={"advance_seconds": advance}).raise_for_status()
    say(f"4. Moved the sandbox clock {advance:.0f}s forward, past the start time.")
    try:
        ok = show_rewards(args, sandbox, dist)
    finally:
        # Left ahead, the clock would make Punchh refuse the next real send's start time.
        offset = clock.get("offset_seconds", 0)
        sandbox.post("/_sandbox/clock", json={"offset_seconds": offset}).raise_for_status()
        say("5. Put the sandbox clock back where it was.")
    say("Done: one Punchh campaign for the whole fan-out, one reward per guest."
        if ok else "Guests were not gifted as expected.")
    return 0 if ok else 1


def show_rewards(args: argparse.Namespace, sandbox: httpx.Client, dist: dict[str, Any]) -> bool:
    """Print a few of the segment's guests' rewards from this send; whether each got one."""
    guests = sandbox.get("/_sandbox/guests", params={"segment_id": dist["segment_id"]}).json()
    guest_list = guests["guests"] if isinstance(guests, dict) else guests
    say(f"   segment {dist['segment']!r} has {len(guest_list)} guests; a few of their accounts:")
    gifted = 0
    for guest in guest_list[: args.guests]:
        rewards = sandbox.get(f"/_sandbox/guests/{guest['guest_id']}/rewards").json()
        reward_list = rewards["rewards"] if isinstance(rewards, dict) else rewards
        mine = [r for r in reward_list if r.get("campaign_id") == dist["campaign_id"]]
        gifted += bool(mine)
        names = ", ".join(str(r.get("name") or r.get("redeemable_name") or r) for r in mine)
        say(f"   guest {guest['guest_id']}: {len(mine)} reward(s) from this send: {names}")
    return gifted == min(args.guests, len(guest_list)) and gifted > 0


if __name__ == "__main__":
    sys.exit(main())
