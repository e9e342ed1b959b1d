"""The commit job: resolve names, then POST one campaign to Punchh, exactly once."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import redis

from ledger.durability import NotDurable
from ledger.states import State
from punchh.client import format_start_time
from punchh.errors import (
    PunchhAmbiguous,
    PunchhAuthError,
    PunchhNotActed,
    PunchhRejected,
    PunchhUnexpected,
)
from workers import context
from workers.audience import AudienceRun
from workers.outcomes import Outcomes

log = logging.getLogger("connector.worker")

#: Punchh refuses a start time less than this far ahead (documented: 15 minutes).
PUNCHH_MIN_LEAD = timedelta(minutes=15)


def commit_distribution(distribution_id: str) -> str:
    """RQ entry point: run one attempt for a distribution; returns the state it left."""
    return Committer(context.services()).run(distribution_id)


def earliest_start(now: datetime, margin_seconds: int) -> datetime:
    """The earliest start time Punchh will accept, plus our margin, rounded up to a second."""
    moment = now + PUNCHH_MIN_LEAD + timedelta(seconds=margin_seconds)
    return moment.replace(microsecond=0) + timedelta(seconds=1 if moment.microsecond else 0)


def choose_start_time(requested: str | None, now: datetime, margin_seconds: int) -> datetime:
    """The requested start if it is far enough ahead at this attempt, else the earliest allowed."""
    floor = earliest_start(now, margin_seconds)
    if requested:
        wanted = datetime.strptime(requested, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if wanted >= floor:
            return wanted
    return floor


class Committer(Outcomes):
    """One attempt at one distribution, under its lock."""

    def run(self, distribution_id: str) -> str:
        """Take the lock and act; a held lock means another worker is already on it."""
        token = uuid.uuid4().hex
        lock_ms = self.settings.commit_lock_seconds * 1000
        if not self.ledger.acquire_lock(distribution_id, token, lock_ms):
            # The holder finishes the work; if it died, the sweeper re-queues after the lock
            # expires. Never wait here: two runs must not overlap.
            log.info("commit skipped: locked", extra={"distribution_id": distribution_id})
            return "locked"
        self.token = token
        try:
            return self._attempt(distribution_id, token)
        finally:
            with contextlib.suppress(redis.RedisError):  # the lock expires on its own
                self.ledger.release_lock(distribution_id, token)

    def _attempt(self, distribution_id: str, token: str) -> str:
        dist = self.ledger.get(distribution_id)
        if dist is None:
            log.warning("commit skipped: no record", extra={"distribution_id": distribution_id})
            return "missing"
        if dist.state == State.COMMITTING:
            # A previous run wrote `committing` and never finished: its POST may have reached
            # Punchh. Never post again; an operator checks Punchh and resolves it.
            return self.settle(
                dist,
                State.UNKNOWN,
                "a worker stopped while posting to Punchh; check Punchh before resolving",
                allowed_from=(State.COMMITTING,),
            )
        # Audience mode: the send's own recipients, gathered into a custom segment first.
        audience = AudienceRun(self) if dist.gifts_recipients else None
        if audience is not None and dist.state == State.COMMITTED:
            return audience.top_up(dist)  # late recipients, until shortly before the start
        if dist.state not in (State.QUEUED, State.RESOLVING):
            return dist.state  # committed, settled, held or cancelled: nothing to do
        refusal = self.services.lockout.current()
        if refusal is not None:
            # Decided here, before `resolving`, so a locked-out run costs no attempt.
            return self.settle(
                dist,
                State.FAILED,
                f"{refusal.describe()}, then retry this distribution",
                allowed_from=(State.QUEUED, State.RESOLVING),
            )
        if audience is not None:
            waiting = audience.gather(dist)
            if waiting is not None:
                return waiting  # the send goes on, or a batch waits for its retry
            dist = self.ledger.get(dist.id) or dist

        attempts = dist.int_field("attempts") + 1
        changed, _ = self.ledger.transition(
            dist.id,
            State.RESOLVING,
            allowed_from=(State.QUEUED, State.RESOLVING),
            fields={"attempts": attempts},
        )
        if not changed:
            return self._current_state(dist.id)

        try:
            resolution = (
                audience.resolution(dist)
                if audience is not None
                else self.services.catalog.resolve_pair(
                    dist.fields["segment"], dist.fields["redeemable"]
                )
            )
        except PunchhAuthError as exc:
            return self.auth_failed(dist, exc, (State.RESOLVING,))
        except PunchhRejected as exc:
            return self.settle(dist, State.REJECTED, exc.message, allowed_from=(State.RESOLVING,))
        except (PunchhNotActed, PunchhAmbiguous, PunchhUnexpected) as exc:
            # Lists are read-only: any failure to read them is safe to retry.
            return self._retry_or_fail(dist, attempts, exc, from_state=State.RESOLVING)

        if not self.ledger.extend_lock(dist.id, token, self.settings.commit_lock_seconds * 1000):
            # Resolving took longer than the lock: another run may have started. Let it win.
            return self._current_state(dist.id)

        now = datetime.now(UTC)
        start = choose_start_time(
            dist.fields.get("start_time_requested"), now, self.settings.start_time_margin_seconds
        )
        name = dist.fields.get("campaign_name") or dist.id
        try:
            # Durable before the POST: if Redis forgot `committing` (a failover to a replica
            # that never got it), a later run would find the record resolving and post again.
            changed, _ = self.ledger.transition(
                dist.id,
                State.COMMITTING,
                allowed_from=(State.RESOLVING,),
                fields={
                    "segment_id": resolution.segment_id,
                    "redeemable_uuid": resolution.redeemable_uuid,
                    "start_time": format_start_time(start),
                    "punchh_name": name[:255],
                },
                durable=True,
            )
        except NotDurable as exc:
            # Nothing was posted, so trying again later is safe: back to queued, and if Redis
            # forgets even that, the record is still active and the sweeper re-queues it.
            # Punchh provably saw nothing, which is what PunchhNotActed means to the retry.
            not_sent = PunchhNotActed(f"not posted: Redis did not confirm `committing`: {exc}")
            return self._retry_or_fail(dist, attempts, not_sent, from_state=State.COMMITTING)
        if not changed:
            return self._current_state(dist.id)

        started = time.perf_counter()
        try:
            reply = self.services.punchh.commit(
                redeemable_uuid=resolution.redeemable_uuid,
                segment_id=resolution.segment_id,
                name=name[:255],
                start_time=start,
                external_campaign_id=dist.id,
            )
        except PunchhNotActed as exc:
            return self._retry_or_fail(dist, attempts, exc, from_state=State.COMMITTING)
        except PunchhAuthError as exc:
            return self.auth_failed(dist, exc, (State.COMMITTING,))
        except PunchhRejected as exc:
            return self.settle(dist, State.REJECTED, exc.message, allowed_from=(State.COMMITTING,))
        except (PunchhAmbiguous, PunchhUnexpected) as exc:
            return self.settle(
                dist,
                State.UNKNOWN,
                f"{exc.message}; the campaign may exist in Punchh: check before resolving",
                allowed_from=(State.COMMITTING,),
            )

        fields: dict[str, str | int | float] = {
            "campaign_id": int(reply["campaign_id"]),
            "committed_at": time.time(),
            "commit_seconds": round(time.perf_counter() - started, 4),
            "last_error": "",
        }
        if reply.get("start_time"):
            fields["punchh_start_time"] = f"{reply['start_time']} {reply.get('timezone', '')}"
        # Punchh has the campaign: the record ends committed whatever the ledger says now.
        # Another state means a write was lost (a failover) or the sweeper presumed this run
        # dead; left as it is, a later run would post a second campaign.
        campaign_id = int(reply["campaign_id"])
        written, before, recorded = self._patiently(
            lambda: self.ledger.record_commit(dist, campaign_id, fields)
        )
        if not written:
            if recorded != str(campaign_id):
                log.error(
                    "Punchh created a second campaign for a committed distribution",
                    extra={"distribution_id": dist.id, "campaign_id": campaign_id,
                           "recorded": recorded},
                )
        elif before == State.UNKNOWN:
            # The sweeper gave up on this run while Punchh was still answering; the answer
            # settles it, so the operator need not.
            log.info("Punchh answered after the run was presumed lost",
                     extra={"distribution_id": dist.id, "campaign_id": campaign_id})
        elif before != State.COMMITTING:
            log.warning(
                "ledger mismatch after commit: recorded committed",
                extra={"distribution_id": dist.id, "campaign_id": campaign_id,
                       "state_before": before or "missing"},
            )
            with contextlib.suppress(redis.RedisError):
                self.ledger.incr("commit_ledger_mismatch")
        self._count_commit_latency(dist)
        if audience is not None and written:
            audience.committed(dist.id, start)
        log.info(
            "committed",
            extra={"distribution_id": dist.id, "campaign_id": fields["campaign_id"]},
        )
        return State.COMMITTED.value
