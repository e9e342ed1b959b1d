"""The single intake step: count one more recipient on its send's record, or create it.

Every request of a send goes through here, so this is the hot path: one round trip (EVALSHA of
the count script over the serving thread's own connection) for every request but the first of
a send, which takes a second one carrying the new record, and waits for Redis to confirm it
durable before the platform hears 2xx.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from adapters.types import DistributionRequest, Guest
from ledger.audience import encode
from ledger.base import LedgerBase
from ledger.record import as_text, record_fields
from ledger.states import IntakeResult

#: Sources whose send keys come from marketer-built templates, so the fan-out guard applies.
GUARDED_SOURCES = frozenset({"braze", "sfmc"})


class IntakeStep(LedgerBase):
    """The ledger's intake: one atomic Lua step per request (part of ledger.store.Ledger)."""

    def intake(
        self,
        req: DistributionRequest,
        *,
        guest: Guest | None = None,
        recipient: bool = True,
        now: float | None = None,
    ) -> IntakeResult:
        """Count one more recipient, or create the record: atomic, and one round trip for
        every request but the first of a send (which takes a second, carrying the record).

        A request with a send key lands on that key's record. One without follows its send:
        it is counted on the campaign's open send (one seen within the send gap), or opens a
        new send named after the moment it began (docs/send-identity.md).

        A send that gifts its recipients (audience mode) stores the recipient's `guest`
        identifier on the send's pending list in the same step (ledger/audience.py); a
        recipient without one is counted as missing, and a request that is no `recipient`
        (an API call opening the send) stores nothing.
        """
        now = time.time() if now is None else now
        count_script, intake_script, tail = self._count, self._intake, []
        if req.gifts_recipients:
            item = encode(guest) if guest is not None else ("" if recipient else ".")
            count_script, intake_script = self._audience_count, self._audience_intake
            tail = [self.audience.pending_prefix, item]
        follow = req.follows_send
        keys = [
            "" if follow else self.record_key(req.distribution_id),
            # replay_seconds 0 turns retry recognition off (SFMC_DEDUPE_SECONDS=0).
            self.replay_key(req.replay_token) if req.replay_token and self.replay_seconds
            else "",
            self.metrics_key,
            self.open_send_key(req),
        ]
        args: list[str | int] = [
            repr(now),
            req.segment,
            req.redeemable,
            self.replay_seconds,
            req.source,
            self.send_gap_seconds,
            self.open_send_ttl,
            self.record_key(""),
            "" if follow else req.distribution_id,
        ]
        reply = cast(
            list[Any], self.connections.run_script(count_script, keys, [*args, *tail])
        )
        if as_text(reply[0]) == "missing":
            new = req
            if follow:
                key = self.send_label(now)
                name = f"{req.campaign_name} ({key})" if req.campaign_name else None
                new = replace(req, send_key=key, campaign_name=name)
                args[8] = new.distribution_id
            keys += [
                self.index_key,
                self.fanout_key(req),
                self.active_key,
                self.fold_key(req),
            ]
            guarded = req.source in GUARDED_SOURCES
            args += [
                self.fanout_limit if guarded else 0,
                self.fanout_window_seconds,
                new.send_key,
                self.repeat_hold_seconds,
                *record_fields(new),
                *(("unconfirmed", "1") if self._confirms_creations() else ()),
            ]
            reply = cast(
                list[Any], self.connections.run_script(intake_script, keys, [*args, *tail])
            )
        parts = [as_text(p) for p in reply]
        outcome = parts[0]
        if outcome == "created" or (outcome == "counted" and parts[4:5] == ["1"]):
            # A 2xx must mean durable: a new send's record, or the send a count landed on
            # while that send's own creation is still unconfirmed (its first answer was 503).
            self.make_durable(parts[3])
        return IntakeResult(
            distribution_id=parts[3],
            outcome=outcome,
            state=parts[1],
            recipients=int(parts[2]),
            existing_segment=parts[4] if outcome == "conflict" else None,
            existing_redeemable=parts[5] if outcome == "conflict" else None,
            held_because=parts[4] if outcome == "created" else "",
        )

    def send_label(self, now: float) -> str:
        """The send key of a send followed by continuity: when it began, in the send-key zone."""
        local = datetime.fromtimestamp(now, self.zone)
        offset = local.strftime("%z")
        return "run-" + local.strftime("%Y%m%dT%H%M%S") + ("Z" if offset == "+0000" else offset)

    def make_durable(self, distribution_id: str) -> None:
        """Wait until Redis confirms this thread's intake writes durable; NotDurable if not.

        Called after a creation, and after a count on a send whose creation was never
        confirmed (its `unconfirmed` mark), over the thread's own connection: `WAIT` and
        `WAITAOF` confirm the writes of the connection they are sent on. Once confirmed the
        mark goes, so the send's other recipients are counted without waiting.
        """
        commands = self.durability().commands(self.durability_timeout_ms)
        if commands:
            replies = self.connections.execute_unretried(*commands)
            self.durability().check(replies, self.durability_timeout_ms)
            self.connections.execute("HDEL", self.record_key(distribution_id), "unconfirmed")

    def _confirms_creations(self) -> bool:
        """Whether a new record waits for confirmation (and so carries the mark until then)."""
        return bool(self.durability().commands(self.durability_timeout_ms))

