"""The shapes every source's payload is mapped to, and the states a distribution moves through."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

#: Longest accepted campaign ref, send key or Punchh name: keeps records (and keys) small.
MAX_PART_LENGTH = 200


#: Stands for the send key of a request that follows its send (shown by test sends).
OPEN_SEND = "<open send>"

#: The key rule of a send recognised by its continuity rather than by a key it carries.
GAP_RULE = "gap"


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
class DistributionRequest:
    """One recipient's request, stripped to what names the send and what to gift."""

    source: str
    campaign_ref: str
    send_key: str
    key_rule: str
    segment: str
    redeemable: str
    start_time: datetime | None = None
    campaign_name: str | None = None
    #: An opaque, non-guest token naming this delivery attempt, so a platform's retry of the
    #: same recipient is not counted twice (SFMC: a hash of activityId + definitionInstanceId).
    replay_token: str | None = None
    #: Non-guest context kept for tracing (e.g. Braze dispatch_id, campaign and canvas names).
    trace: dict[str, str] = field(default_factory=dict)

    @property
    def follows_send(self) -> bool:
        """No run key: the ledger recognises the send by its continuity (docs/send-identity.md)."""
        return not self.send_key

    @property
    def id_prefix(self) -> str:
        """What every distribution of this campaign ref starts with."""
        return f"{self.source}:{self.campaign_ref}:"

    @property
    def distribution_id(self) -> str:
        """Deterministic id: every recipient of one send maps to the same record.

        A request that follows its send has no id of its own until the ledger places it on
        the campaign's open send (or opens one); this names that rule instead.
        """
        return self.id_prefix + (self.send_key or OPEN_SEND)


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
