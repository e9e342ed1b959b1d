"""A distribution record: its Redis hash read back, the fields written at its creation, and
the last operator action kept on it."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.types import DistributionRequest

#: Record fields holding non-guest tracing context (Braze names, dispatch id).
TRACE_PREFIX = "t_"

#: Events kept per distribution (state changes and admin actions).
MAX_EVENTS = 50

#: The record field holding the last admin action (ledger/actions.py), for undo and alerts.
ADMIN_FIELD = "admin_last"


@dataclass(frozen=True)
class Distribution:
    """A distribution record as read from Redis."""

    id: str
    fields: dict[str, str]

    @property
    def state(self) -> str:
        """Current state name."""
        return self.fields.get("state", "")

    @property
    def gifts_recipients(self) -> bool:
        """An audience send: its own recipients, in a custom segment, are gifted."""
        return self.fields.get("audience") == "recipients"

    def int_field(self, name: str, default: int = 0) -> int:
        """A counter field as an int."""
        try:
            return int(self.fields.get(name, default))
        except ValueError:
            return default

    def float_field(self, name: str) -> float | None:
        """A timestamp field as a float, or None."""
        raw = self.fields.get(name)
        return float(raw) if raw else None

    def as_dict(self) -> dict[str, Any]:
        """The record as the status API shows it."""
        f = self.fields
        segment_id = f.get("segment_id")
        campaign_id = f.get("campaign_id")
        return {
            "distribution_id": self.id,
            "state": self.state,
            "source": f.get("source"),
            "campaign_ref": f.get("campaign_ref"),
            "send_key": f.get("send_key"),
            "key_rule": f.get("key_rule"),
            "segment": f.get("segment"),
            "redeemable": f.get("redeemable"),
            "segment_id": int(segment_id) if segment_id else None,
            "redeemable_uuid": f.get("redeemable_uuid") or None,
            "campaign_name": f.get("campaign_name") or None,
            "start_time_requested": f.get("start_time_requested") or None,
            "start_time": f.get("start_time") or None,
            "recipients": self.int_field("recipients"),
            "conflicts": self.int_field("conflicts"),
            "folded_sends": self.int_field("folded_sends"),
            "attempts": self.int_field("attempts"),
            "last_error": f.get("last_error") or None,
            "campaign_id": int(campaign_id) if campaign_id else None,
            "next_attempt_at": iso(self.float_field("next_attempt_at")),
            "created_at": iso(self.float_field("created_at")),
            "updated_at": iso(self.float_field("updated_at")),
            "committed_at": iso(self.float_field("committed_at")),
            "trace": {k[len(TRACE_PREFIX):]: v for k, v in f.items() if k.startswith(TRACE_PREFIX)},
            "audience": self.audience() if self.gifts_recipients else None,
        }

    def audience(self) -> dict[str, Any]:
        """An audience send's counts (never an identifier): who was added, who could not be."""
        custom_segment_id = self.fields.get("cs_id")
        return {
            "custom_segment_name": self.fields.get("cs_name") or None,
            "custom_segment_id": int(custom_segment_id) if custom_segment_id else None,
            "added": self.int_field("audience_added"),
            "unknown_to_punchh": self.int_field("audience_invalid"),
            "without_identifier": self.int_field("audience_missing"),
            "late": self.int_field("audience_late"),
            "not_added": self.int_field("audience_not_added"),
            "ended": self.fields.get("ended") == "1",
            "late_after": iso(self.float_field("late_at")),
        }


def iso(ts: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def as_text(value: Any) -> str:
    """Redis replies as text, whatever decode_responses says."""
    return value.decode() if isinstance(value, bytes) else str(value)


def record_fields(req: DistributionRequest) -> list[str]:
    """A new record's fields as a flat field/value list (all but state and counters)."""
    record: dict[str, str] = {
        "source": req.source,
        "campaign_ref": req.campaign_ref,
        "send_key": req.send_key,
        "key_rule": req.key_rule,
        "segment": req.segment,
        "redeemable": req.redeemable,
        "attempts": "0",
        "conflicts": "0",
    }
    if req.gifts_recipients:
        record["audience"] = req.audience
    if req.start_time is not None:
        record["start_time_requested"] = req.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    if req.campaign_name:
        record["campaign_name"] = req.campaign_name
    for name, value in req.trace.items():
        # One short field each rather than one JSON blob: a hash whose values all stay under
        # 64 bytes is kept in Redis's compact listpack encoding, a fraction of a hashtable's
        # size (bench/README.md, bytes per distribution).
        if not (name == "dispatch_id" and value == req.send_key):
            record[TRACE_PREFIX + name] = value
    return [item for pair in record.items() for item in pair]


def last_action(dist: Distribution) -> dict[str, Any] | None:
    """The last operator action on the record (undo and alerts read it), if any."""
    raw = dist.fields.get(ADMIN_FIELD)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def undoable(dist: Distribution, last: Mapping[str, Any]) -> bool:
    """Same state and no state change since the action (workers change updated_at)."""
    return dist.state == last.get("to") and dist.fields.get("updated_at") == last.get("at")
