"""The Punchh sandbox: its three imitated endpoints, control surface, clock and fault modes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server

from sandbox.app import create_app
from sandbox.seed import SEED_PATH

ADMIN = {"Authorization": "Bearer sandbox-admin-key", "User-Agent": "Tests/Sandbox/1.0"}
SEGMENTS = "/api2/dashboard/segments"
REDEEMABLES = "/api2/dashboard/redeemables"
CAMPAIGNS = "/api2/dashboard/campaigns"
SEED: dict[str, Any] = json.loads(SEED_PATH.read_text())
ROOT = Path(__file__).resolve().parent.parent


def seed_segment(name: str) -> dict[str, Any]:
    """The one seeded segment with exactly this name."""
    (found,) = [s for s in SEED["segments"] if s["name"] == name]
    return found


def seed_redeemable(name: str) -> dict[str, Any]:
    """The seeded redeemable with exactly this name."""
    (found,) = [r for r in SEED["redeemables"] if r["name"] == name]
    return found


@pytest.fixture
def sb() -> FlaskClient:
    """A test client on a fresh sandbox built from the packaged seed."""
    return create_app().test_client()


def sandbox_now(client: FlaskClient | httpx.Client) -> datetime:
    """The sandbox clock's now."""
    response = client.get("/_sandbox/clock")
    data = response.json() if isinstance(response, httpx.Response) else response.json
    return datetime.fromisoformat(data["now"])


