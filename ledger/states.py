"""The states a distribution moves through, and what one intake step did with a request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """Where a distribution is in its life."""

    QUEUED = "queued"
    RESOLVING = "resolving"
    COMMITTING = "committing"
    COMMITTED = "committed"
    REJECTED = "rejected"
    FAILED = "failed"
    HELD = "held"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


#: States a worker may still act on.
ACTIVE_STATES = frozenset({State.QUEUED, State.RESOLVING, State.COMMITTING})
#: States that need nothing more from a worker (held and unknown wait for an operator).
SETTLED_STATES = frozenset(
    {State.COMMITTED, State.REJECTED, State.FAILED, State.HELD, State.UNKNOWN, State.CANCELLED}
)
#: States that mean an operator should look (each sends one alert).
ALERT_STATES = frozenset({State.REJECTED, State.FAILED, State.HELD, State.UNKNOWN})


@dataclass(frozen=True)
class IntakeResult:
    """What the single intake step did with one request."""

    distribution_id: str
    outcome: str  # created | counted | replay | conflict
    state: str
    recipients: int = 0
    existing_segment: str | None = None
    existing_redeemable: str | None = None
    #: Why a created send is held: "fanout", or "repeat <last seen> <previous send's id>".
    held_because: str = ""

    @property
    def conflict(self) -> bool:
        """Same id, different segment or redeemable: never a second campaign."""
        return self.outcome == "conflict"
