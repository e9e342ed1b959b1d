"""The seed: parsing, relative expiries, and finding a guest by a Punchh user identifier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandbox.seed import FIRST_CUSTOM_SEGMENT_ID, parse_seed, read_seed
from tests.sandbox.support import SEED

NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
REDEEMABLE = {"redeemable_id": 1, "redeemable_uuid": "u-1", "name": "Free Fries"}


def test_the_packaged_seed_keeps_guests_fictional() -> None:
    seed = parse_seed(read_seed(None), NOW)
    assert len(seed.guests) == 40
    assert all(g.email.endswith("@example.com") for g in seed.guests)
    assert seed.first_custom_segment_id == FIRST_CUSTOM_SEGMENT_ID
    assert FIRST_CUSTOM_SEGMENT_ID not in {s.segment_id for s in seed.segments}


def test_a_guest_is_found_by_user_id_or_email() -> None:
    seed = parse_seed(SEED, NOW)
    first = seed.guests[0]
    assert seed.guest(str(first.guest_id)) == first
    assert seed.guest(f" {first.email.upper()} ") == first
    for nobody in ("990000001", "nobody@example.com", "guest", ""):
        assert seed.guest(nobody) is None


def test_expiries_are_relative_to_load_time() -> None:
    raw = {"redeemables": [{**REDEEMABLE, "expires_in_days": 2}]}
    (redeemable,) = parse_seed(raw, NOW).redeemables
    assert redeemable.expires_at == NOW + timedelta(days=2)
    assert redeemable.state_at(NOW + timedelta(days=3)) == "expired"


def test_bad_seeds_are_refused(tmp_path: Path) -> None:
    raw = {"redeemables": [{**REDEEMABLE, "state": "paused"}]}
    with pytest.raises(ValueError, match="unknown state"):
        parse_seed(raw, NOW)
    listed = tmp_path / "seed.json"
    listed.write_text("[]")
    with pytest.raises(ValueError, match="JSON object"):
        read_seed(listed)