def utc_z(moment: datetime) -> str:
    """ISO 8601 UTC with Z, as the connector sends it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def commit_body(now: datetime, **overrides: Any) -> dict[str, Any]:
    """A valid commit body starting 20 minutes after ``now``; overrides replace fields."""
    body: dict[str, Any] = {
        "redeemable_uuid": seed_redeemable("Free Coffee")["redeemable_uuid"],
        "segment_id": seed_segment("Lapsed 90 days")["segment_id"],
        "category": "gift_redeemable",
        "campaign_type": "mass_gifting",
        "name": "Win-back coffee",
        "start_time": utc_z(now + timedelta(minutes=20)),
        "external_campaign_id": "braze:abc:2026-11-25",
    }
    body.update(overrides)
    return body


def post_campaign(sb: FlaskClient, **overrides: Any) -> Any:
    """POST a commit body (valid unless overridden) and return the test response."""
    return sb.post(CAMPAIGNS, json=commit_body(sandbox_now(sb), **overrides), headers=ADMIN)


# --- auth and headers ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [SEGMENTS, REDEEMABLES])
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", "sandbox-admin-key", "Basic sandbox-admin-key", "Bearer "],
)
def test_bad_or_missing_key_is_401(sb: FlaskClient, path: str, authorization: str | None) -> None:
    headers = {"User-Agent": "Tests/Sandbox/1.0"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = sb.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json == {"error": "You need to sign in or sign up before continuing."}


def test_no_permission_key_is_403_on_every_endpoint(sb: FlaskClient) -> None:
    headers = {"Authorization": "Bearer sandbox-readonly-key", "User-Agent": "T/S/1"}
    expected = {"no_permission_error": "Insufficient Privileges to access this resource"}
    for response in (
        sb.get(SEGMENTS, headers=headers),
        sb.get(REDEEMABLES, headers=headers),
        sb.post(CAMPAIGNS, json=commit_body(sandbox_now(sb)), headers=headers),
    ):
        assert (response.status_code, response.json) == (403, expected)
    assert sb.get("/_sandbox/campaigns").json == []


def test_missing_user_agent_is_400_and_checked_before_the_key(sb: FlaskClient) -> None:
    for headers in ({"Authorization": ADMIN["Authorization"]}, {"Authorization": "Bearer no"}):
        # Werkzeug's test client adds its own User-Agent unless told otherwise.
        response = sb.get(SEGMENTS, headers={**headers, "User-Agent": ""})
        assert response.status_code == 400
        assert "User-Agent" in response.json["error"]


def test_env_keys_replace_the_seed_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_API_KEYS", "env-key-1, env-key-2")
    sb = create_app().test_client()
    ua = {"User-Agent": "T/S/1"}
    for key in ("env-key-1", "env-key-2"):
        assert sb.get(SEGMENTS, headers={**ua, "Authorization": f"Bearer {key}"}).status_code == 200
    assert sb.get(SEGMENTS, headers=ADMIN).status_code == 401


# --- list endpoints ----------------------------------------------------------------------------


def test_segments_default_page_has_documented_shape(sb: FlaskClient) -> None:
    response = sb.get(SEGMENTS, headers=ADMIN)
    assert response.status_code == 200
    assert isinstance(response.json, list) and len(response.json) == 10
    assert response.json[0] == seed_segment("Lapsed 90 days")
    for item in response.json:
        assert list(item) == [
            "segment_id",
            "name",
            "description",
            "segment_type",
            "user_type",
            "membership_level",
        ]


def test_segments_paging_covers_every_segment_once(sb: FlaskClient) -> None:
    seen: list[int] = []
    page = 1
    while True:
        items = sb.get(SEGMENTS, query_string={"page": page, "per_page": 7}, headers=ADMIN).json
        seen += [s["segment_id"] for s in items]
        if len(items) < 7:
            break
        page += 1
    assert seen == [s["segment_id"] for s in SEED["segments"]]
    assert sb.get(SEGMENTS, query_string={"page": page + 1}, headers=ADMIN).json == []


def test_per_page_is_clamped_to_50_and_bad_values_fall_back(sb: FlaskClient) -> None:
    assert len(sb.get(SEGMENTS, query_string={"per_page": 500}, headers=ADMIN).json) == len(
        SEED["segments"]
    )
    assert len(sb.get(SEGMENTS, query_string={"per_page": 30}, headers=ADMIN).json) == 30
    many = {"per_page": 10_000, "page": 1}
    assert len(sb.get(REDEEMABLES, query_string=many, headers=ADMIN).json) == len(
        SEED["redeemables"]
    )
    for bad in ({"per_page": "x"}, {"per_page": 0}, {"page": "-1"}, {"page": "abc"}):
        assert len(sb.get(SEGMENTS, query_string=bad, headers=ADMIN).json) == 10


def test_clamp_really_limits_a_page_to_50() -> None:
    segments = [{"segment_id": i, "name": f"Segment {i}", "description": ""} for i in range(1, 121)]
    sb = create_app({"segments": segments, "api_keys": {"k": "admin"}}).test_client()
    headers = {"Authorization": "Bearer k", "User-Agent": "T/S/1"}
    page2 = sb.get(SEGMENTS, query_string={"per_page": 80, "page": 2}, headers=headers).json
    assert [s["segment_id"] for s in page2] == list(range(51, 101))


def test_a_silent_per_page_cap_can_be_set_per_run(sb: FlaskClient) -> None:
    assert sb.get("/_sandbox/paging").json == {"max_per_page": 50}
    assert sb.post("/_sandbox/paging", json={"max_per_page": 5}).json == {"max_per_page": 5}
    for page in (1, 2, 7):  # 31 segments: pages of 5, the seventh holds the last one
        items = sb.get(SEGMENTS, query_string={"per_page": 50, "page": page}, headers=ADMIN).json
        assert [s["segment_id"] for s in items] == [
            s["segment_id"] for s in SEED["segments"][(page - 1) * 5 : page * 5]
        ]
    assert len(sb.get(REDEEMABLES, query_string={"per_page": 3}, headers=ADMIN).json) == 3
    for bad in ({"max_per_page": 0}, {"max_per_page": "5"}, {"max_per_page": True}, []):
        assert sb.post("/_sandbox/paging", json=bad).status_code == 400
    sb.post("/_sandbox/reset")
    assert sb.get("/_sandbox/paging").json == {"max_per_page": 50}


def test_the_cap_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_MAX_PER_PAGE", "4")
    sb = create_app().test_client()
    assert len(sb.get(SEGMENTS, query_string={"per_page": 50}, headers=ADMIN).json) == 4
    sb.post("/_sandbox/reset")
    assert sb.get("/_sandbox/paging").json == {"max_per_page": 4}
    monkeypatch.setenv("SANDBOX_MAX_PER_PAGE", "lots")
    with pytest.raises(ValueError, match="SANDBOX_MAX_PER_PAGE"):
        create_app()


def test_params_in_a_json_body_on_the_get(sb: FlaskClient) -> None:
    items = sb.get(SEGMENTS, json={"query": "lapsed", "per_page": 2, "page": 2}, headers=ADMIN).json
    lapsed = [s for s in SEED["segments"] if "lapsed" in s["name"].lower()]
    assert len(lapsed) == 3
    assert items == lapsed[2:3]


def test_query_string_wins_over_the_body(sb: FlaskClient) -> None:
    items = sb.get(
        SEGMENTS, query_string={"query": "VIP"}, json={"query": "Lapsed"}, headers=ADMIN
    ).json
    assert [s["name"] for s in items] == ["VIP Guests"]


def test_segment_query_is_a_case_insensitive_substring_on_name(sb: FlaskClient) -> None:
    names = [
        s["name"] for s in sb.get(SEGMENTS, query_string={"query": "BIRTHDAY"}, headers=ADMIN).json
    ]
    assert names == ["Birthday Club", "birthday club"]
    weekend = sb.get(SEGMENTS, query_string={"query": "weekend regulars"}, headers=ADMIN).json
    assert [s["name"] for s in weekend] == ["Weekend Regulars", "Weekend Regulars"]
    assert weekend[0]["segment_id"] != weekend[1]["segment_id"]
    # Description text is not searched for segments.
    assert sb.get(SEGMENTS, query_string={"query": "spring test"}, headers=ADMIN).json == []


def test_redeemables_shape_search_and_states(sb: FlaskClient) -> None:
    everything = sb.get(REDEEMABLES, query_string={"per_page": 50}, headers=ADMIN).json
    assert len(everything) == len(SEED["redeemables"])  # deactivated etc. are listed too
    for item in everything:
        assert list(item) == [
            "redeemable_id",
            "redeemable_uuid",
            "name",
            "description",
            "redeemable_image_url",
        ]
    by_description = sb.get(REDEEMABLES, query_string={"query": "ANY SIZE"}, headers=ADMIN).json
    assert [r["name"] for r in by_description] == ["Free Coffee"]
    by_name = sb.get(REDEEMABLES, json={"query": "bogo"}, headers=ADMIN).json
    assert [r["name"] for r in by_name] == ["BOGO Burger"]


def test_redeemables_without_external_distribution_is_422() -> None:
    seed = {**SEED, "business": {**SEED["business"], "external_distribution_enabled": False}}
    response = create_app(seed).test_client().get(REDEEMABLES, headers=ADMIN)
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["disabled _feature"]


# --- commit: success ---------------------------------------------------------------------------


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


# --- commit: validation ------------------------------------------------------------------------

REQUIRED = ["redeemable_uuid", "segment_id", "category", "campaign_type", "name", "start_time"]


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


# --- clock and gifting ---------------------------------------------------------------------------


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


def test_clock_rejects_bad_advances(sb: FlaskClient) -> None:
    for body in ({"advance_seconds": -5}, {"advance_seconds": "60"}, {}, None):
        assert sb.post("/_sandbox/clock", json=body).status_code == 400
    real = datetime.now(UTC)
    assert abs(sandbox_now(sb) - real) < timedelta(seconds=5)


def test_guest_endpoints(sb: FlaskClient) -> None:
    assert len(sb.get("/_sandbox/guests").json) == len(SEED["guests"]) == 40
    assert sb.get("/_sandbox/guests", query_string={"segment_id": "x"}).status_code == 400
    assert sb.get("/_sandbox/guests/1/rewards").status_code == 404


# --- faults, log and reset (test client) ---------------------------------------------------------


@pytest.mark.parametrize("status", ["500", "502", "503", "504"])
def test_server_error_faults_do_not_act(sb: FlaskClient, status: str) -> None:
    sb.post("/_sandbox/faults", json={"endpoint": "campaigns", "mode": status, "count": 2})
    assert [post_campaign(sb).status_code for _ in range(3)] == [int(status)] * 2 + [200]
    assert len(sb.get("/_sandbox/campaigns").json) == 1


def test_429_with_and_without_retry_after(sb: FlaskClient) -> None:
    sb.post("/_sandbox/faults", json={"endpoint": "segments", "mode": "429", "retry_after": 7})
    sb.post("/_sandbox/faults", json={"endpoint": "segments", "mode": "429"})
    first, second = sb.get(SEGMENTS, headers=ADMIN), sb.get(SEGMENTS, headers=ADMIN)
    assert (first.status_code, first.headers.get("Retry-After")) == (429, "7")
    assert (second.status_code, second.headers.get("Retry-After")) == (429, None)
    assert sb.get(SEGMENTS, headers=ADMIN).status_code == 200


def test_faults_are_fifo_per_endpoint_and_can_be_cleared(sb: FlaskClient) -> None:
    sb.post("/_sandbox/faults", json={"endpoint": "redeemables", "mode": "502"})
    sb.post("/_sandbox/faults", json={"endpoint": "redeemables", "mode": "503"})
    sb.post("/_sandbox/faults", json={"endpoint": "segments", "mode": "500"})
    assert [f["mode"] for f in sb.get("/_sandbox/faults").json["redeemables"]] == ["502", "503"]
    assert sb.get(REDEEMABLES, headers=ADMIN).status_code == 502
    assert sb.get(REDEEMABLES, headers=ADMIN).status_code == 503
    assert sb.get(REDEEMABLES, headers=ADMIN).status_code == 200
    assert sb.delete("/_sandbox/faults").status_code == 200
    assert sb.get(SEGMENTS, headers=ADMIN).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "segments", "mode": "commit_drop"},
        {"endpoint": "campaigns", "mode": "explode"},
        {"endpoint": "users", "mode": "500"},
        {"endpoint": "campaigns", "mode": "500", "count": 0},
        {"endpoint": "campaigns", "mode": "hang", "seconds": -1},
        {"endpoint": "campaigns", "mode": "429", "retry_after": "soon"},
    ],
)
def test_bad_fault_requests_are_refused(sb: FlaskClient, body: dict[str, Any]) -> None:
    assert sb.post("/_sandbox/faults", json=body).status_code == 400
    assert sb.get("/_sandbox/faults").json == {}


def test_drop_under_the_test_client_raises(sb: FlaskClient) -> None:
    sb.post("/_sandbox/faults", json={"endpoint": "campaigns", "mode": "commit_drop"})
    with pytest.raises(ConnectionAbortedError):
        post_campaign(sb)
    assert len(sb.get("/_sandbox/campaigns").json) == 1


def test_request_log_counts_and_never_keeps_the_key(sb: FlaskClient) -> None:
    sb.get(SEGMENTS, query_string={"query": "vip"}, headers=ADMIN)
    sb.get(SEGMENTS, headers={"User-Agent": "T/S/1", "Authorization": "Bearer bad"})
    post_campaign(sb)
    post_campaign(sb, name=" ")
    sb.get("/_sandbox/campaigns")  # control requests are not logged
    log = sb.get("/_sandbox/requests").json
    assert log["counts"] == {
        "segments": {"200": 1, "401": 1},
        "campaigns": {"200": 1, "422": 1},
    }
    assert log["totals"] == {"segments": 2, "campaigns": 2}
    first = log["requests"][0]
    assert {k: first[k] for k in ("method", "path", "endpoint", "status", "query")} == {
        "method": "GET",
        "path": SEGMENTS,
        "endpoint": "segments",
        "status": 200,
        "query": "query=vip",
    }
    assert first["user_agent"] == ADMIN["User-Agent"] and "time" in first
    text = json.dumps(log)
    assert "sandbox-admin-key" not in text and "Bearer" not in text


def test_request_log_keeps_the_last_1000(sb: FlaskClient) -> None:
    for page in range(1, 1006):
        sb.get(SEGMENTS, query_string={"page": page}, headers=ADMIN)
    log = sb.get("/_sandbox/requests").json
    assert len(log["requests"]) == 1000
    assert log["requests"][0]["query"] == "page=6"
    assert log["totals"]["segments"] == 1005


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


def test_unknown_paths_are_json_404(sb: FlaskClient) -> None:
    response = sb.get("/api2/dashboard/users", headers=ADMIN)
    assert response.status_code == 404 and "error" in response.json
    assert sb.get("/_sandbox/requests").json["counts"] == {"other": {"404": 1}}


def test_apps_do_not_share_state() -> None:
    one, two = create_app().test_client(), create_app().test_client()
    post_campaign(one)
    assert two.get("/_sandbox/campaigns").json == []


# --- faults over real HTTP ----------------------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """A threaded werkzeug server on a free port, in this process, for the module."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def live(served: str) -> Iterator[httpx.Client]:
    """An httpx client on the served sandbox, reset first."""
    with httpx.Client(base_url=served, headers=ADMIN, timeout=5) as client:
        client.post("/_sandbox/reset").raise_for_status()
        yield client


