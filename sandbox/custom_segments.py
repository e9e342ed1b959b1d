"""Punchh's custom segments: a business's hand-fed guest lists, and the rules of their endpoints.

Everything here follows the "Custom segments" section of shared/reference/punchh-api.md; where
it is silent, the choice made is marked [guess] in a comment. Two guesses matter most:

- How Commit Redeemable Distribution addresses a custom segment. ``ADDRESS_MODES`` names the
  two readings; the sandbox acts out one at a time (``segment_id`` unless configured).
- Adding a member again is a no-op: the guest stays one member and is gifted once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.clock import iso
from sandbox.errors import ApiError, not_found, require
from sandbox.listing import positive_int
from sandbox.seed import JSON, Guest, Seed, Segment

ADDRESS_MODES = ("segment_id", "custom_segment_id")
"""How a commit names a custom segment: ``segment_id``, Get Segment List lists it by name
under a segment id of its own; ``custom_segment_id``, it is not listed and a commit's
``segment_id`` field takes its ``custom_segment_id``."""

BULK_LIMITS = {"async": 1000, "sync": 100}
"""Most identifiers one add_users call takes, per ``bulk_method``."""

SEGMENT_TYPE = "CustomSegmentDefinition"
"""The segment_type Get Segment List shows for a custom segment (the seed's own custom
segments carry it too)."""

NAME_TAKEN: JSON = {"name": ["Name has already been taken"]}
SEGMENT_NOT_FOUND = "Custom Segment not found."
MEMBER_NOT_FOUND = "Member not found."


@dataclass(frozen=True)
class Member:
    """One guest's membership of one custom segment."""

    member_id: int
    guest: Guest
    created_at: datetime

    def public(self, custom_segment_id: int) -> JSON:
        """The documented member shape."""
        return {
            "custom_segment_member_id": self.member_id,
            "custom_segment_id": custom_segment_id,
            "email": self.guest.email,
            "user_id": self.guest.guest_id,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.created_at),
        }


@dataclass
class CustomSegment:
    """A custom segment and its members, by guest id."""

    custom_segment_id: int
    segment_id: int
    name: str
    description: str
    created_at: datetime
    members: dict[int, Member] = field(default_factory=dict)

    def public(self) -> JSON:
        """The documented list and create shape."""
        return {
            "custom_segment_id": self.custom_segment_id,
            "name": self.name,
            "description": self.description,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.created_at),
        }

    def as_segment(self) -> Segment:
        """How Get Segment List shows it when custom segments are listed."""
        return Segment(
            self.segment_id, self.name, self.description, SEGMENT_TYPE, "loyalty_user", None
        )

    def control(self) -> JSON:
        """The control endpoints' view: the listed segment id and the members' guest ids."""
        return {
            **self.public(),
            "segment_id": self.segment_id,
            "member_guest_ids": sorted(self.members),
        }


class CustomSegments:
    """Every custom segment of the business; the sandbox state's lock guards it."""

    def __init__(self, next_custom_segment_id: int, next_segment_id: int) -> None:
        """Start empty; ids go on from the given ones, as a reset must not reuse any."""
        self.next_custom_segment_id = next_custom_segment_id
        self.next_segment_id = next_segment_id
        self.next_member_id = 1
        self._by_id: dict[int, CustomSegment] = {}

    def all(self) -> list[CustomSegment]:
        """Every custom segment not deleted, oldest first."""
        return list(self._by_id.values())

    def find(self, custom_segment_id: int) -> CustomSegment | None:
        """The custom segment with this id, unless deleted."""
        return self._by_id.get(custom_segment_id)

    def get(self, raw_id: object) -> CustomSegment:
        """The custom segment a ``custom_segment_id`` parameter names, or Punchh's 404."""
        custom_segment_id = positive_int(raw_id)
        found = None if custom_segment_id is None else self.find(custom_segment_id)
        if found is None:
            raise not_found(SEGMENT_NOT_FOUND)
        return found

    def addressed(self, segment_id: int, mode: str) -> CustomSegment | None:
        """The custom segment a commit's ``segment_id`` names under the address mode."""
        if mode == "custom_segment_id":
            return self._by_id.get(segment_id)
        return next((c for c in self._by_id.values() if c.segment_id == segment_id), None)

    def create(self, params: Mapping[str, Any], now: datetime) -> CustomSegment:
        """Create one, refusing a name already taken: create is not idempotent at Punchh."""
        require(params, ("name",))
        name = str(params["name"])
        if not name.strip():
            raise ApiError(422, {"name": ["Name can't be blank"]})  # [guess] Rails' wording
        # [guess] the name rule ignores case, as a MySQL column's default collation does.
        if any(c.name.casefold() == name.casefold() for c in self._by_id.values()):
            raise ApiError(422, NAME_TAKEN)
        segment = CustomSegment(
            custom_segment_id=self.next_custom_segment_id,
            segment_id=self.next_segment_id,
            name=name,
            description=str(params.get("description") or ""),
            created_at=now,
        )
        self.next_custom_segment_id += 1
        self.next_segment_id += 1
        self._by_id[segment.custom_segment_id] = segment
        return segment

    def delete(self, params: Mapping[str, Any]) -> JSON:
        """Delete one (Punchh only marks it; here it is gone at once) and say so."""
        require(params, ("custom_segment_id",))
        segment = self.get(params["custom_segment_id"])
        del self._by_id[segment.custom_segment_id]
        return {"accepted": f"Custom Segment {segment.name} has been marked for deletion"}

    def add_users(self, body: Mapping[str, Any], seed: Seed, now: datetime) -> list[Any]:
        """Add the guests the identifiers name; return the identifiers that name nobody."""
        require(body, ("custom_segment_id", "user_identifiers"))
        identifiers = body["user_identifiers"]
        if not isinstance(identifiers, list):
            raise ApiError(400, {"error": "user_identifiers must be an array"})  # [guess]
        method = body.get("bulk_method") or "async"
        if method not in BULK_LIMITS:
            raise ApiError(  # [guess] undocumented: the key and words are the sandbox's
                422, {"errors": {"invalid_bulk_method": "bulk_method must be sync or async"}}
            )
        if len(identifiers) > BULK_LIMITS[method]:
            limit = BULK_LIMITS[method]
            message = f"Max {limit} users allowed per api call in {method} mode"
            raise ApiError(422, {"errors": {"limit_exceed": message}})
        segment = self.get(body["custom_segment_id"])
        unknown: list[Any] = []
        for identifier in identifiers:
            guest = _guest(seed, identifier)
            if guest is None:
                unknown.append(identifier)
            elif guest.guest_id not in segment.members:
                segment.members[guest.guest_id] = Member(self.next_member_id, guest, now)
                self.next_member_id += 1
        return unknown

    def member(self, params: Mapping[str, Any], seed: Seed) -> JSON:
        """The membership a check asks about (``user_id`` wins over ``email``), or a 404."""
        require(params, ("custom_segment_id",))
        identifier = params.get("user_id") or params.get("email")
        if not identifier:
            require(params, ("user_id",))
        segment = self.get(params["custom_segment_id"])
        guest = _guest(seed, identifier)
        found = None if guest is None else segment.members.get(guest.guest_id)
        if found is None:
            # [guess] an identifier naming no guest is no member either.
            raise not_found(MEMBER_NOT_FOUND)
        return found.public(segment.custom_segment_id)


def _guest(seed: Seed, identifier: object) -> Guest | None:
    """The guest an identifier names: a user id (string or number) or an email."""
    if isinstance(identifier, bool) or not isinstance(identifier, str | int):
        return None
    return seed.guest(str(identifier))
