"""Audience mode through the real stack: its sends, how they are settled, and one measured send.

An audience send (`"punchh_audience": "recipients"`) gives each recipient's identifier to the
intake, which appends it to the send's pending list in the same Lua step as the count; the
worker delivers them to the send's custom segment in add_users batches and commits once the
send has been quiet for AUDIENCE_QUIET_SECONDS (or was ended through /v1). `one_send` sends N
recipients with wrk and measures what issue 13 asks of it: the Punchh calls the send made,
how long after its last recipient it was committed, and that no identifier is left in Redis.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
import zlib
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from bench.load import braze_send, run_wrk
from bench.plan import API_TOKEN, BRAZE_PATH, BRAZE_TOKEN, KEY_PREFIX, Plan
from bench.rig import Rig
from ledger.audience import BATCH_SIZE
from stack import wait_until

#: One recipient in this many has no Punchh user id synced to Braze and is known by email.
EMAIL_EVERY = 5
#: Calls a send makes besides its add_users batches: create the custom segment, Get Segment
#: List (its segment id), Get Redeemable List, Commit Redeemable Distribution (issue 13).
CALLS_BESIDES_BATCHES = 4
#: Identifiers of a measured send looked for in Redis once it is committed.
SAMPLE = 200


@dataclass(frozen=True)
class AudienceSend:
    """One Braze audience send as bench/lua/audience.lua renders it; recipient i is BASE + i."""

    campaign: str
    send_key: str
    uid_base: int

    @classmethod
    def new(cls) -> AudienceSend:
        """A fresh send whose user ids have 6 to 9 digits, like Punchh's."""
        campaign, send_key = braze_send()
        return cls(campaign, send_key, random.randrange(10**5, 10**9 - 10**6))

    @property
    def distribution_id(self) -> str:
        """The distribution every recipient lands on."""
        return f"braze:{self.campaign}:{self.send_key}"

    def env(self, limit: int = 0) -> dict[str, str]:
        """audience.lua's parameters; `limit` > 0 sends exactly that many recipients."""
        return {
            "BENCH_CAMPAIGN": self.campaign,
            "BENCH_SEND_KEY": self.send_key,
            "BENCH_TOKEN": BRAZE_TOKEN,
            "BENCH_UID_BASE": str(self.uid_base),
            "BENCH_EMAIL_EVERY": str(EMAIL_EVERY),
            "BENCH_LIMIT": str(limit),
        }

    def by_email(self, i: int) -> bool:
        """Whether recipient i comes without a user id (the connector keeps its email)."""
        return i % EMAIL_EVERY == EMAIL_EVERY - 1

    def user_id(self, i: int) -> str:
        """Recipient i's Punchh user id."""
        return str(self.uid_base + i)

    def email(self, i: int) -> str:
        """Recipient i's email (every body carries one; it is kept only without a user id)."""
        return f"guest{self.uid_base + i}@example.org"

    def body(self, i: int) -> dict[str, str]:
        """What audience.lua sends for recipient i, for requests made from Python."""
        return {
            "punchh_audience": "recipients",
            "punchh_redeemable": "Free Coffee",
            "campaign_id": self.campaign,
            "campaign_name": "Spring winback - lapsed guests",
            "send_key": self.send_key,
            "dispatch_id": self.send_key,
            "punchh_user_id": "" if self.by_email(i) else self.user_id(i),
            "email": self.email(i),
            "first_name": "Guest",
        }


def _bytes(value: Any) -> bytes:
    """A Redis reply as bytes (the client answers bytes; its type hints allow str)."""
    return value if isinstance(value, bytes) else str(value).encode()


def record(rdb: redis.Redis, distribution_id: str) -> dict[str, str]:
    """The send's record, decoded."""
    raw = rdb.hgetall(KEY_PREFIX + "d:" + distribution_id)
    return {_bytes(k).decode(): _bytes(v).decode() for k, v in raw.items()}


def waiting(rdb: redis.Redis, distribution_id: str) -> int:
    """Identifiers of the send not yet taken by Punchh (pending list and batch in flight)."""
    with rdb.pipeline(transaction=False) as pipe:
        pipe.llen(KEY_PREFIX + "aq:" + distribution_id)
        pipe.llen(KEY_PREFIX + "ab:" + distribution_id)
        return sum(int(n) for n in pipe.execute())


def settle(rig: Rig, distribution_id: str, *, end: bool, timeout: float = 120) -> dict[str, Any]:
    """Until the send is committed with every identifier delivered and the worker idle; `end`
    ends it through /v1 first (no quiet gap to wait out). Returns what the record then says."""
    started = time.monotonic()
    if end:
        answer = rig.http.post(
            f"{rig.web.url}/v1/distributions/{distribution_id}/end",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            json={"reason": "benchmark run over"},
        )
        if answer.status_code not in (200, 202, 409):  # 409: already committing or committed
            raise RuntimeError(f"ending {distribution_id}: {answer.status_code} {answer.text}")

    def done() -> bool:
        state = record(rig.rdb, distribution_id).get("state")
        return state == "committed" and waiting(rig.rdb, distribution_id) == 0

    if not wait_until(done, timeout, 0.05):
        fields = record(rig.rdb, distribution_id)
        raise RuntimeError(
            f"audience send {distribution_id} not committed and delivered within {timeout} s: "
            f"state {fields.get('state')}, {waiting(rig.rdb, distribution_id)} waiting, "
            f"last error {fields.get('last_error', '')[:200]}"
        )
    # The runs queued every 1,000 recipients may still be waiting their turn, each a forked
    # work horse: the next measurement must not share the cores with them.
    rig.wait_worker_idle()
    fields = record(rig.rdb, distribution_id)
    return {
        "settle_seconds": round(time.monotonic() - started, 2),
        "recipients_counted": int(fields.get("recipients", 0)),
        "delivered": int(fields.get("audience_added", 0)),
        "invalid": int(fields.get("audience_invalid", 0)),
        "missing": int(fields.get("audience_missing", 0)),
    }


