"""In-memory state of the Punchh sandbox: seed data, clock, campaigns, rewards, faults and log.

Seed format (``seed.json``)::

    {"business": {"timezone": "America/New_York", "external_distribution_enabled": true},
     "api_keys": {"<key>": "admin" | "no_permission"},
     "first_campaign_id": 99511494,
     "segments": [{"segment_id", "name", "description", "segment_type", "user_type",
                   "membership_level"}],
     "redeemables": [{"redeemable_id", "redeemable_uuid", "name", "description",
                      "redeemable_image_url", "state": "active" | "deactivated" | "scheduled"
                      | "expired", "expires_in_days" | "expires_at" (optional),
                      "redeemable_properties" (optional)}],
     "guests": [{"guest_id", "email", "segments": [segment_id, ...]}]}

``state``, ``expires_*`` and guests are sandbox-only: the list endpoints never show them.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

JSON = dict[str, Any]

SEED_PATH = Path(__file__).with_name("seed.json")
"""The packaged restaurant seed used when no other seed is given."""

REQUEST_LOG_SIZE = 1000
"""How many recent API requests ``/_sandbox/requests`` keeps."""

ENDPOINTS = ("segments", "redeemables", "campaigns")
"""Names of the three imitated Punchh endpoints, as used by faults and the request log."""

PLAIN_FAULTS = frozenset({"500", "502", "503", "504", "429", "hang", "drop", "hold"})
"""Fault modes that work on any endpoint."""

COMMIT_FAULTS = frozenset({"commit_drop", "commit_hang", "commit_hold"})
"""Fault modes that act first and then misbehave: only meaningful for campaigns."""

REDEEMABLE_STATES = frozenset({"active", "deactivated", "scheduled", "expired"})
"""States a seeded redeemable can be in; only ``active`` can be committed."""


def iso(moment: datetime) -> str:
    """Format an aware datetime as UTC ISO 8601 with a ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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

    def segment(self, segment_id: int) -> Segment | None:
        """The segment with this id, if any."""
        return next((s for s in self.segments if s.segment_id == segment_id), None)

    def redeemable(self, redeemable_uuid: str) -> Redeemable | None:
        """The redeemable with this UUID, if any."""
        return next((r for r in self.redeemables if r.redeemable_uuid == redeemable_uuid), None)


def read_seed(source: JSON | str | Path | None) -> JSON:
    """Return the raw seed: a dict as given, a JSON file's content, or the packaged seed."""
    if isinstance(source, dict):
        return source
    path = SEED_PATH if source is None else Path(source)
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"seed {path} must be a JSON object")
    return raw


def parse_seed(raw: JSON, now: datetime) -> Seed:
    """Build a Seed from raw JSON; ``expires_in_days`` is taken relative to ``now``."""
    business = raw.get("business", {})
    redeemables = []
    for item in raw.get("redeemables", []):
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
        redeemables.append(
            Redeemable(
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
        )
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
        redeemables=tuple(redeemables),
        guests=guests,
        first_campaign_id=int(raw.get("first_campaign_id", 99511494)),
    )


@dataclass
class Campaign:
    """A campaign created through Commit Redeemable Distribution."""

    campaign_id: int
    body: JSON
    created_at: datetime
    start_time: datetime
    segment_id: int
    redeemable: Redeemable
    status: Literal["scheduled", "gifted"] = "scheduled"
    gifted_count: int = 0

    def public(self) -> JSON:
        """The campaign as ``/_sandbox/campaigns`` shows it."""
        return {
            "campaign_id": self.campaign_id,
            "body": self.body,
            "created_at": iso(self.created_at),
            "start_time": iso(self.start_time),
            "segment_id": self.segment_id,
            "redeemable_uuid": self.redeemable.redeemable_uuid,
            "status": self.status,
            "gifted_count": self.gifted_count,
        }


@dataclass(frozen=True)
class Fault:
    """One queued misbehaviour, consumed by the next request to its endpoint."""

    mode: str
    retry_after: float | None = None
    seconds: float = 30.0

    def public(self) -> JSON:
        """The fault as ``GET /_sandbox/faults`` shows it."""
        return {"mode": self.mode, "retry_after": self.retry_after, "seconds": self.seconds}