def live_commit(client: httpx.Client, **kwargs: Any) -> httpx.Response:
    """POST a valid commit body over real HTTP."""
    return client.post(CAMPAIGNS, json=commit_body(sandbox_now(client)), **kwargs)


def add_fault(client: httpx.Client, **fault: Any) -> None:
    """Queue a fault, failing the test if the sandbox refuses it."""
    client.post("/_sandbox/faults", json=fault).raise_for_status()


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll until ``predicate`` holds, or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


DISCONNECTED = (httpx.RemoteProtocolError, httpx.ReadError)


def test_drop_closes_without_a_response_and_does_not_act(live: httpx.Client) -> None:
    add_fault(live, endpoint="campaigns", mode="drop")
    with pytest.raises(DISCONNECTED):
        live_commit(live)
    assert live.get("/_sandbox/campaigns").json() == []
    assert live.get("/_sandbox/requests").json()["counts"] == {"campaigns": {"dropped": 1}}
    assert live_commit(live).status_code == 200  # the server is still fine


def test_drop_on_a_list_endpoint(live: httpx.Client) -> None:
    add_fault(live, endpoint="segments", mode="drop")
    with pytest.raises(DISCONNECTED):
        live.get(SEGMENTS)
    assert live.get(SEGMENTS).status_code == 200


