"""scripts/demo.py's audience-mode act: a send that names no Punchh segment gifts its guests.

A few of one seeded segment's guests are sent to (by Punchh user id, one by email), with one
recipient Punchh does not know; the segment's other guests are left out. The send is ended
through `POST /v1/distributions/<id>/end` rather than left to go quiet for
AUDIENCE_QUIET_SECONDS, so the act is quick on any stack, `make run`'s included. It prints no
guest identifier but those of the sandbox's fictional guests it chose.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import httpx
from demo_common import (
    REDEEMABLE,
    SEGMENT,
    api_auth,
    clock_past,
    committed,
    items,
    rewards_from,
    say,
    show_campaigns,
)

#: How many of the segment's guests are sent to; the last of them by email.
SENT = 4


@dataclass(frozen=True)
class Audience:
    """Whom the act sends to, and which of the segment's guests it leaves out."""

    by_user_id: list[int]
    by_email: dict[str, Any]
    unknown_user_id: str
    left_out: list[int]

    @property
    def sent(self) -> list[int]:
        """The guest ids of the seeded guests sent to."""
        return [*self.by_user_id, self.by_email["guest_id"]]


def choose(args: argparse.Namespace, sandbox: httpx.Client) -> Audience | None:
    """The first guests of SEGMENT (found through /v1's picker list) and one id nobody has."""
    reply = httpx.get(f"{args.web}/v1/segments", params={"query": SEGMENT},
                      headers=api_auth(args), timeout=10)
    reply.raise_for_status()
    ids = [s["segment_id"] for s in reply.json()["items"] if s["name"] == SEGMENT]
    if len(ids) != 1:
        say(f"   Punchh lists {len(ids)} segments named {SEGMENT!r}: the act needs one")
        return None
    guests = sorted(items(sandbox, "/_sandbox/guests", segment_id=ids[0]),
                    key=lambda g: int(g["guest_id"]))
    if len(guests) <= SENT:
        say(f"   segment {SEGMENT!r} has {len(guests)} guests: the act needs {SENT + 1}")
        return None
    everyone = items(sandbox, "/_sandbox/guests")
    return Audience(
        by_user_id=[g["guest_id"] for g in guests[: SENT - 1]],
        by_email=guests[SENT - 1],
        unknown_user_id=str(max(int(g["guest_id"]) for g in everyone) + 1),
        left_out=[g["guest_id"] for g in guests[SENT:]],
    )


def send(args: argparse.Namespace, audience: Audience, campaign: str, send_key: str
         ) -> tuple[str, dict[int, int]]:
    """Send the audience; returns the distribution id and the status counts."""
    user_ids = [*map(str, audience.by_user_id), audience.unknown_user_id]
    email = audience.by_email["email"]
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=args.web, timeout=10) as web:
        if args.api:
            # The generic API opens the send, then takes its guests in calls of up to 1,000.
            replies = [web.post("/v1/distributions", headers={
                **api_auth(args), "Idempotency-Key": send_key}, json={
                "audience": "recipients", "redeemable": REDEEMABLE,
                "campaign_ref": campaign, "campaign_name": "Demo audience"})]
            dist_id = str(replies[0].json().get("distribution_id", ""))
            replies.append(web.post(f"/v1/distributions/{dist_id}/recipients",
                                    headers=api_auth(args),
                                    json={"user_ids": user_ids, "emails": [email]}))
        else:
            # What a Braze template renders per recipient: the Punchh user id Punchh's Braze
            # integration syncs as `punchh_user_id`, or the email where a guest has none.
            base = {"punchh_audience": "recipients", "punchh_redeemable": REDEEMABLE,
                    "campaign_id": campaign, "campaign_name": "Demo audience",
                    "send_key": send_key}
            guests = [{"punchh_user_id": uid} for uid in user_ids] + [{"email": email}]
            headers = {"Authorization": f"Bearer {args.braze_token}"}
            replies = [web.post("/webhooks/braze", headers=headers, json={**base, **guest})
                       for guest in guests]
            dist_id = str(replies[0].json().get("distribution_id", ""))
    for reply in replies:
        statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
        if reply.status_code >= 400:
            # Refusals name the field, never the value, so the answer is safe to print.
            say(f"   refused: {reply.status_code} {reply.text[:300]}")
    return dist_id, statuses