@dataclass
class _Data:
    """Everything ``reset`` throws away."""

    seed: Seed
    offset: timedelta = timedelta(0)
    next_campaign_id: int = 0
    next_reward_id: int = 1
    campaigns: list[Campaign] = field(default_factory=list)
    rewards: dict[int, list[JSON]] = field(default_factory=dict)
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    requests: deque[JSON] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    max_per_page: int = 50


class SandboxState:
    """All mutable sandbox state behind one lock; the server is threaded."""

    def __init__(
        self,
        raw_seed: JSON,
        api_keys: Mapping[str, str] | None = None,
        max_per_page: int = 50,
    ) -> None:
        """Load the seed; ``api_keys``, when given, replaces the seed's keys.

        ``max_per_page`` is the silent page-size cap a reset goes back to.
        """
        self._raw_seed = raw_seed
        self._api_keys = api_keys
        self._max_per_page = max_per_page
        self.lock = threading.Lock()
        # Held and hung requests wait on this condition; a bumped generation wakes them.
        self._wake = threading.Condition(self.lock)
        self._release_generation = 0
        self._reset_generation = 0
        self._held = 0
        self._data = self._fresh_data()

    def _fresh_data(self) -> _Data:
        """Parse the seed anew, so relative expiries restart from the real now."""
        seed = parse_seed(self._raw_seed, datetime.now(UTC))
        if self._api_keys is not None:
            seed = replace(seed, api_keys=dict(self._api_keys))
        return _Data(
            seed=seed, next_campaign_id=seed.first_campaign_id, max_per_page=self._max_per_page
        )

    @property
    def seed(self) -> Seed:
        """The current seed (immutable, so safe to read without the lock)."""
        return self._data.seed

    # --- clock -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The sandbox's now: real UTC now plus the advanced offset."""
        return datetime.now(UTC) + self._data.offset

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward, gift what became due, and return the new now."""
        with self.lock:
            self._data.offset += timedelta(seconds=seconds)
            self._run_due_locked()
            return self.now()

    def offset_seconds(self) -> float:
        """How far the clock is ahead of real time."""
        return self._data.offset.total_seconds()

    def set_offset(self, seconds: float) -> datetime:
        """Put the clock at real time plus ``seconds`` (back, too); gifts made stay made."""
        with self.lock:
            self._data.offset = timedelta(seconds=seconds)
            self._run_due_locked()
            return self.now()

    def run_due(self) -> None:
        """Gift every campaign whose start time has arrived."""
        with self.lock:
            self._run_due_locked()

    def _run_due_locked(self) -> None:
        """Gift due campaigns once each: the status flip is what makes it exactly once."""
        now = self.now()
        for campaign in self._data.campaigns:
            if campaign.status != "scheduled" or campaign.start_time > now:
                continue
            for guest in self._data.seed.guests:
                if campaign.segment_id not in guest.segments:
                    continue
                self._data.rewards.setdefault(guest.guest_id, []).append(
                    {
                        "reward_id": self._data.next_reward_id,
                        "guest_id": guest.guest_id,
                        "redeemable_id": campaign.redeemable.redeemable_id,
                        "redeemable_uuid": campaign.redeemable.redeemable_uuid,
                        "redeemable_name": campaign.redeemable.name,
                        "campaign_id": campaign.campaign_id,
                        "gifted_at": iso(now),
                    }
                )
                self._data.next_reward_id += 1
                campaign.gifted_count += 1
            campaign.status = "gifted"

    # --- campaigns and rewards -----------------------------------------------------------

    def add_campaign(
        self, body: JSON, start_time: datetime, segment_id: int, redeemable: Redeemable
    ) -> Campaign:
        """Record a new campaign under the next campaign id."""
        with self.lock:
            campaign = Campaign(
                campaign_id=self._data.next_campaign_id,
                body=body,
                created_at=self.now(),
                start_time=start_time,
                segment_id=segment_id,
                redeemable=redeemable,
            )
            self._data.next_campaign_id += 1
            self._data.campaigns.append(campaign)
            return campaign

    def campaigns(self) -> list[JSON]:
        """Every campaign created since the last reset."""
        with self.lock:
            return [c.public() for c in self._data.campaigns]

    def rewards(self, guest_id: int) -> list[JSON]:
        """The rewards gifted to one guest."""
        with self.lock:
            return list(self._data.rewards.get(guest_id, []))

    # --- paging ------------------------------------------------------------------------

    @property
    def max_per_page(self) -> int:
        """The largest page the list endpoints answer, whatever ``per_page`` asked for."""
        return self._data.max_per_page

    def cap_per_page(self, size: int) -> int:
        """Cut every later page to ``size`` items, silently, until the next reset."""
        with self.lock:
            self._data.max_per_page = size
            return size

    # --- faults ------------------------------------------------------------------------

    def add_faults(self, endpoint: str, fault: Fault, count: int) -> int:
        """Queue ``count`` copies of a fault; return how many are queued for the endpoint."""
        with self.lock:
            queue = self._data.faults.setdefault(endpoint, deque())
            queue.extend([fault] * count)
            return len(queue)

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume the oldest fault queued for this endpoint, if any."""
        with self.lock:
            queue = self._data.faults.get(endpoint)
            return queue.popleft() if queue else None

    def faults(self) -> JSON:
        """The faults still queued, per endpoint."""
        with self.lock:
            return {name: [f.public() for f in queue] for name, queue in self._data.faults.items()}

    def clear_faults(self) -> None:
        """Forget every queued fault."""
        with self.lock:
            self._data.faults.clear()

    # --- hold and hang -------------------------------------------------------------------

    def hold(self, seconds: float) -> None:
        """Block until ``release``, ``reset`` or ``seconds`` pass, counting as held."""
        with self._wake:
            self._held += 1
            release, reset = self._release_generation, self._reset_generation
            try:
                self._wake.wait_for(
                    lambda: (self._release_generation, self._reset_generation) != (release, reset),
                    timeout=seconds,
                )
            finally:
                self._held -= 1

    def hang(self, seconds: float) -> None:
        """Sleep ``seconds``; only a reset cuts it short, so tests never leave threads behind."""
        with self._wake:
            reset = self._reset_generation
            self._wake.wait_for(lambda: self._reset_generation != reset, timeout=seconds)

    def held(self) -> int:
        """How many requests are blocked in ``hold`` right now."""
        with self.lock:
            return self._held

    def release(self) -> int:
        """Wake every held request; return how many were held."""
        with self._wake:
            count = self._held
            self._release_generation += 1
            self._wake.notify_all()
            return count

    # --- request log ---------------------------------------------------------------------

    def record_request(self, entry: JSON) -> None:
        """Log one API request (never its Authorization header) and count it."""
        with self.lock:
            entry = {**entry, "time": iso(self.now())}
            self._data.requests.append(entry)
            per_status = self._data.counts.setdefault(entry["endpoint"], {})
            key = str(entry["status"])
            per_status[key] = per_status.get(key, 0) + 1

    def requests(self) -> JSON:
        """Counts per endpoint and status, totals per endpoint, and the recent requests."""
        with self.lock:
            counts = {name: dict(c) for name, c in self._data.counts.items()}
            return {
                "counts": counts,
                "totals": {name: sum(c.values()) for name, c in counts.items()},
                "requests": list(self._data.requests),
            }

    # --- reset ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the seed: clears campaigns, rewards, faults, clock offset and request log."""
        with self._wake:
            # Campaign ids keep counting, as Punchh's do: a ledger that outlives the reset must
            # never see an earlier send's campaign id again on a new one.
            next_campaign_id = self._data.next_campaign_id
            self._data = self._fresh_data()
            self._data.next_campaign_id = max(next_campaign_id, self._data.next_campaign_id)
            # Wake held and hung requests so a reset between tests leaves nothing blocked.
            self._reset_generation += 1
            self._wake.notify_all()
