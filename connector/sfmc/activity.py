"""What the connector remembers about each Journey Builder activity: one small Redis hash.

`{prefix}sfmc:act:<activityObjectID>` holds the journey's ids and version, the offer the
marketer picked (segment and redeemable names, run-id binding, start time, campaign name), the
last lifecycle event and when each happened. Nothing about contacts is ever written here.

Journey Builder's lifecycle bodies do not reliably carry the inArguments, so the UI stores the
offer on Done. An activity in a journey that was never saved has no id yet; its offer is kept
as a *draft* under the journey (interaction key or id) and adopted by the first lifecycle call
that names the activity's id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, cast

import redis

from adapters.sfmc_config import ActivityConfig, Lifecycle

#: How long an activity's record lives after its last write (journeys can run for months).
ACTIVITY_RECORD_SECONDS = 180 * 86400
#: How long an offer picked in a never-saved journey waits for the journey's first save.
DRAFT_SECONDS = 30 * 86400
#: The offer fields a record may hold.
CONFIG_FIELDS = ("segment", "redeemable", "run_id", "start_time", "campaign_name")


def _now_iso() -> str:
    """Now, as ISO 8601 UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _text(value: Any) -> str:
    """Redis replies as text, whatever decode_responses says."""
    return value.decode() if isinstance(value, bytes) else str(value)


def config_fields(config: ActivityConfig, source: str) -> dict[str, str]:
    """An ActivityConfig as record fields."""
    out = {
        "segment": config.segment,
        "redeemable": config.redeemable,
        "run_id": config.run_id or "",
        "start_time": config.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        if config.start_time
        else "",
        "campaign_name": config.campaign_name or "",
        "audience": config.audience,
        "guest_binding": config.guest_binding or "",
        "config_source": source,
        "configured_at": _now_iso(),
    }
    if config.activity_key:
        out["activity_key"] = config.activity_key
    return out


class ActivityStore:
    """Activity records and drafts in Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "pc:") -> None:
        self.redis = client
        self.prefix = prefix

    def key(self, activity_id: str) -> str:
        """The hash of one activity."""
        return f"{self.prefix}sfmc:act:{activity_id}"

    def draft_key(self, interaction: str) -> str:
        """The drafts of one never-saved journey: activity key → offer JSON."""
        return f"{self.prefix}sfmc:draft:{interaction}"

    def get(self, activity_id: str) -> dict[str, str]:
        """One activity's record ({} when unknown)."""
        raw = cast(dict[Any, Any], self.redis.hgetall(self.key(activity_id)))
        return {_text(k): _text(v) for k, v in raw.items()}

    def update(self, activity_id: str, fields: Mapping[str, str]) -> None:
        """Write fields and refresh the record's lifetime, in one round trip."""
        pipe = self.redis.pipeline(transaction=True)
        if fields:
            pipe.hset(self.key(activity_id), mapping={k: v for k, v in fields.items()})
        pipe.expire(self.key(activity_id), ACTIVITY_RECORD_SECONDS)
        pipe.execute()

    def store_config(self, activity_id: str, config: ActivityConfig) -> None:
        """The UI's Done for an activity that has an id."""
        self.update(activity_id, config_fields(config, "ui"))

    def store_draft(self, interaction: str, activity_key: str, config: ActivityConfig) -> None:
        """The UI's Done for an activity of a journey that was never saved."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            self.draft_key(interaction),
            activity_key,
            json.dumps(config_fields(config, "ui-draft")),
        )
        pipe.expire(self.draft_key(interaction), DRAFT_SECONDS)
        pipe.execute()

    def record_event(self, event: str, life: Lifecycle) -> dict[str, str]:
        """Note a lifecycle call on the activity's record; returns the record afterwards."""
        if not life.activity_object_id:
            return {}
        fields = {**life.record_fields(), "last_event": event, f"{event}_at": _now_iso()}
        if life.segment and life.redeemable:
            fields.update(
                {
                    "segment": life.segment,
                    "redeemable": life.redeemable,
                    "config_source": "lifecycle",
                    "configured_at": _now_iso(),
                }
            )
        if event == "publish":
            fields["stopped"] = "0"
        if event == "stop":
            fields["stopped"] = "1"
        self.update(life.activity_object_id, fields)
        record = self.get(life.activity_object_id)
        if not record.get("segment"):
            record = self._adopt_draft(life) or record
        return record

    def _adopt_draft(self, life: Lifecycle) -> dict[str, str] | None:
        """Move the single draft of this journey onto the activity; None when not exactly one."""
        assert life.activity_object_id is not None
        for interaction in (life.interaction_key, life.interaction_id):
            if not interaction:
                continue
            raw = cast(dict[Any, Any], self.redis.hgetall(self.draft_key(interaction)))
            if len(raw) != 1:
                continue
            ((activity_key, blob),) = raw.items()
            fields = {k: str(v) for k, v in json.loads(_text(blob)).items()}
            fields["activity_key"] = _text(activity_key)
            self.update(life.activity_object_id, fields)
            self.redis.hdel(self.draft_key(interaction), activity_key)
            return self.get(life.activity_object_id)
        return None

    def drafts_count(self, life: Lifecycle) -> int:
        """How many offers wait as drafts for this journey."""
        counts = [
            int(self.redis.hlen(self.draft_key(i)))
            for i in (life.interaction_key, life.interaction_id)
            if i
        ]
        return max(counts, default=0)
