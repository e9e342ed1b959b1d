"""Commit Redeemable Distribution: the documented reply, and each refusal in Punchh's order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from sandbox.app import create_app
from tests.sandbox.support import (
    ADMIN,
    CAMPAIGNS,
    SEED,
    commit_body,
    post_campaign,
    sandbox_now,
    seed_redeemable,
    seed_segment,
    utc_z,
)

REQUIRED = ["redeemable_uuid", "segment_id", "category", "campaign_type", "name", "start_time"]


def test_commit_answers_the_documented_body(sb: FlaskClient) -> None:
    now = sandbox_now(sb)
    start = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    response = sb.post(CAMPAIGNS, json=commit_body(now, start_time=utc_z(start)), headers=ADMIN)
    assert response.status_code == 200
    coffee = seed_redeemable("Free Coffee")
    local = start.astimezone(ZoneInfo("America/New_York"))
    assert response.json == {
        "redeemable_id": coffee["redeemable_id"],
        "redeemable_image_url": coffee["redeemable_image_url"],
        "redeemable_properties": "attribute",
        "campaign_id": SEED["first_campaign_id"],
        "external_source_id": "braze:abc:2026-11-25",
        "start_time": local.strftime("%Y-%m-%d %I:%M %p"),
        "timezone": "America/New_York",
    }


def test_default_timezone_is_utc_and_external_id_is_optional() -> None:
    seed = {k: v for k, v in SEED.items() if k != "business"}
    sb = create_app(seed).test_client()
    body = commit_body(sandbox_now(sb))
    del body["external_campaign_id"]
    start = datetime.fromisoformat(body["start_time"])
    reply = sb.post(CAMPAIGNS, json=body, headers=ADMIN).json
    assert reply["timezone"] == "Etc/UTC"
    assert reply["start_time"] == start.strftime("%Y-%m-%d %I:%M %p")
    assert reply["external_source_id"] is None


def test_same_body_twice_makes_two_campaigns(sb: FlaskClient) -> None:
    body = commit_body(sandbox_now(sb))
    first = sb.post(CAMPAIGNS, json=body, headers=ADMIN)
    second = sb.post(CAMPAIGNS, json=body, headers=ADMIN)
    assert first.status_code == second.status_code == 200
    assert second.json["campaign_id"] == first.json["campaign_id"] + 1
    recorded = sb.get("/_sandbox/campaigns").json
    assert [c["campaign_id"] for c in recorded] == [
        first.json["campaign_id"],
        second.json["campaign_id"],
    ]
    assert recorded[0]["body"] == body and recorded[0]["status"] == "scheduled"


def test_segment_id_as_digit_string_is_accepted(sb: FlaskClient) -> None:
    segment_id = seed_segment("VIP Guests")["segment_id"]
    assert post_campaign(sb, segment_id=str(segment_id)).status_code == 200


@pytest.mark.parametrize("field", REQUIRED)
@pytest.mark.parametrize("how", ["absent", "empty", "null"])
def test_missing_or_empty_required_field_is_400(sb: FlaskClient, field: str, how: str) -> None:
    body = commit_body(sandbox_now(sb))
    if how == "absent":
        del body[field]
    else:
        body[field] = "" if how == "empty" else None
    response = sb.post(CAMPAIGNS, json=body, headers=ADMIN)
    assert response.status_code == 400
    assert response.json == {"error": f"Required parameter missing or the value is empty: {field}"}
    assert sb.get("/_sandbox/campaigns").json == []


def test_required_fields_are_reported_in_order(sb: FlaskClient) -> None:
    response = sb.post(CAMPAIGNS, json={"name": "x"}, headers=ADMIN)
    assert response.json["error"].endswith(": redeemable_uuid")
    no_body = sb.post(CAMPAIGNS, headers=ADMIN)
    assert (no_body.status_code, no_body.json["error"][-15:]) == (400, "redeemable_uuid")
    bad_json = sb.post(
        CAMPAIGNS, data="{nope", headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"category": "gift_points"}, "invalid_category"),
        ({"campaign_type": "post_checkin"}, "invalid_campaign_type"),
        ({"segment_id": 42}, "invalid_segment"),
        ({"segment_id": "Lapsed 90 days"}, "invalid_segment"),
        ({"redeemable_uuid": "00000000-0000-4000-8000-000000000000"}, "invalid_redeemable"),
        ({"redeemable_uuid": "Free Coffee"}, "invalid_redeemable"),
        ({"start_time": "2099-11-25 06:36 PM"}, "invalid_format"),
        ({"start_time": "2099-11-25"}, "invalid_format"),
        ({"start_time": "18:36:32"}, "invalid_format"),
        ({"start_time": "T18:36:32Z"}, "invalid_format"),
        ({"start_time": "2099-13-25T18:36:32Z"}, "invalid_format"),
        ({"start_time": "next tuesday"}, "invalid_format"),
    ],
)
def test_object_form_errors(sb: FlaskClient, overrides: dict[str, Any], key: str) -> None:
    response = post_campaign(sb, **overrides)
    assert response.status_code == 422
    assert list(response.json["errors"]) == [key]
    assert sb.get("/_sandbox/campaigns").json == []


@pytest.mark.parametrize("form", ["Z", "+05:30", "naive"])
def test_accepted_start_time_forms(sb: FlaskClient, form: str) -> None:
    start = (sandbox_now(sb) + timedelta(days=1)).replace(microsecond=0)
    text = {
        "Z": utc_z(start),
        "+05:30": start.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
        "naive": start.replace(tzinfo=None).isoformat(),
    }[form]
    assert post_campaign(sb, start_time=text).status_code == 200
    (recorded,) = sb.get("/_sandbox/campaigns").json
    assert datetime.fromisoformat(recorded["start_time"]) == start


def test_start_time_needs_15_minutes_of_lead(sb: FlaskClient) -> None:
    now = sandbox_now(sb)
    too_soon = post_campaign(sb, start_time=utc_z(now + timedelta(minutes=14)))
    assert too_soon.status_code == 422
    assert list(too_soon.json["errors"]) == ["invalid_start_time"]
    # Punchh's own sentence drops the unit; the sandbox names it, so a newcomer reads it right.
    assert "at least 15 minutes ahead" in too_soon.json["errors"]["invalid_start_time"]
    # No offset means UTC: read as New York time this would be hours ahead and accepted.
    naive = (now + timedelta(minutes=10)).replace(tzinfo=None).isoformat(timespec="seconds")
    assert list(post_campaign(sb, start_time=naive).json["errors"]) == ["invalid_start_time"]
    assert post_campaign(sb, start_time=utc_z(now + timedelta(minutes=16))).status_code == 200


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("Free Latte Classic", "deactivated"),
        ("Summer Patio Lemonade", "scheduled"),
        ("Holiday Pie 2024", "expired"),
    ],
)
def test_inactive_redeemables_get_string_errors(sb: FlaskClient, name: str, state: str) -> None:
    response = post_campaign(sb, redeemable_uuid=seed_redeemable(name)["redeemable_uuid"])
    assert (response.status_code, response.json) == (422, {"errors": f"Redeemable is {state}."})


def test_start_time_after_redeemable_expiry(sb: FlaskClient) -> None:
    uuid = seed_redeemable("Pumpkin Spice Latte")["redeemable_uuid"]
    now = sandbox_now(sb)
    late = post_campaign(sb, redeemable_uuid=uuid, start_time=utc_z(now + timedelta(days=4)))
    assert late.status_code == 422
    assert late.json == {
        "errors": "Start time should be less than or equal to redeemable effective expiry time"
    }
    ok = post_campaign(sb, redeemable_uuid=uuid, start_time=utc_z(now + timedelta(days=2)))
    assert ok.status_code == 200
    # Once the sandbox clock passes the expiry, the redeemable counts as expired.
    sb.post("/_sandbox/clock", json={"advance_seconds": 4 * 86400})
    assert post_campaign(sb, redeemable_uuid=uuid).json == {"errors": "Redeemable is expired."}


def test_whitespace_name_is_blank(sb: FlaskClient) -> None:
    response = post_campaign(sb, name="   ")
    assert (response.status_code, response.json) == (422, {"errors": "Name can't be blank"})
