"""Intake, shared by every source: one atomic ledger step, and the job for a new send."""

from __future__ import annotations

import logging
import time

from rq import Queue

from adapters.types import DistributionRequest, Guest
from ledger.audience import DELIVERY_RUN_EVERY
from ledger.jobs import enqueue_alert, enqueue_commit
from ledger.states import IntakeResult, State
from ledger.store import Ledger

log = logging.getLogger("ledger.intake")


def submit(
    ledger: Ledger,
    queue: Queue,
    req: DistributionRequest,
    *,
    alerts: bool,
    guest: Guest | None = None,
    recipient: bool = True,
) -> IntakeResult:
    """Record one recipient's request; the first of a send also queues its commit job.

    `alerts`: whether operator alerts are on (ALERT_WEBHOOK_URL), for a send held at intake.
    `guest`: the recipient's identifier, for a send that gifts its recipients; `recipient`
    False for a request that opens such a send without being one of its recipients.
    """
    result = ledger.intake(req, guest=guest, recipient=recipient)
    if (
        req.gifts_recipients
        and result.outcome == "counted"
        and result.recipients % DELIVERY_RUN_EVERY == 0
        and result.state in (State.QUEUED, State.COMMITTED)
    ):
        # Batches have gathered: a run delivers them now rather than at the quiet gap, so
        # Redis holds at most a few batches per send between runs.
        enqueue_commit(queue, ledger, result.distribution_id)
    if result.outcome == "created":
        # The ledger has confirmed the new record durable (or raised NotDurable, a RedisError
        # answered 503 + Retry-After: the platform retries, and the retry counts on the record
        # and confirms it, or creates it again if Redis lost it) before any job is queued.
        if result.state == State.QUEUED:
            # A crash right here leaves a queued record with no job; the sweeper re-queues it.
            enqueue_commit(queue, ledger, result.distribution_id)
        elif result.state == State.HELD:
            _hold(ledger, req, result)
            if alerts:
                enqueue_alert(queue, result.distribution_id, State.HELD.value)
        log.info(
            "distribution created",
            extra={
                "distribution_id": result.distribution_id,
                "source": req.source,
                "state": result.state,
                "key_rule": req.key_rule,
            },
        )
    elif result.conflict:
        log.warning(
            "conflicting request refused",
            extra={"distribution_id": result.distribution_id, "source": req.source},
        )
    return result


def held_reason(ledger: Ledger, req: DistributionRequest, held_because: str) -> str:
    """Why the intake held a new send, in words an operator can act on."""
    if held_because.startswith("repeat "):
        _, last_seen, previous = held_because.split(" ", 2)
        quiet = max(time.time() - float(last_seen), 0.0)
        return (
            f"a new send of {req.source}:{req.campaign_ref} began {quiet / 60:.0f} min after "
            f"its previous send ({previous}) went quiet, within SEND_REPEAT_HOLD_SECONDS="
            f"{ledger.repeat_hold_seconds}: a late retry wave of that send looks the "
            "same. Cancel it if it is a retry; release it if it is really a new run (several "
            "runs a day need a run key: docs/braze.md, docs/sfmc.md)"
        )
    return (
        f"held by the fan-out guard: more than {ledger.fanout_limit} distinct send keys of "
        f"{req.source}:{req.campaign_ref} within {ledger.fanout_window_seconds}s (a per-guest "
        "key?); further new keys of it are counted here. Release it if it is a real new run"
    )


def _hold(ledger: Ledger, req: DistributionRequest, result: IntakeResult) -> None:
    """Tell the operator why a new send waits for them, on the record."""
    reason = held_reason(ledger, req, result.held_because)
    ledger.record_event(
        result.distribution_id,
        {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "to": State.HELD.value,
            "by": "repeat hold" if result.held_because.startswith("repeat ") else "fan-out guard",
            "note": reason[:200],
        },
    )
    ledger.set_fields(result.distribution_id, {"last_error": reason[:500]})
