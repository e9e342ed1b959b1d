"""Audience mode's steps around the commit: the custom segment, its members, the quiet gap.

The commit job calls these under the distribution's lock, so one run at a time acts on a send.
Before the commit a run creates the send's custom segment (exactly once), delivers the
recipients gathered so far in full batches, and, once the send has gone quiet (or was ended
through /v1), delivers the rest and lets the commit go ahead. After the commit, runs keep
delivering recipients that arrive before `late_at`, a margin ahead of the start time.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from datetime import UTC, datetime

from ledger.audience import BATCH_SIZE
from ledger.jobs import enqueue_commit
from ledger.record import Distribution
from ledger.states import State
from punchh.catalog import Resolution
from punchh.custom_segments import CustomSegments
from punchh.errors import (
    CustomSegmentNameTaken,
    PunchhAmbiguous,
    PunchhAuthError,
    PunchhError,
    PunchhNotActed,
    PunchhRejected,
    PunchhUnexpected,
)
from workers.outcomes import Outcomes

log = logging.getLogger("connector.worker")

#: Record fields of an audience send (none holds guest data).
CS_NAME, CS_ID, LATE_AT, CHECK_AT = "cs_name", "cs_id", "late_at", "check_at"
ATTEMPTS, NOT_ADDED = "audience_attempts", "audience_not_added"


def custom_segment_name(distribution_id: str) -> str:
    """The send's custom segment, named after the distribution: the same on every attempt.

    Punchh's create is not idempotent but its names are unique, so a name derived from the
    distribution is what lets a lost answer be recovered by finding it, never by a second one.
    """
    digest = hashlib.sha256(distribution_id.encode()).hexdigest()[:20]
    return f"punchh-connector {digest}"


class AudienceRun:
    """One run's audience work for one distribution, inside the commit job's run."""

    def __init__(self, committer: Outcomes) -> None:
        self.c = committer
        self.ledger = committer.ledger
        self.settings = committer.settings
        self.keys = committer.ledger.audience
        self.segments = CustomSegments(
            committer.services.punchh, per_page=self.settings.punchh_per_page
        )

    # --- before the commit ------------------------------------------------------------------
    def gather(self, dist: Distribution) -> str | None:
        """Deliver what is ready; None when the send is over and everything is delivered.

        Otherwise the state this run leaves (waiting for quiet, retrying, failed, rejected).
        """
        now = time.time()
        quiet_at = self.quiet_at(dist)
        over = now >= quiet_at
        try:
            segment_id = self.custom_segment(dist)
            left = self.deliver(dist, segment_id, everything=over)
        except PunchhError as exc:
            return self.delivery_failed(dist, exc, committed=False)
        if not over:
            return self.wait_until(dist, quiet_at, State.QUEUED)
        if left:
            # Recipients kept arriving while the rest was delivered: not over after all.
            return self.wait_until(dist, now + 1, State.QUEUED)
        # Due from now on: if this run dies between the commit and `committed`, the sweep
        # still finds the send and delivers whoever arrives after the commit.
        self.keys.mark_due(dist.id, now)
        return None

    def resolution(self, dist: Distribution) -> Resolution:
        """The ids a commit to the send's custom segment needs (errors as the catalog's)."""
        name = dist.fields.get(CS_NAME) or custom_segment_name(dist.id)
        segment_id = self.segments.listed_segment_id(name)
        if segment_id is None:
            if not self.settings.audience_custom_segment_id_fallback:
                # Punchh may list a new segment a little later: retried within the budget.
                raise PunchhUnexpected(
                    f'Get Segment List does not list the custom segment "{name}" (yet); if '
                    "your Punchh commits to a custom_segment_id instead, set "
                    "AUDIENCE_CUSTOM_SEGMENT_ID_FALLBACK (docs/punchh-custom-segments.md)"
                )
            segment_id = int(dist.fields[CS_ID])
        redeemable = self.c.services.catalog.resolve("redeemables", dist.fields["redeemable"])
        return Resolution(
            segment_id=segment_id,
            segment_name=name,
            redeemable_uuid=str(redeemable["redeemable_uuid"]),
            redeemable_name=str(redeemable.get("name", dist.fields["redeemable"])),
        )

    def late_at(self, start: datetime) -> float:
        """When a recipient comes too late to reach Punchh before it gifts at `start`."""
        return start.timestamp() - self.settings.audience_late_margin_seconds

    def committed(self, distribution_id: str, start: datetime) -> None:
        """After the commit: recipients are added until `late_at`, then counted late."""
        late_at = self.late_at(start)
        self.ledger.set_fields(distribution_id, {LATE_AT: late_at})
        self.keys.mark_due(distribution_id, late_at)
        enqueue_commit(self.c.services.queue, self.ledger, distribution_id)

    # --- after the commit -------------------------------------------------------------------
    def top_up(self, dist: Distribution) -> str:
        """Deliver recipients that arrived after the commit; finish at `late_at`."""
        late_at = dist.float_field(LATE_AT)
        if late_at is None:
            # The run that committed stopped before `committed` (or an operator resolved the
            # send): the start time it committed is on the record.
            start = dist.fields.get("start_time")
            if not start:
                self.keys.clear_due(dist.id)
                return State.COMMITTED.value
            late_at = self.late_at(datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=UTC))
            self.ledger.set_fields(dist.id, {LATE_AT: late_at})
            self.keys.mark_due(dist.id, late_at)
        try:
            left = self.deliver(dist, int(dist.fields[CS_ID]), everything=True)
        except PunchhError as exc:
            return self.delivery_failed(dist, exc, committed=True)
        if time.time() < late_at or left:
            return self.wait_until(dist, max(late_at + 1, time.time() + 1), State.COMMITTED)
        self.keys.clear_due(dist.id)
        log.info("audience delivered", extra={"distribution_id": dist.id})
        return State.COMMITTED.value

    # --- the parts ---------------------------------------------------------------------------
    def quiet_at(self, dist: Distribution) -> float:
        """When the send counts as over: its last recipient plus the quiet gap, or now if ended."""
        if dist.fields.get("ended"):
            return 0.0
        last = dist.float_field("last_seen") or dist.float_field("created_at") or time.time()
        return last + self.settings.audience_quiet

    def custom_segment(self, dist: Distribution) -> int:
        """The send's custom segment id, created on the first run and only then."""
        known = dist.fields.get(CS_ID)
        if known:
            return int(known)
        name = dist.fields.get(CS_NAME)
        found = None
        if name:
            found = self.segments.find(name)  # an earlier run may have created it
        else:
            name = custom_segment_name(dist.id)
            # Durable before Punchh is asked: a run that dies mid-create is followed by one
            # that looks the name up instead of creating a second segment.
            self.ledger.set_fields(dist.id, {CS_NAME: name}, durable=True)
        if found is None:
            try:
                found = self.segments.create(name, description=f"punchh-connector {dist.id}")
            except CustomSegmentNameTaken:
                found = self.segments.find(name)
            except (PunchhAmbiguous, PunchhUnexpected):
                found = self.segments.find(name)
                if found is None:
                    raise
        if found is None:
            raise PunchhUnexpected(f'Punchh says "{name}" exists but does not list it (yet)')
        self.ledger.set_fields(dist.id, {CS_ID: found.custom_segment_id})
        log.info(
            "custom segment ready",
            extra={"distribution_id": dist.id, "custom_segment_id": found.custom_segment_id},
        )
        return found.custom_segment_id

    def deliver(self, dist: Distribution, segment_id: int, *, everything: bool) -> int:
        """Send waiting recipients in batches (only full ones unless `everything`); how many
        are left waiting. Each batch stays in Redis until Punchh has taken it."""
        lock_ms = self.settings.commit_lock_seconds * 1000
        while True:
            waiting = self.keys.waiting(dist.id)
            if waiting.in_batch == 0 and (
                waiting.pending == 0 or (not everything and waiting.pending < BATCH_SIZE)
            ):
                return waiting.total
            if not self.ledger.extend_lock(dist.id, self.c.token, lock_ms):
                raise PunchhNotActed("the run's lock lapsed; the next run goes on")
            batch = self.keys.take(dist.id)
            result = self.segments.add_users(segment_id, [guest.value for guest in batch])
            self.keys.done(dist.id, result.sent, result.invalid)
            if dist.int_field(ATTEMPTS):
                self.ledger.set_fields(dist.id, {ATTEMPTS: 0})  # the budget is per batch

    def delivery_failed(self, dist: Distribution, exc: PunchhError, *, committed: bool) -> str:
        """Retry a batch (adds are safe to repeat) within the budget; then stop and say so."""
        if isinstance(exc, PunchhAuthError) and not committed:
            return self.c.auth_failed(dist, exc, (dist_state(dist),))
        attempts = dist.int_field(ATTEMPTS) + 1
        permanent = isinstance(exc, PunchhRejected)  # auth errors too: they wait for a human
        if not permanent and attempts < self.settings.commit_max_attempts:
            self.ledger.set_fields(dist.id, {ATTEMPTS: attempts, "last_error": exc.message})
            delay = self.c.backoff(attempts, getattr(exc, "retry_after", None))
            return self.wait_until(dist, time.time() + delay, dist_state(dist), force=True)
        waiting = self.keys.waiting(dist.id).total
        reason = (
            f"{waiting} guests not added to the custom segment "
            f"({'gave up after ' + str(attempts) + ' attempts: ' if not permanent else ''}"
            f"{exc.message})"
        )
        if committed:
            # The campaign exists; the guests not added will not be gifted. Say so, loudly.
            dropped = self.keys.drop(dist.id)
            self.keys.clear_due(dist.id)
            self.ledger.set_fields(
                dist.id, {NOT_ADDED: dist.int_field(NOT_ADDED) + dropped, "last_error": reason}
            )
            self.ledger.record_event(dist.id, {"by": "worker", "note": reason[:200]})
            log.error("audience not delivered", extra={"distribution_id": dist.id,
                                                       "not_added": dropped})
            return State.COMMITTED.value
        # Never committed with a partial audience unless an operator chooses so.
        self.ledger.set_fields(dist.id, {NOT_ADDED: waiting})
        return self.c.settle(
            dist,
            State.FAILED,
            reason + "; retry, or commit-partial to gift only those added",
            allowed_from=(State.QUEUED, State.RESOLVING),
        )

    def wait_until(
        self, dist: Distribution, moment: float, state: State, *, force: bool = False
    ) -> str:
        """Schedule the next run for `moment` unless one is already due by then.

        RQ keeps a scheduled job's time in whole seconds and may start it up to a second
        early, so the run scheduled for `check_at` can be this one: a check is ahead only
        while its whole second is, and a new one is scheduled for a whole second at or after
        `moment`, never before it.
        """
        scheduled = dist.float_field(CHECK_AT) or 0.0
        if force or not (time.time() < math.floor(scheduled) and scheduled <= moment):
            moment = float(math.ceil(moment))
            delay = max(moment - time.time(), 0.0)
            self.ledger.set_fields(dist.id, {CHECK_AT: moment, "next_attempt_at": moment})
            enqueue_commit(self.c.services.queue, self.ledger, dist.id, delay=delay)
        return state.value


def dist_state(dist: Distribution) -> State:
    """The record's state as the enum."""
    return State(dist.state)

