"""Operator and API actions on audience sends: add recipients, end a send, commit partially.

Like ledger/actions.py, each is one compare-and-set on the record plus the job that follows;
guest identifiers only ever pass through to the send's pending list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rq import Queue

from adapters.types import Guest
from ledger.actions import ActionResult, act, get, with_job
from ledger.audience import DELIVERY_RUN_EVERY
from ledger.jobs import enqueue_commit
from ledger.record import Distribution
from ledger.states import State
from ledger.store import Ledger
from wiring.errors import Conflict, NotFound


@dataclass(frozen=True)
class Added:
    """What POST /v1/distributions/{id}/recipients did (counts only)."""

    distribution_id: str
    state: str
    accepted: int
    late: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "distribution_id": self.distribution_id,
            "state": self.state,
            "accepted": self.accepted,
            "late": self.late,
        }


def add_recipients(
    ledger: Ledger, queue: Queue, distribution_id: str, guests: list[Guest], *, now: float
) -> Added:
    """Store guests for an audience send's custom segment; late ones are only counted."""
    state, audience, accepted, late, length = ledger.audience.add(distribution_id, guests, now)
    if not state:
        raise NotFound(f"no distribution {distribution_id!r} (or it expired)")
    if audience != "recipients":
        raise Conflict(
            "this distribution gifts a segment, not its recipients: open the send with "
            '"audience": "recipients"',
            code="not_an_audience_send",
        )
    if state in (State.CANCELLED, State.REJECTED):
        raise Conflict(f"this send is {state}: nothing more is added", code="wrong_state")
    if length >= DELIVERY_RUN_EVERY:
        enqueue_commit(queue, ledger, distribution_id)  # batches are ready
    return Added(distribution_id, state, accepted, late)


def _audience_send(dist: Distribution, action: str) -> None:
    if dist.fields.get("audience") != "recipients":
        raise Conflict(f"only an audience send can {action}", code="not_an_audience_send")


def end_send(
    ledger: Ledger, queue: Queue, distribution_id: str, *, actor: str, reason: str = ""
) -> ActionResult:
    """The send is over now, not after its quiet gap: deliver the rest and commit."""
    dist = get(ledger, distribution_id)
    _audience_send(dist, "be ended")
    if dist.state not in (State.QUEUED, State.RESOLVING):
        raise Conflict(f"cannot end a send in state {dist.state!r}", code="wrong_state")
    ledger.set_fields(distribution_id, {"ended": 1, "next_attempt_at": ""})
    ledger.record_event(distribution_id, {"by": actor, "note": f"ended; {reason}"[:200]})
    job = enqueue_commit(queue, ledger, distribution_id)
    return ActionResult(dist.id, "end", dist.state, dist.state, actor, "ended", job_id=job)


def commit_partial(
    ledger: Ledger, queue: Queue, distribution_id: str, *, actor: str, reason: str = ""
) -> ActionResult:
    """failed → queued, gifting only the guests Punchh already has; the rest are dropped."""
    dist = get(ledger, distribution_id)
    _audience_send(dist, "commit partially")
    added = dist.int_field("audience_added")
    if added == 0:
        raise Conflict("no guest was added to this send's custom segment: nothing to gift",
                       code="nothing_added")
    not_added = max(dist.int_field("audience_not_added"), ledger.audience.waiting(dist.id).total)
    result = act(
        ledger,
        dist,
        action="commit-partial",
        to=State.QUEUED,
        allowed_from=(State.FAILED,),
        actor=actor,
        reason=reason,
        fields={
            "ended": 1,
            "audience_attempts": 0,
            "attempts": 0,
            "last_error": "",
            "next_attempt_at": "",
            "audience_not_added": not_added,
        },
        detail=f"commit to the {added} guests added; {not_added} not added are dropped",
    )
    ledger.audience.drop(distribution_id)  # before the job: it must find nothing to deliver
    return with_job(ledger, queue, result)
