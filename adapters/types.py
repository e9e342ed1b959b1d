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
