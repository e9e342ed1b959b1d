"""The sandbox's seed: the business, its keys, segments, redeemables and (fictional) guests.

Seed format (``seed.json``)::

    {"business": {"timezone": "America/New_York", "external_distribution_enabled": true},
     "api_keys": {"<key>": "admin" | "no_permission"},
     "first_campaign_id": 99511494,
     "first_custom_segment_id": 5100001,
     "segments": [{"segment_id", "name", "description", "segment_type", "user_type",
                   "membership_level"}],
     "redeemables": [{"redeemable_id", "redeemable_uuid", "name", "description",
                      "redeemable_image_url", "state": "active" | "deactivated" | "scheduled"
                      | "expired", "expires_in_days" | "expires_at" (optional),
                      "redeemable_properties" (optional)}],
     "guests": [{"guest_id", "email", "segments": [segment_id, ...]}]}

``state``, ``expires_*`` and guests are sandbox-only: the list endpoints never show them.
A guest's ``guest_id`` is their Punchh ``user_id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

JSON = dict[str, Any]

SEED_PATH = Path(__file__).with_name("seed.json")
"""The packaged restaurant seed used when no other seed is given."""

REDEEMABLE_STATES = frozenset({"active", "deactivated", "scheduled", "expired"})
"""States a seeded redeemable can be in; only ``active`` can be committed."""

FIRST_CUSTOM_SEGMENT_ID = 5100001
"""Where custom segment ids start unless the seed says otherwise: far from segment ids, so a
client that sends one where the other belongs is refused instead of gifting a stranger."""


@dataclass(frozen=True)
class Segment:
    """A Punchh segment, as the Get Segment List endpoint shows it."""

    segment_id: int
    name: str
    description: str
    segment_type: str
    user_type: str
    membership_level: str | None

    def public(self) -> JSON:
        """The documented list item shape, in the documented field order."""
        return {
            "segment_id": self.segment_id,
            "name": self.name,
            "description": self.description,
            "segment_type": self.segment_type,
            "user_type": self.user_type,
            "membership_level": self.membership_level,
        }


@dataclass(frozen=True)
class Redeemable:
    """A Punchh redeemable plus the sandbox-only lifecycle fields."""

    redeemable_id: int
    redeemable_uuid: str
    name: str
    description: str
    image_url: str
    state: str
    expires_at: datetime | None
    properties: str

    def public(self) -> JSON:
        """The documented list item shape; state and expiry are not part of it."""
        return {
            "redeemable_id": self.redeemable_id,
            "redeemable_uuid": self.redeemable_uuid,
            "name": self.name,
            "description": self.description,
            "redeemable_image_url": self.image_url,
        }

    def state_at(self, now: datetime) -> str:
        """The effective state: an active redeemable past its expiry counts as expired."""
        if self.state == "active" and self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return self.state


@dataclass(frozen=True)
class Guest:
    """A loyalty guest and the segments they belong to."""

    guest_id: int
    email: str
    segments: frozenset[int]

    def public(self) -> JSON:
        """The guest as the control endpoints show it."""
        return {"guest_id": self.guest_id, "email": self.email, "segments": sorted(self.segments)}


@dataclass(frozen=True)
class Seed:
    """The seed, parsed; expiries are absolute, computed at load time."""

    timezone: ZoneInfo
    external_distribution_enabled: bool
    api_keys: Mapping[str, str]
    segments: tuple[Segment, ...]
    redeemables: tuple[Redeemable, ...]
    guests: tuple[Guest, ...]
    first_campaign_id: int
    first_custom_segment_id: int = FIRST_CUSTOM_SEGMENT_ID

    def segment(self, segment_id: int) -> Segment | None:
        """The segment with this id, if any."""
        return next((s for s in self.segments if s.segment_id == segment_id), None)

    def redeemable(self, redeemable_uuid: str) -> Redeemable | None:
        """The redeemable with this UUID, if any."""
        return next((r for r in self.redeemables if r.redeemable_uuid == redeemable_uuid), None)

    def guest(self, identifier: str) -> Guest | None:
        """The guest a Punchh user identifier names: a ``user_id`` in digits, or an email."""
        text = identifier.strip()
        if text.isdigit():
            return self._guests_by_id.get(int(text))
        if "@" in text:
            # Email addresses are matched without regard to case, as sign-in forms do.
            return self._guests_by_email.get(text.casefold())
        return None

    @cached_property
    def _guests_by_id(self) -> dict[int, Guest]:
        """Guests by user id: add_users looks up to 1,000 a call, on seeds of any size."""
        return {g.guest_id: g for g in self.guests}

    @cached_property
    def _guests_by_email(self) -> dict[str, Guest]:
        """Guests by case-folded email."""
        return {g.email.casefold(): g for g in self.guests}


def read_seed(source: JSON | str | Path | None) -> JSON:
    """Return the raw seed: a dict as given, a JSON file's content, or the packaged seed."""
    if isinstance(source, dict):
        return source
    path = SEED_PATH if source is None else Path(source)
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"seed {path} must be a JSON object")
    return raw


def _redeemable(item: JSON, now: datetime) -> Redeemable:
    """One seeded redeemable; ``expires_in_days`` is taken relative to ``now``."""
    state = item.get("state", "active")
    if state not in REDEEMABLE_STATES:
        raise ValueError(f"redeemable {item.get('name')!r} has unknown state {state!r}")
    expires_at: datetime | None = None
    if "expires_in_days" in item:
        # The seed file is static, so a near expiry has to be relative to load time.
        expires_at = now + timedelta(days=float(item["expires_in_days"]))
    elif item.get("expires_at"):
        expires_at = datetime.fromisoformat(item["expires_at"])
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
    return Redeemable(
        redeemable_id=int(item["redeemable_id"]),
        redeemable_uuid=str(item["redeemable_uuid"]),
        name=str(item["name"]),
        description=str(item.get("description", "")),
        image_url=str(item.get("redeemable_image_url", "")),
        state=state,
        expires_at=expires_at,
        # "attribute" is the value in the documented example; its meaning is unknown.
        properties=str(item.get("redeemable_properties", "attribute")),
    )


def parse_seed(raw: JSON, now: datetime) -> Seed:
    """Build a Seed from raw JSON; ``expires_in_days`` is taken relative to ``now``."""
    business = raw.get("business", {})
    segments = tuple(
        Segment(
            segment_id=int(item["segment_id"]),
            name=str(item["name"]),
            description=str(item.get("description", "")),
            segment_type=str(item.get("segment_type", "GuestProfileSegmentDefinition")),
            user_type=str(item.get("user_type", "loyalty_user")),
            membership_level=item.get("membership_level"),
        )
        for item in raw.get("segments", [])
    )
    guests = tuple(
        Guest(
            guest_id=int(item["guest_id"]),
            email=str(item["email"]),
            segments=frozenset(int(s) for s in item.get("segments", [])),
        )
        for item in raw.get("guests", [])
    )
    return Seed(
        timezone=ZoneInfo(str(business.get("timezone", "Etc/UTC"))),
        external_distribution_enabled=bool(business.get("external_distribution_enabled", True)),
        api_keys=dict(raw.get("api_keys", {})),
        segments=segments,
        redeemables=tuple(_redeemable(item, now) for item in raw.get("redeemables", [])),
        guests=guests,
        first_campaign_id=int(raw.get("first_campaign_id", 99511494)),
        first_custom_segment_id=int(raw.get("first_custom_segment_id", FIRST_CUSTOM_SEGMENT_ID)),
    )
