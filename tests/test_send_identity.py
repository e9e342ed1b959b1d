"""Which requests are one send: the rule of docs/send-identity.md, driven through the ledger's
own clock argument (the real-process version across a real midnight is test_send_clock.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis

from adapters.types import GAP_RULE, DistributionRequest
from ledger.store import Ledger
from tests.helpers import dist_request

GAP = 1800
HOLD = 12 * 3600
NY = ZoneInfo("America/New_York")


def followed(source: str = "braze", campaign_ref: str = "cnv:step") -> DistributionRequest:
    """A request with no run key: the ledger follows its send."""
    return replace(dist_request("", source=source, campaign_ref=campaign_ref), key_rule=GAP_RULE)


def at(text: str, zone: ZoneInfo = NY) -> float:
    """Epoch seconds of a wall-clock time in a zone."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


@pytest.fixture(params=["UTC", "America/New_York"])
def ledger(request: pytest.FixtureRequest, rdb: redis.Redis) -> Ledger:
    return Ledger(
        rdb,
        prefix="t:",
        send_gap_seconds=GAP,
        repeat_hold_seconds=HOLD,
        zone=ZoneInfo(request.param),
    )


def test_a_send_across_midnight_is_one_send(ledger: Ledger) -> None:
    zone = ledger.zone
    times = ["2026-12-01T23:50", "2026-12-01T23:59:59", "2026-12-02T00:05", "2026-12-02T00:20"]
    results = [ledger.intake(followed(), now=at(t, zone)) for t in times]  # type: ignore[arg-type]
    assert [r.outcome for r in results] == ["created", "counted", "counted", "counted"]
    assert len({r.distribution_id for r in results}) == 1
    # The key names the moment the send began, in the send-key zone.
    suffix = "Z" if str(zone) == "UTC" else "-0500"
    assert results[0].distribution_id == f"braze:cnv:step:run-20261201T235000{suffix}"


def test_the_same_step_once_a_day_is_one_send_a_day_and_nothing_held(ledger: Ledger) -> None:
    day_one = [ledger.intake(followed(), now=at(f"2026-12-01T10:{m:02d}")) for m in (0, 15, 30)]
    day_two = [ledger.intake(followed(), now=at(f"2026-12-02T10:{m:02d}")) for m in (0, 15, 30)]
    assert [r.state for r in day_one + day_two] == ["queued"] * 6
    assert day_one[0].outcome == day_two[0].outcome == "created"
    assert len({r.distribution_id for r in day_one + day_two}) == 2


def test_a_late_wave_hours_after_the_send_is_held_not_a_new_send(ledger: Ledger) -> None:
    send = ledger.intake(followed(), now=at("2026-12-01T10:00"))
    ledger.intake(followed(), now=at("2026-12-01T10:30"))
    wave = [ledger.intake(followed(), now=at(f"2026-12-01T14:0{s}")) for s in range(3)]
    assert wave[0].outcome == "created" and wave[0].state == "held"
    assert wave[0].held_because.startswith("repeat ")
    assert {r.distribution_id for r in wave} == {wave[0].distribution_id}
    assert wave[0].distribution_id != send.distribution_id
    # A held wave, however late it runs, does not push the next day's real run into the hold.
    late = [ledger.intake(followed(), now=at(f"2026-12-01T22:{m}")) for m in ("00", "20", "29")]
    assert {r.state for r in late} == {"held"}
    tomorrow = ledger.intake(followed(), now=at("2026-12-02T10:00"))
    assert (tomorrow.outcome, tomorrow.state) == ("created", "queued")


def test_repeat_hold_zero_turns_it_off(rdb: redis.Redis) -> None:
    ledger = Ledger(rdb, prefix="t:", send_gap_seconds=GAP, repeat_hold_seconds=0)
    ledger.intake(followed(), now=at("2026-12-01T10:00"))
    later = ledger.intake(followed(), now=at("2026-12-01T11:00"))
    assert (later.outcome, later.state) == ("created", "queued")


def test_blank_key_counts_on_the_open_run_of_its_activity(ledger: Ledger) -> None:
    run = ledger.intake(dist_request("RUN-42", source="sfmc", campaign_ref="j:a"), now=at(
        "2026-12-01T10:00"))
    blank = ledger.intake(followed("sfmc", "j:a"), now=at("2026-12-01T10:10"))
    assert (blank.outcome, blank.distribution_id) == ("counted", run.distribution_id)
    dist = ledger.get(run.distribution_id)
    assert dist is not None and dist.int_field("recipients") == 2


def test_a_followed_send_keeps_a_conflict_a_conflict(ledger: Ledger) -> None:
    ledger.intake(followed(), now=at("2026-12-01T10:00"))
    other = replace(followed(), redeemable="Free Dessert")
    clash = ledger.intake(other, now=at("2026-12-01T10:05"))
    assert clash.conflict and clash.existing_redeemable == "Free Coffee"


def test_per_guest_keys_make_one_live_send_and_one_held_record(rdb: redis.Redis) -> None:
    ledger = Ledger(rdb, prefix="t:", fanout_limit=1, fanout_window_seconds=3600)
    results = [
        ledger.intake(dist_request(f"guest-{n}", source="braze"), now=at("2026-12-01T10:00"))
        for n in range(50)
    ]
    assert [r.state for r in results].count("queued") == 1
    held = {r.distribution_id for r in results if r.state == "held"}
    assert len(held) == 1
    dist = ledger.get(held.pop())
    assert dist is not None
    assert dist.int_field("recipients") == 49 and dist.int_field("folded_sends") == 48
    assert len(rdb.keys("t:d:*")) == 2


def test_explicit_run_keys_hours_apart_are_honoured(rdb: redis.Redis) -> None:
    ledger = Ledger(rdb, prefix="t:", fanout_limit=1, fanout_window_seconds=3600)
    runs = [
        ledger.intake(dist_request(key, source="braze"), now=at(when))
        for key, when in (("am", "2026-12-01T09:00"), ("pm", "2026-12-01T13:00"),
                          ("eve", "2026-12-01T17:00"))
    ]
    assert [(r.outcome, r.state) for r in runs] == [("created", "queued")] * 3
