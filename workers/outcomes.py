"""How a commit run ends: a retry scheduled, a final state written, an alert queued.

The commit job's state machine (workers/commit.py) and audience mode's steps
(workers/audience.py) end every attempt through these, so a retry's backoff, the retry budget
and the alert for a state that needs a human are decided in one place.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from ledger.jobs import enqueue_alert, enqueue_commit
from ledger.lockout import UNLOCK_HINT
from ledger.record import Distribution
from ledger.states import ALERT_STATES, State
from punchh.errors import PunchhAuthError, PunchhError, PunchhLockedOut
from wiring.services import Services

log = logging.getLogger("connector.worker")

#: How long the final ledger write keeps trying through a Redis restart before giving up.
FINAL_WRITE_PATIENCE_SECONDS = 60.0
#: The longest Retry-After a worker waits out by itself. Punchh's own IP block lasts an hour;
#: asked for longer, the send is `failed` with the wait named and an operator decides when to
#: retry, rather than a job sleeping in the scheduler past the marketer's intent.
RETRY_AFTER_CEILING_SECONDS = 3600

T = TypeVar("T")


def backoff_seconds(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with jitter, capped; Punchh's Retry-After wins when it sent one.

    `cap` (RETRY_MAX_SECONDS) bounds only our own backoff: Punchh asking us to wait longer
    is respected, never cut short (the caller refuses waits beyond
    RETRY_AFTER_CEILING_SECONDS).
    """
    if retry_after is not None:
        return max(retry_after, 0.0)
    exp = min(cap, base * (2 ** max(attempt - 1, 0)))
    return float(exp / 2 + random.uniform(0, exp / 2))


class Outcomes:
    """One run's services, and the ways it can end."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.ledger = services.ledger
        #: This run's lock token (audience deliveries renew the lock between batches).
        self.token = ""

    def _retry_or_fail(
        self, dist: Distribution, attempts: int, exc: PunchhError, *, from_state: State
    ) -> str:
        """Schedule another attempt when budget remains; else `failed`."""
        if attempts >= self.settings.commit_max_attempts:
            return self.settle(
                dist,
                State.FAILED,
                f"gave up after {attempts} attempts: {exc.message}",
                allowed_from=(from_state,),
            )
        retry_after: float | None = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after > RETRY_AFTER_CEILING_SECONDS:
            return self.settle(
                dist,
                State.FAILED,
                f"Punchh asked to wait {retry_after:g} s before trying again, longer than a "
                f"worker waits by itself ({RETRY_AFTER_CEILING_SECONDS} s): {exc.message}; "
                "retry this distribution once that time has passed",
                allowed_from=(from_state,),
            )
        delay = self.backoff(attempts, retry_after)
        changed, _ = self._patiently(
            lambda: self.ledger.transition(
                dist.id,
                State.QUEUED,
                allowed_from=(from_state,),
                fields={"last_error": exc.message, "next_attempt_at": time.time() + delay},
                note=f"retry in {delay:.1f}s: {exc.message}",
            )
        )
        if changed:
            # If we die between these two writes the sweeper re-queues the record.
            enqueue_commit(self.services.queue, self.ledger, dist.id, delay=delay)
        log.info(
            "commit retry scheduled",
            extra={"distribution_id": dist.id, "delay": round(delay, 2), "error": exc.message},
        )
        return State.QUEUED.value

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """The wait before the next attempt, by the configured backoff."""
        return backoff_seconds(
            attempt, self.settings.retry_base_seconds, self.settings.retry_max_seconds, retry_after
        )

    def auth_failed(
        self, dist: Distribution, exc: PunchhAuthError, allowed_from: tuple[State, ...]
    ) -> str:
        """Punchh refused the key (the client has locked every process out): fail, say why."""
        reason = exc.message if isinstance(exc, PunchhLockedOut) else (
            f"{exc.message}; {UNLOCK_HINT}, then retry this distribution"
        )
        return self.settle(dist, State.FAILED, reason, allowed_from=allowed_from)

    def settle(
        self,
        dist: Distribution,
        state: State,
        reason: str,
        *,
        allowed_from: tuple[State, ...],
    ) -> str:
        """Write a final (or operator-waiting) state and alert when it needs a human."""
        changed, _ = self._patiently(
            lambda: self.ledger.transition(
                dist.id,
                state,
                allowed_from=allowed_from,
                fields={"last_error": reason[:500]},
                note=reason[:200],
            )
        )
        if changed:
            log.warning(
                "distribution %s", state.value, extra={"distribution_id": dist.id, "error": reason}
            )
            if state in ALERT_STATES and self.settings.alert_webhook_url:
                enqueue_alert(self.services.queue, dist.id, state.value)
            if state == State.REJECTED and dist.gifts_recipients:
                # A rejected record expires after its retention (an operator may retry it
                # until then): its waiting identifiers must not outlive it.
                self.ledger.audience.expire(dist.id, self.ledger.retention_seconds)
            return state.value
        return self._current_state(dist.id)

    def _current_state(self, distribution_id: str) -> str:
        dist = self.ledger.get(distribution_id)
        return dist.state if dist else "missing"

    def _count_commit_latency(self, dist: Distribution) -> None:
        """First intake → committed, for the metrics endpoint."""
        created = dist.float_field("created_at")
        if created is not None:
            with contextlib.suppress(redis.RedisError):  # metrics never break a commit
                self.ledger.count_commit(time.time() - created)

    @staticmethod
    def _patiently(write: Callable[[], T]) -> T:
        """Retry a ledger write through a Redis restart: losing it would lose the outcome."""
        deadline = time.monotonic() + FINAL_WRITE_PATIENCE_SECONDS
        delay = 0.2
        while True:
            try:
                return write()
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