def punchh_calls(rig: Rig) -> dict[str, int]:
    """Requests the sandbox has answered so far, per endpoint."""
    totals = rig.http.get(rig.sandbox.url + "/_sandbox/requests").json()["totals"]
    return {str(k): int(v) for k, v in totals.items()}


def redis_text(rdb: redis.Redis) -> bytes:
    """Every key and value in Redis, RQ's compressed job payloads inflated."""
    chunks: list[bytes] = []
    for key in rdb.scan_iter(count=1000):
        chunks.append(_bytes(key))
        kind = _bytes(rdb.type(key)).decode()
        values: list[Any] = []
        if kind == "string":
            values = [rdb.get(key) or b""]
        elif kind == "hash":
            for name, value in rdb.hgetall(key).items():
                values += [name, value]
        elif kind == "list":
            values = list(rdb.lrange(key, 0, -1))
        elif kind == "set":
            values = list(rdb.smembers(key))
        elif kind == "zset":
            values = list(rdb.zrange(key, 0, -1))
        for value in map(_bytes, values):
            chunks.append(value)
            with suppress(zlib.error):
                chunks.append(zlib.decompress(value))
    return b"\n".join(chunks)


def found_in(text: bytes, identifiers: list[str]) -> list[str]:
    """The identifiers present in `text`: a user id as a whole number (not inside a timestamp
    or another number), an email anywhere."""
    found = []
    for ident in identifiers:
        if "@" in ident:
            hit = ident.encode() in text
        else:
            hit = re.search(rb"(?<![\d.])" + ident.encode() + rb"(?!\d)", text) is not None
        if hit:
            found.append(ident)
    return found


def one_send(rig: Rig, plan: Plan, n: int, quiet: float) -> dict[str, Any]:
    """N recipients of one send through the real stack, with the worker delivering as they come."""
    rig.wait_worker_idle()
    before = punchh_calls(rig)
    send = AudienceSend.new()
    dist_id = send.distribution_id
    rdb = rig.rdb
    peak = {"waiting": 0, "counted": 0, "moved_at": time.monotonic()}

    def sent_all() -> bool:
        # Half a second after the last recipient was counted (its answer is on its way to wrk),
        # or once nothing was counted for 3 s (refused requests: the figures say so).
        raw = rdb.hget(KEY_PREFIX + "d:" + dist_id, "recipients")
        counted = int(raw) if raw is not None else 0
        peak["waiting"] = max(peak["waiting"], waiting(rdb, dist_id))
        if counted != peak["counted"]:
            peak["counted"], peak["moved_at"] = counted, time.monotonic()
        quiet_for = time.monotonic() - peak["moved_at"]
        return (counted >= n and quiet_for > 0.5) or (counted > 0 and quiet_for > 3)

    result = run_wrk(
        rig.web.url + BRAZE_PATH,
        "audience",
        threads=plan.wrk_threads,
        connections=plan.connections,
        duration=60 + n / 200,
        env=send.env(limit=n),
        stop_when=sent_all,
    )

    def campaign() -> dict[str, Any] | None:
        for made in rig.sandbox_campaigns():
            if made["body"].get("external_campaign_id") == dist_id:
                return made
        return None

    # Generous: a send the worker lost track of is re-queued by the ledger sweep (its stale
    # age plus its interval, a minute each by default), and that lateness is the figure.
    if not wait_until(lambda: campaign() is not None, quiet + 240, 0.05):
        raise RuntimeError(f"no Punchh campaign for the audience send {dist_id}")
    made = campaign()
    assert made is not None
    delivery = settle(rig, dist_id, end=False)
    fields = record(rdb, dist_id)
    after = punchh_calls(rig)
    calls = {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
    committed_at = datetime.fromisoformat(made["created_at"].replace("Z", "+00:00")).timestamp()
    first, last = float(fields["created_at"]), float(fields["last_seen"])
    left_keys = [
        _bytes(k).decode()
        for pattern in ("aq:*", "ab:*")
        for k in rdb.scan_iter(match=KEY_PREFIX + pattern, count=10_000)
    ]
    sample = sorted({*range(0, n, max(1, n // SAMPLE)), *range(max(0, n - 5), n)})
    needles = [send.email(i) for i in sample] + [
        send.user_id(i) for i in sample if not send.by_email(i)
    ]
    events = [json.loads(_bytes(e)) for e in rdb.lrange(KEY_PREFIX + "ev:" + dist_id, 0, -1)]
    return {
        "recipients": n,
        "wrk_errors": result.errors,
        **delivery,
        "send_seconds": round(last - first, 2),
        "recipients_per_second": round(n / (last - first), 1) if last > first else None,
        "most_waiting_at_once": peak["waiting"],
        "punchh_calls": calls,
        "punchh_calls_total": sum(calls.values()),
        "punchh_calls_bound": math.ceil(n / BATCH_SIZE) + CALLS_BESIDES_BATCHES,
        "quiet_seconds": quiet,
        "commit_after_last_recipient_s": round(committed_at - last, 2),
        "commit_lag_s": round(committed_at - last - quiet, 2),
        # The worker lost track of the send and the ledger sweep found it (bench/README.md).
        "requeued_by_sweep": sum(1 for e in events if e.get("by") == "sweeper"),
        "audience_keys_left": left_keys,
        "audience_bytes_left": sum(rdb.memory_usage(k) or 0 for k in left_keys),
        "identifiers_sampled": len(needles),
        "identifiers_found_in_redis": len(found_in(redis_text(rdb), needles)),
    }
