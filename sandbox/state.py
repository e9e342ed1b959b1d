"""The sandbox's mutable state behind one lock: clock, campaigns and their gifts, custom
segments, faults, the request log and the run's settings. ``reset`` goes back to the seed."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sandbox.campaigns import Campaign, ValidCampaign, validate_campaign
from sandbox.clock import Clock, iso
from sandbox.custom_segments import ADDRESS_MODES, CustomSegments
from sandbox.faults import Fault, FaultQueue, Gate
from sandbox.request_log import RequestLog
from sandbox.seed import JSON, Guest, Seed, Segment, parse_seed


@dataclass
class _Data:
    """Everything ``reset`` throws away."""

    seed: Seed
    custom_segments: CustomSegments
    max_per_page: int
    address_mode: str
    clock: Clock = field(default_factory=Clock)
    next_campaign_id: int = 0
    next_reward_id: int = 1
    campaigns: list[Campaign] = field(default_factory=list)
    rewards: dict[int, list[JSON]] = field(default_factory=dict)
    faults: FaultQueue = field(default_factory=FaultQueue)
    log: RequestLog = field(default_factory=RequestLog)


class SandboxState:
    """All mutable sandbox state behind one lock; the server is threaded."""

    def __init__(
        self,
        raw_seed: JSON,
        api_keys: Mapping[str, str] | None = None,
        max_per_page: int = 50,
        address_mode: str = "segment_id",
    ) -> None:
        """Load the seed; ``api_keys``, when given, replaces the seed's keys.

        ``max_per_page`` (the silent page-size cap) and ``address_mode`` (how a commit names a
        custom segment) are what a reset goes back to.
        """
        if address_mode not in ADDRESS_MODES:
            raise ValueError(f"address mode must be one of {', '.join(ADDRESS_MODES)}")
        self._raw_seed = raw_seed
        self._api_keys = api_keys
        self._max_per_page = max_per_page
        self._address_mode = address_mode
        self.lock = threading.Lock()
        self.gate = Gate()
        self._data = self._fresh_data(None)

    def _fresh_data(self, before: _Data | None) -> _Data:
        """Parse the seed anew, so relative expiries restart from the real now.

        Ids keep counting from ``before``, as Punchh's do: a ledger that outlives the reset
        must never see an earlier send's campaign or custom segment id again on a new one.
        """
        seed = parse_seed(self._raw_seed, datetime.now(UTC))
        if self._api_keys is not None:
            seed = replace(seed, api_keys=dict(self._api_keys))
        first_segment_id = max((s.segment_id for s in seed.segments), default=1300000) + 1
        custom = CustomSegments(seed.first_custom_segment_id, first_segment_id)
        data = _Data(
            seed=seed,
            custom_segments=custom,
            max_per_page=self._max_per_page,
            address_mode=self._address_mode,
            next_campaign_id=seed.first_campaign_id,
        )
        if before is not None:
            old = before.custom_segments
            data.next_campaign_id = max(before.next_campaign_id, data.next_campaign_id)
            custom.next_custom_segment_id = max(
                old.next_custom_segment_id, custom.next_custom_segment_id
            )
            custom.next_segment_id = max(old.next_segment_id, custom.next_segment_id)
        return data

    @property
    def seed(self) -> Seed:
        """The current seed (immutable, so safe to read without the lock)."""
        return self._data.seed

    # --- clock and gifting ---------------------------------------------------------------

    def now(self) -> datetime:
        """The sandbox's now: real UTC now plus the advanced offset."""
        return self._data.clock.now()

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward, gift what became due, and return the new now."""
        with self.lock:
            self._data.clock.advance(seconds)
            self._run_due_locked()
            return self.now()

    def offset_seconds(self) -> float:
        """How far the clock is ahead of real time."""
        return self._data.clock.offset_seconds()

    def set_offset(self, seconds: float) -> datetime:
        """Put the clock at real time plus ``seconds`` (back, too); gifts made stay made."""
        with self.lock:
            self._data.clock.set_offset(seconds)
            self._run_due_locked()
            return self.now()

    def run_due(self) -> None:
        """Gift every campaign whose start time has arrived."""
        with self.lock:
            self._run_due_locked()

    def _audience(self, campaign: Campaign) -> list[Guest]:
        """Who a campaign gifts: its segment's guests, or its custom segment's members now."""
        if campaign.custom_segment_id is None:
            return [g for g in self._data.seed.guests if campaign.segment_id in g.segments]
        found = self._data.custom_segments.find(campaign.custom_segment_id)
        # A custom segment deleted before the start time leaves nobody to gift.
        return [] if found is None else [m.guest for m in found.members.values()]

    def _run_due_locked(self) -> None:
        """Gift due campaigns once each: the status flip is what makes it exactly once."""
        now = self.now()
        for campaign in self._data.campaigns:
            if campaign.status != "scheduled" or campaign.start_time > now:
                continue
            for guest in self._audience(campaign):
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

    def commit(self, body: JSON) -> tuple[Campaign, ValidCampaign]:
        """Validate a commit body and record the campaign under the next campaign id."""
        with self.lock:
            data = self._data
            now = self.now()

            def addressed(segment_id: int) -> bool:
                return data.custom_segments.addressed(segment_id, data.address_mode) is not None

            valid = validate_campaign(body, data.seed, now, addressed)
            target = (
                None
                if data.seed.segment(valid.segment_id) is not None
                else data.custom_segments.addressed(valid.segment_id, data.address_mode)
            )
            campaign = Campaign(
                campaign_id=data.next_campaign_id,
                body=body,
                created_at=now,
                start_time=valid.start_time,
                segment_id=valid.segment_id,
                redeemable=valid.redeemable,
                custom_segment_id=None if target is None else target.custom_segment_id,
            )
            data.next_campaign_id += 1
            data.campaigns.append(campaign)
            return campaign, valid

    def campaigns(self) -> list[JSON]:
        """Every campaign created since the last reset."""
        with self.lock:
            return [c.public() for c in self._data.campaigns]

    def rewards(self, guest_id: int) -> list[JSON]:
        """The rewards gifted to one guest."""
        with self.lock:
            return list(self._data.rewards.get(guest_id, []))

    # --- segments and custom segments --------------------------------------------------

    def listed_segments(self) -> list[Segment]:
        """What Get Segment List lists: the seed's segments, then custom ones if listed."""
        with self.lock:
            listed = list(self._data.seed.segments)
            if self._data.address_mode == "segment_id":
                listed += [c.as_segment() for c in self._data.custom_segments.all()]
            return listed

    @contextmanager
    def custom_segment_book(self) -> Iterator[tuple[CustomSegments, Seed, datetime]]:
        """The custom segments, the seed and now, for one action under the lock."""
        with self.lock:
            yield self._data.custom_segments, self._data.seed, self.now()

    @property
    def address_mode(self) -> str:
        """How a commit names a custom segment now (see ``ADDRESS_MODES``)."""
        return self._data.address_mode

    def set_address_mode(self, mode: str) -> str:
        """Switch how a commit names a custom segment, until the next reset."""
        if mode not in ADDRESS_MODES:
            raise ValueError(f"address mode must be one of {', '.join(ADDRESS_MODES)}")
        with self.lock:
            self._data.address_mode = mode
            return mode

    # --- paging --------------------------------------------------------------------------

    @property
    def max_per_page(self) -> int:
        """The largest page the list endpoints answer, whatever ``per_page`` asked for."""
        return self._data.max_per_page

    def cap_per_page(self, size: int) -> int:
        """Cut every later page to ``size`` items, silently, until the next reset."""
        with self.lock:
            self._data.max_per_page = size
            return size

    # --- faults and the request log ------------------------------------------------------

    def add_faults(self, endpoint: str, fault: Fault, count: int) -> int:
        """Queue ``count`` copies of a fault; return how many are queued for the endpoint."""
        with self.lock:
            return self._data.faults.add(endpoint, fault, count)

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume the oldest fault queued for this endpoint, if any."""
        with self.lock:
            return self._data.faults.take(endpoint)

    def faults(self) -> JSON:
        """The faults still queued, per endpoint."""
        with self.lock:
            return self._data.faults.public()

    def clear_faults(self) -> None:
        """Forget every queued fault."""
        with self.lock:
            self._data.faults.clear()

    def record_request(self, entry: JSON) -> None:
        """Log one API request (never its Authorization header, nor a guest identifier)."""
        with self.lock:
            self._data.log.record({**entry, "time": iso(self.now())})

    def requests(self) -> JSON:
        """Counts per endpoint and status, totals per endpoint, and the recent requests."""
        with self.lock:
            return self._data.log.public()

    # --- reset ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the seed: clears campaigns, rewards, custom segments, faults, the clock
        offset, the request log and the run's settings (ids keep counting)."""
        with self.lock:
            self._data = self._fresh_data(self._data)
        self.gate.reset()
