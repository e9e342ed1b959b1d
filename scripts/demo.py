"""Demo: a Braze-style fan-out (one webhook per recipient) becomes one Punchh campaign.

Against a local stack started with `make run` (it reads the URLs and tokens that run saved),
or any connector given with --web/--sandbox and the tokens. Two acts, each a new send:

- Segment mode: send N webhooks for one send naming a Punchh segment, wait until the
  distribution is committed, show the one Punchh campaign in the sandbox, move the sandbox
  clock past its start time and show the rewards in a few guests' accounts.
- Audience mode: send to a few of one segment's seeded guests (by user id, one by email) and
  one guest Punchh does not know, naming no segment; end the send through /v1; show the one
  custom segment and the one campaign, move the clock past the start time and show that the
  send's guests were rewarded and the segment's other guests were not.

After each act the sandbox clock is put back where it was. It resets nothing: every run is a
new campaign and a new send, and the stack is left as it was found (a send made after the demo
is judged on the same clock). `--api` sends through the generic API (POST /v1/distributions)
instead of Braze's webhook. Exit status 0 when each act made exactly one campaign and gifted
exactly the guests it should.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from demo_audience import audience_act
from demo_common import (
    REDEEMABLE,
    SEGMENT,
    clock_past,
    committed,
    items,
    rewards_from,
    say,
    show_campaigns,
)

from wiring import local_stack


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


def segment_act(args: argparse.Namespace, sandbox: httpx.Client, run: str) -> bool:
    """Segment mode: a fan-out naming a Punchh segment; one campaign, its guests gifted."""
    # A fresh campaign per run: Braze sends are guarded against more than a few distinct send
    # keys per campaign within an hour (the fan-out guard), and repeated demos would trip it.
    campaign, send_key = f"demo-campaign-{run}", f"send-{run}"
    via = "the generic API" if args.api else "Braze-style webhooks"
    say(f"1. Segment mode: sending {args.requests} requests for one send to the Punchh segment "
        f"{SEGMENT!r} through {via} …")
    started = time.monotonic()
    dist_id, statuses = fan_out(args, send_key, campaign)
    say(f"   answers: {json.dumps(statuses)} in {time.monotonic() - started:.1f}s")
    say(f"   distribution: {dist_id}")

    say("2. Waiting for the worker to commit it to Punchh …")
    dist = committed(args, dist_id)
    if dist is None or not show_campaigns(sandbox, dist_id, "3. "):
        return False
    with clock_past(sandbox, dist["start_time"], 4):
        ok = show_rewards(args, sandbox, dist)
    say("   One Punchh campaign for the whole fan-out, one reward per guest."
        if ok else "   Guests were not gifted as expected.")
    return ok


def show_rewards(args: argparse.Namespace, sandbox: httpx.Client, dist: dict[str, Any]) -> bool:
    """Print a few of the segment's guests' rewards from this send; whether each got one."""
    guest_list = items(sandbox, "/_sandbox/guests", segment_id=dist["segment_id"])
    say(f"   segment {dist['segment']!r} has {len(guest_list)} guests; a few of their accounts:")
    gifted = 0
    for guest in guest_list[: args.guests]:
        mine = rewards_from(sandbox, guest["guest_id"], dist["campaign_id"])
        gifted += bool(mine)
        names = ", ".join(str(r.get("name") or r.get("redeemable_name") or r) for r in mine)
        say(f"   guest {guest['guest_id']}: {len(mine)} reward(s) from this send: {names}")
    return gifted == min(args.guests, len(guest_list)) and gifted > 0


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when each act made one campaign and gifted exactly its guests."""
    args = parse_args(argv)
    run = uuid.uuid4().hex[:8]
    with httpx.Client(base_url=args.sandbox, timeout=10) as sandbox:
        if not segment_act(args, sandbox, run):
            return 1
        say()
        if not audience_act(args, sandbox, run, step=6):
            return 1
    say()
    say("Done: in segment mode one Punchh campaign gifted the segment; in audience mode one "
        "campaign gifted exactly the send's guests.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
