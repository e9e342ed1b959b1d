"""Operator actions on distributions (retry, resolve, release, cancel, undo), shared by the
CLI and the `/v1` admin API; ledger/queries.py holds what operators read.

Every action is one compare-and-set state change on the ledger (so it races safely with the
workers), recorded as an event naming who, when and what. The last action is also kept on the
record (`admin_last`: what it changed and the fields it overwrote) so `undo` can reverse it —
only while the state has not moved on since (same state, same `updated_at`): once a worker has
acted on a release or retry, or anything else changed the record, there is nothing safe to
undo.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from rq import Queue

from ledger.jobs import enqueue_commit
from ledger.lockout import AuthLockout
from ledger.record import ADMIN_FIELD, Distribution, last_action, undoable
from ledger.states import State
from ledger.store import Ledger
from wiring.errors import BadRequest, Conflict, NotFound

#: States an operator may retry: Punchh provably created nothing in either.
RETRYABLE = (State.FAILED, State.REJECTED)
#: States an operator may cancel: none of them has a POST to Punchh in flight.
CANCELLABLE = (State.HELD, State.QUEUED, State.FAILED, State.UNKNOWN)
#: Longest actor name and reason kept on a record.
MAX_ACTOR = 64
MAX_REASON = 300

_PRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ActionResult:
    """What one admin action did."""

    distribution_id: str
    action: str
    state_before: str
    state: str
    actor: str
    note: str
    job_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def clean_text(value: str | None, limit: int) -> str:
    """Strip control characters and bound the length of operator-supplied text."""
    return _PRINTABLE.sub(" ", value or "").strip()[:limit]


def clean_actor(value: str | None, default: str) -> str:
    """The actor name recorded on events: printable, bounded, never empty."""
    return clean_text(value, MAX_ACTOR) or default


def get(ledger: Ledger, distribution_id: str) -> Distribution:
    """The record, or NotFound."""
    dist = ledger.get(distribution_id)
    if dist is None:
        raise NotFound(f"no distribution {distribution_id!r} (or it expired)")
    return dist


# --- actions ----------------------------------------------------------------------------------
def retry(
    ledger: Ledger, queue: Queue, lockout: AuthLockout, distribution_id: str,
    *, actor: str, reason: str = "",
) -> ActionResult:
    """failed (or rejected) → queued with attempts reset, and a commit job queued."""
    dist = get(ledger, distribution_id)
    _refuse_while_locked_out(lockout, "retry")
    attempts = dist.int_field("attempts")
    result = act(
        ledger,
        dist,
        action="retry",
        to=State.QUEUED,
        allowed_from=RETRYABLE,
        actor=actor,
        reason=reason,
        fields={"attempts": 0, "audience_attempts": 0, "last_error": "", "next_attempt_at": ""},
        detail=f"attempts reset from {attempts}",
    )
    return with_job(ledger, queue, result)


def resolve(
    ledger: Ledger,
    queue: Queue,
    lockout: AuthLockout,
    distribution_id: str,
    *,
    actor: str,
    campaign_id: int | None = None,
    not_created: bool = False,
    reason: str = "",
) -> ActionResult:
    """unknown → committed with Punchh's campaign id, or (not created) → queued to commit."""
    if (campaign_id is None) == (not not_created):
        raise BadRequest("give exactly one of campaign_id or not_created")
    dist = get(ledger, distribution_id)
    if not_created:
        _refuse_while_locked_out(lockout, "resolve --not-created")
    if campaign_id is not None:
        if campaign_id < 1:
            raise BadRequest("campaign_id must be a positive integer")
        return act(
            ledger,
            dist,
            action="resolve",
            to=State.COMMITTED,
            allowed_from=(State.UNKNOWN,),
            actor=actor,
            reason=reason,
            fields={"campaign_id": campaign_id, "committed_at": time.time(), "last_error": ""},
            detail=f"operator found Punchh campaign {campaign_id}",
        )
    result = act(
        ledger,
        dist,
        action="resolve",
        to=State.QUEUED,
        allowed_from=(State.UNKNOWN,),
        actor=actor,
        reason=reason,
        fields={"last_error": "", "next_attempt_at": ""},
        detail="operator found no campaign in Punchh: commit it",
    )
    return with_job(ledger, queue, result)


