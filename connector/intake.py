"""Intake, shared by every source: one atomic ledger step, and the job for a new send."""

from __future__ import annotations

import logging
import time

from connector.jobs import enqueue_alert, enqueue_commit
from connector.models import DistributionRequest, IntakeResult, State
from connector.services import Services

log = logging.getLogger("connector.intake")


def submit(services: Services, req: DistributionRequest) -> IntakeResult:
    """Record one recipient's request; the first of a send also queues its commit job."""
    result = services.ledger.intake(req)
    if result.outcome == "created":
        # --- durability (issue 11 §3): the new record must survive a failover before any
        # answer or job. NotDurable is a RedisError, so the caller answers 503 + Retry-After:
        # the platform retries, and the retry counts on this record (if Redis kept it) or
        # creates it again (if it did not). Counted recipients never wait here.
        services.ledger.make_durable()
        if result.state == State.QUEUED:
            # A crash right here leaves a queued record with no job; the sweeper re-queues it.
            enqueue_commit(services.queue, services.ledger, result.distribution_id)
        elif result.state == State.HELD:
            services.ledger.record_event(
                result.distribution_id,
                {
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "to": State.HELD.value,
                    "by": "fan-out guard",
                    "note": (
                        f"more than {services.settings.fanout_limit} sends of "
                        f"{req.source}:{req.campaign_ref} within "
                        f"{services.settings.fanout_window_seconds}s: held for an operator"
                    ),
                },
            )
            services.ledger.set_fields(
                result.distribution_id,
                {"last_error": "held by the fan-out guard: too many distinct send keys"},
            )
            if services.settings.alert_webhook_url:
                enqueue_alert(services.queue, result.distribution_id, State.HELD.value)
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