def test_commit_drop_creates_then_drops(live: httpx.Client) -> None:
    add_fault(live, endpoint="campaigns", mode="commit_drop")
    with pytest.raises(DISCONNECTED):
        live_commit(live)
    (campaign,) = live.get("/_sandbox/campaigns").json()
    assert campaign["status"] == "scheduled"


def test_hang_times_the_client_out_without_acting(live: httpx.Client) -> None:
    add_fault(live, endpoint="campaigns", mode="hang", seconds=1)
    with pytest.raises(httpx.ReadTimeout):
        live_commit(live, timeout=0.3)
    assert live.get("/_sandbox/campaigns").json() == []
    add_fault(live, endpoint="segments", mode="hang", seconds=0.3)
    started = time.monotonic()
    assert live.get(SEGMENTS).status_code == 503
    assert time.monotonic() - started >= 0.3


def test_commit_hang_creates_then_stalls(live: httpx.Client) -> None:
    add_fault(live, endpoint="campaigns", mode="commit_hang", seconds=1)
    with pytest.raises(httpx.ReadTimeout):
        live_commit(live, timeout=0.3)
    assert len(live.get("/_sandbox/campaigns").json()) == 1


def run_in_thread(call: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[Any]]:
    """Start ``call`` in a thread; its response (or exception) lands in the returned list."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(call())
        except Exception as error:
            out.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def held_count(client: httpx.Client) -> int:
    """How many requests the sandbox is holding."""
    return int(client.get("/_sandbox/held").json()["held"])


@pytest.mark.parametrize(("mode", "created_while_held"), [("hold", 0), ("commit_hold", 1)])
def test_hold_blocks_until_released(live: httpx.Client, mode: str, created_while_held: int) -> None:
    add_fault(live, endpoint="campaigns", mode=mode, seconds=5)
    body = commit_body(sandbox_now(live))
    thread, out = run_in_thread(lambda: live.post(CAMPAIGNS, json=body))
    wait_until(lambda: held_count(live) == 1)
    assert len(live.get("/_sandbox/campaigns").json()) == created_while_held
    assert out == []
    assert live.post("/_sandbox/release").json() == {"released": 1}
    thread.join(timeout=3)
    (response,) = out
    assert response.status_code == 200
    assert held_count(live) == 0
    assert len(live.get("/_sandbox/campaigns").json()) == 1


def test_hold_gives_up_after_its_seconds(live: httpx.Client) -> None:
    add_fault(live, endpoint="segments", mode="hold", seconds=0.3)
    assert live.get(SEGMENTS).status_code == 200


def test_reset_frees_held_requests(live: httpx.Client) -> None:
    add_fault(live, endpoint="segments", mode="hold", seconds=10)
    thread, out = run_in_thread(lambda: live.get(SEGMENTS))
    wait_until(lambda: held_count(live) == 1)
    live.post("/_sandbox/reset")
    thread.join(timeout=3)
    assert out[0].status_code == 200


# --- the command line ---------------------------------------------------------------------------


def test_python_m_sandbox_on_port_0(tmp_path: Path) -> None:
    seed = {**SEED, "business": {"timezone": "Europe/Paris"}}
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--seed", str(seed_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"sandbox listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match and int(match.group(2)) > 0, line
        with httpx.Client(base_url=match.group(1), headers=ADMIN, timeout=5) as client:
            reply = live_commit(client).json()
            assert reply["timezone"] == "Europe/Paris"
            add_fault(client, endpoint="campaigns", mode="commit_drop")
            with pytest.raises(DISCONNECTED):
                live_commit(client)
            assert len(client.get("/_sandbox/campaigns").json()) == 2
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert "Traceback" not in stderr  # dropping the connection is quiet


def test_marketing_cloud_stand_in_vouches_only_for_its_token(sb: FlaskClient) -> None:
    path = "/_sfmc/platform/v1/tokenContext"
    ok = sb.get(path, headers={"Authorization": "Bearer sandbox-mc-token"})
    assert ok.status_code == 200 and "organization" in ok.json
    for headers in ({}, {"Authorization": "Bearer other"}, {"Authorization": "sandbox-mc-token"}):
        assert sb.get(path, headers=headers).status_code == 401
