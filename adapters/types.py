"""The request every adapter maps its platform's payload to; nothing of ours is imported."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: Longest accepted campaign ref, send key or Punchh name: keeps records (and keys) small.
MAX_PART_LENGTH = 200


#: Stands for the send key of a request that follows its send (shown by test sends).
OPEN_SEND = "<open send>"

#: The key rule of a send recognised by its continuity rather than by a key it carries.
GAP_RULE = "gap"

#: Who is gifted: a Punchh segment the marketer names (the default), or exactly the send's
#: own recipients, gathered into a Punchh custom segment (docs/audience-mode.md).
SEGMENT_AUDIENCE = "segment"
RECIPIENTS_AUDIENCE = "recipients"
AUDIENCES = (SEGMENT_AUDIENCE, RECIPIENTS_AUDIENCE)


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
    #: SEGMENT_AUDIENCE, or RECIPIENTS_AUDIENCE (then `segment` is empty: the ledger names the
    #: send's custom segment once it knows the send).
    audience: str = SEGMENT_AUDIENCE

    @property
    def gifts_recipients(self) -> bool:
        """Audience mode: the send's recipients, not a named segment, are gifted."""
        return self.audience == RECIPIENTS_AUDIENCE

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
class Guest:
    """One recipient's Punchh identifier, carried to Punchh and nowhere else.

    Never part of a DistributionRequest (those are memoised and shared by every recipient of a
    send); its repr hides the value so a log line or a traceback cannot leak it.
    """

    kind: str  # "user_id" | "email"
    value: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Guest(kind={self.kind!r})"
