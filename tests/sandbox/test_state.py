"""The state over time: the clock, gifting exactly once when due, and reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from sandbox.app import create_app
from tests.sandbox.support import (
    ADMIN,
    CAMPAIGNS,
    SEED,
    SEGMENTS,
    commit_body,
    post_campaign,
    sandbox_now,
    seed_redeemable,
    seed_segment,
    utc_z,
)


def test_campaign_gifts_its_segment_exactly_once_when_due(sb: FlaskClient) -> None:
    segment_id = seed_segment("Lapsed 90 days")["segment_id"]
    members = sb.get("/_sandbox/guests", query_string={"segment_id": segment_id}).json
    assert len(members) == 12
    outsider = next(g for g in SEED["guests"] if segment_id not in g["segments"])
    campaign_id = post_campaign(sb).json["campaign_id"]

    sb.post("/_sandbox/clock", json={"advance_seconds": 10 * 60})
    assert sb.get(f"/_sandbox/guests/{members[0]['guest_id']}/rewards").json == []

    before = sandbox_now(sb)
    after = sb.post("/_sandbox/clock", json={"advance_seconds": 11 * 60}).json["now"]
    assert datetime.fromisoformat(after) - before >= timedelta(minutes=11)
    for _ in range(2):  # more time and more requests must not gift again
        sb.post("/_sandbox/clock", json={"advance_seconds": 3600})
        sb.get(SEGMENTS, headers=ADMIN)
    for guest in members:
        rewards = sb.get(f"/_sandbox/guests/{guest['guest_id']}/rewards").json
        assert [(r["campaign_id"], r["redeemable_name"]) for r in rewards] == [
            (campaign_id, "Free Coffee")
        ]
        assert rewards[0]["redeemable_id"] == seed_redeemable("Free Coffee")["redeemable_id"]
    assert sb.get(f"/_sandbox/guests/{outsider['guest_id']}/rewards").json == []
    (campaign,) = sb.get("/_sandbox/campaigns").json
    assert (campaign["status"], campaign["gifted_count"]) == ("gifted", 12)


def test_real_time_passing_gifts_on_the_next_request(
    sb: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_campaign(sb)
    later = datetime.now(UTC) + timedelta(hours=1)

    class OneHourLater(datetime):
        """datetime whose now() is an hour ahead, as if the test had waited."""

        @classmethod
        def now(cls, tz: Any = None) -> OneHourLater:
            return cls.fromtimestamp(later.timestamp(), tz)

    monkeypatch.setattr("sandbox.clock.datetime", OneHourLater)
    # No clock advance: the request itself must notice the campaign is due.
    (campaign,) = sb.get("/_sandbox/campaigns").json
    assert (campaign["status"], campaign["gifted_count"]) == ("gifted", 12)


def test_duplicate_campaigns_gift_twice(sb: FlaskClient) -> None:
    body = commit_body(sandbox_now(sb))
    sb.post(CAMPAIGNS, json=body, headers=ADMIN)
    sb.post(CAMPAIGNS, json=body, headers=ADMIN)
    sb.post("/_sandbox/clock", json={"advance_seconds": 3600})
    guest_id = SEED["guests"][0]["guest_id"]
    rewards = sb.get(f"/_sandbox/guests/{guest_id}/rewards").json
    assert len(rewards) == 2 and len({r["reward_id"] for r in rewards}) == 2


def test_reset_goes_back_to_the_seed(sb: FlaskClient) -> None:
    first_id = post_campaign(sb).json["campaign_id"]
    sb.post("/_sandbox/clock", json={"advance_seconds": 7200})
    sb.post("/_sandbox/faults", json={"endpoint": "segments", "mode": "500"})
    assert sb.post("/_sandbox/reset").status_code == 200
    assert sb.get("/_sandbox/campaigns").json == []
    assert sb.get("/_sandbox/faults").json == {}
    assert sb.get("/_sandbox/requests").json["requests"] == []
    assert abs(sandbox_now(sb) - datetime.now(UTC)) < timedelta(seconds=5)
    assert sb.get(f"/_sandbox/guests/{SEED['guests'][0]['guest_id']}/rewards").json == []
    # Punchh never hands out an id twice: a ledger that outlives the reset must not see its
    # earlier campaign's id again on a new send.
    assert post_campaign(sb).json["campaign_id"] == first_id + 1


def test_clock_can_be_put_back_where_it_was(sb: FlaskClient) -> None:
    """A demo moves the clock to show gifts, then restores it; the gifts stay."""
    before = sb.get("/_sandbox/clock").json
    assert before["offset_seconds"] == 0
    campaign_id = post_campaign(sb).json["campaign_id"]
    assert sb.post("/_sandbox/clock", json={"advance_seconds": 3600}).status_code == 200
    assert sb.get("/_sandbox/clock").json["offset_seconds"] == 3600
    back = sb.post("/_sandbox/clock", json={"offset_seconds": before["offset_seconds"]})
    assert back.status_code == 200 and back.json["offset_seconds"] == 0
    assert abs(sandbox_now(sb) - datetime.now(UTC)) < timedelta(seconds=5)
    guest_id = SEED["guests"][0]["guest_id"]
    rewards = sb.get(f"/_sandbox/guests/{guest_id}/rewards").json
    assert [r["campaign_id"] for r in rewards] == [campaign_id]
    # A campaign made after the clock came back is judged on real time again.
    soon = utc_z(datetime.now(UTC) + timedelta(minutes=16))
    assert post_campaign(sb, start_time=soon).status_code == 200
    for body in ({"offset_seconds": -1}, {"offset_seconds": "0"},
                 {"offset_seconds": 0, "advance_seconds": 1}):
        assert sb.post("/_sandbox/clock", json=body).status_code == 400


def test_apps_do_not_share_state() -> None:
    one, two = create_app().test_client(), create_app().test_client()
    post_campaign(one)
    assert two.get("/_sandbox/campaigns").json == []