def release(
    ledger: Ledger, queue: Queue, lockout: AuthLockout, distribution_id: str,
    *, actor: str, reason: str = "",
) -> ActionResult:
    """held → queued, and a commit job queued."""
    dist = get(ledger, distribution_id)
    _refuse_while_locked_out(lockout, "release")
    result = act(
        ledger,
        dist,
        action="release",
        to=State.QUEUED,
        allowed_from=(State.HELD,),
        actor=actor,
        reason=reason,
        fields={"last_error": ""},
        detail="released from hold",
    )
    return with_job(ledger, queue, result)


def cancel(ledger: Ledger, distribution_id: str, *, actor: str, reason: str = "") -> ActionResult:
    """held, queued, failed or unknown → cancelled: nothing more is posted to Punchh."""
    dist = get(ledger, distribution_id)
    result = act(
        ledger,
        dist,
        action="cancel",
        to=State.CANCELLED,
        allowed_from=CANCELLABLE,
        actor=actor,
        reason=reason,
        fields={},
        detail=f"cancelled from {dist.state}",
    )
    ledger.audience.drop(distribution_id)  # an audience send's guests will never be gifted
    return result


def undo(
    ledger: Ledger, queue: Queue, distribution_id: str, *, actor: str, reason: str = ""
) -> ActionResult:
    """Reverse the last admin action if nothing has moved the distribution since."""
    dist = get(ledger, distribution_id)
    last = last_action(dist)
    if not last:
        raise Conflict("no admin action on this distribution to undo", code="cannot_undo")
    if not undoable(dist, last):
        raise Conflict(
            f"the distribution has moved on since {last['action']} by {last['by']} "
            f"(now {dist.state}); nothing was undone",
            code="cannot_undo",
        )
    target = State(last["from"])
    restore: dict[str, str | int | float] = dict(last.get("restore", {}))
    restore[ADMIN_FIELD] = ""
    note = f"undo {last['action']} by {last['by']}" + (f": {reason}" if reason else "")
    changed, before = ledger.transition(
        dist.id,
        target,
        allowed_from=(last["to"],),
        fields=restore,
        actor=actor,
        note=note[:MAX_REASON],
    )
    if not changed:
        raise Conflict(
            f"the distribution moved to {before} meanwhile; nothing undone", code="cannot_undo"
        )
    result = ActionResult(dist.id, "undo", before, target.value, actor, note)
    return with_job(ledger, queue, result) if target == State.QUEUED else result


def _refuse_while_locked_out(lockout: AuthLockout, action: str) -> None:
    """Queue no commit while Punchh access is locked out: the job would fail at once.

    Clearing the lockout is its own, explicit action (`punchh-unlock`): an operator who retries
    one distribution has not necessarily fixed the key, and Punchh blocks the IP of a
    deployment that keeps presenting a refused one.
    """
    refusal = lockout.current()
    if refusal is not None:
        raise Conflict(
            f"cannot {action} now: {refusal.describe()}; then {action} again",
            code="punchh_locked_out",
        )


def act(
    ledger: Ledger,
    dist: Distribution,
    *,
    action: str,
    to: State,
    allowed_from: tuple[State, ...],
    actor: str,
    reason: str,
    fields: Mapping[str, str | int | float],
    detail: str,
) -> ActionResult:
    """One compare-and-set transition that records the action and what undo needs."""
    if dist.state not in allowed_from:
        raise Conflict(
            f"cannot {action} a distribution in state {dist.state!r} "
            f"(only {', '.join(s.value for s in allowed_from)})",
            code="wrong_state",
        )
    now = time.time()
    restore = {name: dist.fields.get(name, "") for name in fields}
    last = {
        "action": action,
        "from": dist.state,
        "to": to.value,
        "by": actor,
        "at": repr(now),  # equals the record's updated_at after this transition
        "restore": restore,
    }
    note = f"{action}: {detail}" + (f"; reason: {reason}" if reason else "")
    changed, before = ledger.transition(
        dist.id,
        to,
        allowed_from=allowed_from,
        fields={**fields, ADMIN_FIELD: json.dumps(last, separators=(",", ":"))},
        actor=actor,
        note=note[:MAX_REASON],
        now=now,
    )
    if not changed:
        raise Conflict(
            f"cannot {action}: the distribution moved to {before!r} meanwhile",
            code="wrong_state",
        )
    return ActionResult(dist.id, action, before, to.value, actor, note)


def with_job(ledger: Ledger, queue: Queue, result: ActionResult) -> ActionResult:
    """Queue the commit job for a distribution an action put back in `queued`.

    A crash between the transition and this enqueue leaves a queued record with no job: the
    sweeper re-queues it, as for intake.
    """
    return replace(result, job_id=enqueue_commit(queue, ledger, result.distribution_id))