def end(args: argparse.Namespace, dist_id: str) -> None:
    """Say the send is over, so it is committed now rather than after its quiet gap."""
    reply = httpx.post(f"{args.web}/v1/distributions/{dist_id}/end", headers=api_auth(args),
                       json={"reason": "the demo's send is over"}, timeout=10)
    if reply.status_code != 200:
        # A stack with a short AUDIENCE_QUIET_SECONDS may have ended (and committed) it already.
        say(f"   not ended: {reply.status_code} {reply.text[:300]}")


def show_custom_segment(sandbox: httpx.Client, dist: dict[str, Any], heading: str
                        ) -> list[int] | None:
    """Print the custom segments made for this send; the members of the one the record names,
    or None."""
    # The connector describes each custom segment it creates by the distribution it serves.
    made = [c for c in items(sandbox, "/_sandbox/custom_segments")
            if c.get("description") == f"punchh-connector {dist['distribution_id']}"]
    say(f"{heading}Punchh custom segments for this send: {len(made)}")
    for segment in made:
        say("   " + json.dumps({"custom_segment_id": segment["custom_segment_id"],
                                "name": segment["name"],
                                "member_guest_ids": segment["member_guest_ids"]}))
    named = (dist.get("audience") or {}).get("custom_segment_id")
    if len(made) != 1 or made[0]["custom_segment_id"] != named:
        return None
    return list(made[0]["member_guest_ids"])


def show_rewards(sandbox: httpx.Client, audience: Audience, campaign_id: int) -> bool:
    """Print the rewards of the guests sent to and of those left out; whether exactly the
    guests sent to got one each."""
    got = {g: len(rewards_from(sandbox, g, campaign_id))
           for g in [*audience.sent, *audience.left_out]}
    for guest_id in audience.by_user_id:
        say(f"   guest {guest_id} (sent to, by user id): {got[guest_id]} reward(s) from this send")
    email_guest = audience.by_email["guest_id"]
    say(f"   guest {email_guest} (sent to, by email {audience.by_email['email']}): "
        f"{got[email_guest]} reward(s) from this send")
    shown, *rest = audience.left_out
    say(f"   guest {shown} (same segment, not sent to): {got[shown]} reward(s) from this send")
    say(f"   the segment's {len(rest)} other guests, not sent to either: "
        f"{sum(got[g] for g in rest)} reward(s) from this send")
    return (all(got[g] == 1 for g in audience.sent)
            and not any(got[g] for g in audience.left_out))


def audience_act(args: argparse.Namespace, sandbox: httpx.Client, run: str, step: int) -> bool:
    """Audience mode, as steps `step` on: exactly the send's guests gifted, nobody else."""
    via = "the generic API" if args.api else "Braze-style webhooks"
    audience = choose(args, sandbox)
    if audience is None:
        return False
    size = SENT + len(audience.left_out)
    say(f"{step}. Audience mode: a send naming no segment, to {SENT} of the {size} guests of "
        f"{SEGMENT!r} and one user id Punchh does not know, through {via} …")
    say(f"   sent to: {', '.join(map(str, audience.by_user_id))} by user id, "
        f"{audience.by_email['email']} by email; left out: "
        f"{', '.join(map(str, audience.left_out))}")
    dist_id, statuses = send(args, audience, f"demo-audience-{run}", f"send-{run}")
    say(f"   answers: {json.dumps(statuses)}")
    say(f"   distribution: {dist_id}")

    say(f"{step + 1}. Ending the send through POST /v1/distributions/<id>/end (a real send ends "
        "once it has been quiet AUDIENCE_QUIET_SECONDS) …")
    end(args, dist_id)
    # Not the record's count: through /v1 it counts the call that opened the send as well.
    dist = committed(args, dist_id, counted=False)
    if dist is None:
        return False
    counts = dist.get("audience") or {}
    say(f"   the connector's counts: {counts.get('added')} handed to Punchh, "
        f"{counts.get('unknown_to_punchh')} unknown to Punchh (skipped, never an error)")
    members = show_custom_segment(sandbox, dist, f"{step + 2}. ")
    one_campaign = show_campaigns(sandbox, dist_id, "   ")
    if members is None or not one_campaign:
        return False
    with clock_past(sandbox, dist["start_time"], step + 3):
        ok = show_rewards(sandbox, audience, dist["campaign_id"])
    ok = ok and sorted(members) == sorted(audience.sent) and counts.get("added") == SENT + 1
    ok = ok and counts.get("unknown_to_punchh") == 1
    say("   One custom segment and one campaign: exactly the send's guests rewarded, "
        "the segment's others not." if ok else "   Guests were not gifted as expected.")
    return ok
