"""Custom segments: the endpoints as shared/reference/punchh-api.md documents them, how a commit
addresses one (both readings), gifting its members at the start time, and its faults."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient

from sandbox.app import create_app
from tests.sandbox.support import (
    ADD_USERS,
    ADMIN,
    CAMPAIGNS,
    CUSTOM_SEGMENTS,
    DISCONNECTED,
    MEMBERS,
    SEED,
    SEGMENTS,
    add_fault,
    commit_body,
    sandbox_now,
    seed_segment,
    utc_z,
)

GUESTS: list[dict[str, Any]] = SEED["guests"]
NAME_TAKEN = {"name": ["Name has already been taken"]}


def create(client: FlaskClient, name: str = "pc-braze-send-1", **extra: Any) -> Any:
    """POST a create and return the test response."""
    return client.post(CUSTOM_SEGMENTS, json={"name": name, **extra}, headers=ADMIN)


def add(client: FlaskClient, custom_segment_id: int, identifiers: list[Any], **extra: Any) -> Any:
    """POST add_users (async unless told otherwise) and return the test response."""
    body = {"custom_segment_id": custom_segment_id, "user_identifiers": identifiers, **extra}
    return client.post(ADD_USERS, json={"bulk_method": "async", **body}, headers=ADMIN)


def members(client: FlaskClient) -> dict[str, list[int]]:
    """Each custom segment's members' guest ids, by name, from the control surface."""
    listed = client.get("/_sandbox/custom_segments").json
    return {c["name"]: c["member_guest_ids"] for c in listed}


def rewards(client: FlaskClient, guest_id: int) -> list[int]:
    """The campaign ids one guest was gifted by."""
    return [r["campaign_id"] for r in client.get(f"/_sandbox/guests/{guest_id}/rewards").json]


# --- create, list, delete ----------------------------------------------------------------------


def test_create_answers_201_with_the_documented_fields_and_is_listed(sb: FlaskClient) -> None:
    response = create(sb, "pc-braze-send-1", description="Recipients of one send")
    assert response.status_code == 201
    created = response.json
    assert list(created) == [
        "custom_segment_id",
        "name",
        "description",
        "created_at",
        "updated_at",
    ]
    assert created["name"] == "pc-braze-send-1"
    assert created["description"] == "Recipients of one send"
    assert sb.get(CUSTOM_SEGMENTS, headers=ADMIN).json == [created]


def test_a_taken_name_is_refused_so_create_is_not_idempotent(sb: FlaskClient) -> None:
    first = create(sb, "pc-braze-send-1")
    for name in ("pc-braze-send-1", "PC-Braze-Send-1"):
        again = create(sb, name)
        assert (again.status_code, again.json) == (422, NAME_TAKEN)
    assert [c["custom_segment_id"] for c in sb.get(CUSTOM_SEGMENTS, headers=ADMIN).json] == [
        first.json["custom_segment_id"]
    ]


def test_create_needs_a_name(sb: FlaskClient) -> None:
    missing = sb.post(CUSTOM_SEGMENTS, json={"description": "x"}, headers=ADMIN)
    assert (missing.status_code, missing.json) == (
        400,
        {"error": "Required parameter missing or the value is empty: name"},
    )
    assert create(sb, "   ").status_code == 422
    assert sb.get(CUSTOM_SEGMENTS, headers=ADMIN).json == []


def test_the_list_is_paged_oldest_first(sb: FlaskClient) -> None:
    ids = [create(sb, f"pc-send-{n}").json["custom_segment_id"] for n in range(12)]
    first = sb.get(CUSTOM_SEGMENTS, headers=ADMIN).json
    second = sb.get(CUSTOM_SEGMENTS, query_string={"page": 2}, headers=ADMIN).json
    assert [c["custom_segment_id"] for c in first + second] == ids
    assert ids == sorted(ids) and len(first) == 10


def test_delete_answers_202_then_404_and_unlists_it(sb: FlaskClient) -> None:
    created = create(sb, "pc-braze-send-1").json
    params = {"custom_segment_id": created["custom_segment_id"]}
    deleted = sb.delete(CUSTOM_SEGMENTS, query_string=params, headers=ADMIN)
    assert (deleted.status_code, deleted.json) == (
        202,
        {"accepted": "Custom Segment pc-braze-send-1 has been marked for deletion"},
    )
    again = sb.delete(CUSTOM_SEGMENTS, query_string=params, headers=ADMIN)
    assert (again.status_code, again.json) == (
        404,
        {"errors": {"not_found": "Custom Segment not found."}},
    )
    assert sb.get(CUSTOM_SEGMENTS, headers=ADMIN).json == []
    assert sb.get(SEGMENTS, query_string={"query": "pc-braze"}, headers=ADMIN).json == []
    assert sb.delete(CUSTOM_SEGMENTS, headers=ADMIN).status_code == 400
    assert create(sb, "pc-braze-send-1").status_code == 201  # the name is free again


def test_every_endpoint_checks_the_caller(sb: FlaskClient) -> None:
    headers = {"User-Agent": "T/S/1", "Authorization": "Bearer wrong"}
    for response in (
        sb.get(CUSTOM_SEGMENTS, headers=headers),
        sb.post(CUSTOM_SEGMENTS, json={"name": "x"}, headers=headers),
        sb.delete(CUSTOM_SEGMENTS, query_string={"custom_segment_id": 1}, headers=headers),
        sb.get(MEMBERS, query_string={"custom_segment_id": 1, "user_id": 1}, headers=headers),
        sb.post(ADD_USERS, json={"custom_segment_id": 1, "user_identifiers": []}, headers=headers),
    ):
        assert response.status_code == 401
    assert sb.get("/_sandbox/custom_segments").json == []


# --- add_users and the membership check ---------------------------------------------------------


def test_add_users_adds_known_guests_and_names_the_unknown(sb: FlaskClient) -> None:
    segment_id = create(sb).json["custom_segment_id"]
    identifiers = [
        str(GUESTS[0]["guest_id"]),
        GUESTS[1]["guest_id"],  # a number works as well as a string
        GUESTS[2]["email"].upper(),  # emails match whatever their case
        "990000001",
        "nobody@example.com",
        "not-an-identifier",
    ]
    response = add(sb, segment_id, identifiers)
    assert (response.status_code, response.json) == (
        200,
        {"invalid_identifiers": ["990000001", "nobody@example.com", "not-an-identifier"]},
    )
    assert members(sb) == {"pc-braze-send-1": sorted(g["guest_id"] for g in GUESTS[:3])}


def test_a_guest_added_again_is_still_one_member(sb: FlaskClient) -> None:
    segment_id = create(sb).json["custom_segment_id"]
    guest = GUESTS[0]
    for identifiers in ([str(guest["guest_id"])], [guest["email"], str(guest["guest_id"])]):
        assert add(sb, segment_id, identifiers).json == {"invalid_identifiers": []}
    assert members(sb) == {"pc-braze-send-1": [guest["guest_id"]]}


@pytest.mark.parametrize(("method", "limit"), [("async", 1000), (None, 1000), ("sync", 100)])
def test_add_users_takes_at_most_its_limit(
    sb: FlaskClient, method: str | None, limit: int
) -> None:
    segment_id = create(sb).json["custom_segment_id"]
    extra = {} if method is None else {"bulk_method": method}
    body = {"custom_segment_id": segment_id, **extra}
    too_many = {**body, "user_identifiers": ["1"] * (limit + 1)}
    over = sb.post(ADD_USERS, json=too_many, headers=ADMIN)
    mode = method or "async"
    assert (over.status_code, over.json) == (
        422,
        {"errors": {"limit_exceed": f"Max {limit} users allowed per api call in {mode} mode"}},
    )
    ids = [str(GUESTS[n % len(GUESTS)]["guest_id"]) for n in range(limit)]
    full = sb.post(ADD_USERS, json={**body, "user_identifiers": ids}, headers=ADMIN)
    assert full.status_code == 200 and len(ids) == limit
    assert len(members(sb)["pc-braze-send-1"]) == len(GUESTS)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"user_identifiers": ["1"]}, 400),
        ({"custom_segment_id": "{id}"}, 400),
        ({"custom_segment_id": "{id}", "user_identifiers": []}, 400),
        ({"custom_segment_id": "{id}", "user_identifiers": "1"}, 400),
        ({"custom_segment_id": "{id}", "user_identifiers": ["1"], "bulk_method": "x"}, 422),
        ({"custom_segment_id": 42, "user_identifiers": ["1"]}, 404),
    ],
)
def test_add_users_refusals(sb: FlaskClient, body: dict[str, Any], status: int) -> None:
    segment_id = create(sb).json["custom_segment_id"]
    sent = {k: segment_id if v == "{id}" else v for k, v in body.items()}
    assert sb.post(ADD_USERS, json=sent, headers=ADMIN).status_code == status
    assert members(sb) == {"pc-braze-send-1": []}


def test_the_membership_check(sb: FlaskClient) -> None:
    segment_id = create(sb).json["custom_segment_id"]
    inside, outside = GUESTS[0], GUESTS[1]
    add(sb, segment_id, [inside["email"]])
    for params in ({"user_id": inside["guest_id"]}, {"email": inside["email"]}):
        query = {"custom_segment_id": segment_id, **params}
        found = sb.get(MEMBERS, query_string=query, headers=ADMIN)
        assert found.status_code == 200
        assert list(found.json) == [
            "custom_segment_member_id",
            "custom_segment_id",
            "email",
            "user_id",
            "created_at",
            "updated_at",
        ]
        assert (found.json["user_id"], found.json["custom_segment_id"]) == (
            inside["guest_id"],
            segment_id,
        )
    # user_id wins when both are given.
    both = {
        "custom_segment_id": segment_id,
        "user_id": outside["guest_id"],
        "email": inside["email"],
    }
    not_member = sb.get(MEMBERS, query_string=both, headers=ADMIN)
    assert (not_member.status_code, not_member.json) == (
        404,
        {"errors": {"not_found": "Member not found."}},
    )
    unknown = sb.get(MEMBERS, query_string={"custom_segment_id": 42, "user_id": 1}, headers=ADMIN)
    assert unknown.json == {"errors": {"not_found": "Custom Segment not found."}}
    no_guest = sb.get(MEMBERS, query_string={"custom_segment_id": segment_id}, headers=ADMIN)
    assert no_guest.status_code == 400


# --- addressing a custom segment in a commit, and gifting it -------------------------------------


def listed(client: FlaskClient, name: str) -> list[dict[str, Any]]:
    """Get Segment List's items named exactly ``name``."""
    found = client.get(SEGMENTS, query_string={"query": name}, headers=ADMIN).json
    return [s for s in found if s["name"] == name]


def commit_to(client: FlaskClient, segment_id: int) -> Any:
    """POST a valid commit to ``segment_id``."""
    body = commit_body(sandbox_now(client), segment_id=segment_id)
    return client.post(CAMPAIGNS, json=body, headers=ADMIN)


def test_get_segment_list_lists_a_custom_segment_under_its_own_id(sb: FlaskClient) -> None:
    created = create(sb, "pc-braze-send-1", description="one send").json
    (item,) = listed(sb, "pc-braze-send-1")
    assert item["segment_type"] == "CustomSegmentDefinition"
    assert item["segment_id"] != created["custom_segment_id"]
    assert item["segment_id"] not in {s["segment_id"] for s in SEED["segments"]}
    every = sb.get(SEGMENTS, query_string={"per_page": 50}, headers=ADMIN).json
    assert every[-1] == item  # after the seeded segments


def test_a_commit_gifts_the_members_at_the_start_time_once(sb: FlaskClient) -> None:
    segment_id = create(sb).json["custom_segment_id"]
    early, late, too_late, outsider = GUESTS[0], GUESTS[1], GUESTS[2], GUESTS[3]
    add(sb, segment_id, [str(early["guest_id"])])
    (item,) = listed(sb, "pc-braze-send-1")
    body = commit_body(sandbox_now(sb), segment_id=item["segment_id"])
    campaign_id = sb.post(CAMPAIGNS, json=body, headers=ADMIN).json["campaign_id"]
    add(sb, segment_id, [late["email"]])  # after the commit, before the start: still gifted
    sb.post("/_sandbox/clock", json={"advance_seconds": 10 * 60})
    assert rewards(sb, early["guest_id"]) == []
    sb.post("/_sandbox/clock", json={"advance_seconds": 11 * 60})
    add(sb, segment_id, [str(too_late["guest_id"])])  # after the start: not gifted
    sb.post("/_sandbox/clock", json={"advance_seconds": 3600})
    assert rewards(sb, early["guest_id"]) == rewards(sb, late["guest_id"]) == [campaign_id]
    assert rewards(sb, too_late["guest_id"]) == rewards(sb, outsider["guest_id"]) == []
    (campaign,) = sb.get("/_sandbox/campaigns").json
    assert (campaign["custom_segment_id"], campaign["gifted_count"]) == (segment_id, 2)


def test_a_custom_segment_deleted_before_the_start_gifts_nobody(sb: FlaskClient) -> None:
    segment_id = create(sb).json["custom_segment_id"]
    add(sb, segment_id, [str(GUESTS[0]["guest_id"])])
    (item,) = listed(sb, "pc-braze-send-1")
    commit_to(sb, item["segment_id"])
    sb.delete(CUSTOM_SEGMENTS, query_string={"custom_segment_id": segment_id}, headers=ADMIN)
    sb.post("/_sandbox/clock", json={"advance_seconds": 3600})
    assert rewards(sb, GUESTS[0]["guest_id"]) == []


def test_by_default_the_custom_segment_id_is_not_a_segment_id(sb: FlaskClient) -> None:
    segment_id = create(sb).json["custom_segment_id"]
    refused = commit_to(sb, segment_id)
    assert (refused.status_code, list(refused.json["errors"])) == (422, ["invalid_segment"])


def test_the_other_reading_takes_the_custom_segment_id_and_lists_nothing(sb: FlaskClient) -> None:
    assert sb.get("/_sandbox/address_mode").json == {"address_mode": "segment_id"}
    created = create(sb).json
    (item,) = listed(sb, "pc-braze-send-1")
    switched = sb.post("/_sandbox/address_mode", json={"address_mode": "custom_segment_id"})
    assert switched.json == {"address_mode": "custom_segment_id"}
    assert listed(sb, "pc-braze-send-1") == []
    assert list(commit_to(sb, item["segment_id"]).json["errors"]) == ["invalid_segment"]
    add(sb, created["custom_segment_id"], [str(GUESTS[0]["guest_id"])])
    campaign_id = commit_to(sb, created["custom_segment_id"]).json["campaign_id"]
    sb.post("/_sandbox/clock", json={"advance_seconds": 3600})
    assert rewards(sb, GUESTS[0]["guest_id"]) == [campaign_id]
    # Seeded segments are committed to as ever.
    assert commit_to(sb, seed_segment("VIP Guests")["segment_id"]).status_code == 200
    for bad in ({"address_mode": "name"}, {}, None):
        assert sb.post("/_sandbox/address_mode", json=bad).status_code == 400
    sb.post("/_sandbox/reset")
    assert sb.get("/_sandbox/address_mode").json == {"address_mode": "segment_id"}


def test_the_reading_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_CUSTOM_SEGMENT_ADDRESS", "custom_segment_id")
    sb = create_app().test_client()
    assert sb.get("/_sandbox/address_mode").json == {"address_mode": "custom_segment_id"}
    created = create(sb).json
    assert commit_to(sb, created["custom_segment_id"]).status_code == 200
    monkeypatch.setenv("SANDBOX_CUSTOM_SEGMENT_ADDRESS", "segment")
    with pytest.raises(ValueError, match="SANDBOX_CUSTOM_SEGMENT_ADDRESS"):
        create_app()


def test_reset_forgets_custom_segments_but_never_reuses_an_id(sb: FlaskClient) -> None:
    first = create(sb).json["custom_segment_id"]
    (item,) = listed(sb, "pc-braze-send-1")
    sb.post("/_sandbox/reset")
    assert sb.get(CUSTOM_SEGMENTS, headers=ADMIN).json == []
    assert create(sb).json["custom_segment_id"] == first + 1
    (again,) = listed(sb, "pc-braze-send-1")
    assert again["segment_id"] == item["segment_id"] + 1


# --- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["429", "500", "502", "503"])
def test_add_users_faults_add_nobody(sb: FlaskClient, mode: str) -> None:
    segment_id = create(sb).json["custom_segment_id"]
    sb.post("/_sandbox/faults", json={"endpoint": "add_users", "mode": mode, "retry_after": 2})
    refused = add(sb, segment_id, [str(GUESTS[0]["guest_id"])])
    assert refused.status_code == int(mode)
    assert members(sb) == {"pc-braze-send-1": []}
    assert add(sb, segment_id, [str(GUESTS[0]["guest_id"])]).status_code == 200


def test_acting_faults_apply_only_where_something_changes(sb: FlaskClient) -> None:
    for endpoint in ("create_custom_segment", "delete_custom_segment", "add_users"):
        fault = {"endpoint": endpoint, "mode": "commit_drop"}
        assert sb.post("/_sandbox/faults", json=fault).status_code == 200
    for endpoint in ("custom_segments", "custom_segment_member"):
        fault = {"endpoint": endpoint, "mode": "commit_hang"}
        assert sb.post("/_sandbox/faults", json=fault).status_code == 400


def test_the_request_log_names_each_endpoint_and_no_guest(sb: FlaskClient) -> None:
    segment_id = create(sb).json["custom_segment_id"]
    guest = GUESTS[0]
    add(sb, segment_id, [guest["email"]])
    for query in (
        {"custom_segment_id": segment_id, "email": guest["email"]},
        {"user_id": guest["guest_id"], "custom_segment_id": segment_id},
    ):
        sb.get(MEMBERS, query_string=query, headers=ADMIN)
    sb.get(CUSTOM_SEGMENTS, headers=ADMIN)
    sb.delete(CUSTOM_SEGMENTS, query_string={"custom_segment_id": segment_id}, headers=ADMIN)
    log = sb.get("/_sandbox/requests").json
    assert log["counts"] == {
        "create_custom_segment": {"201": 1},
        "add_users": {"200": 1},
        "custom_segment_member": {"200": 2},
        "custom_segments": {"200": 1},
        "delete_custom_segment": {"202": 1},
    }
    queries = [r["query"] for r in log["requests"] if r["endpoint"] == "custom_segment_member"]
    assert queries == [
        f"custom_segment_id={segment_id}&email=[redacted]",
        f"user_id=[redacted]&custom_segment_id={segment_id}",
    ]


def test_a_lost_create_answer_leaves_one_custom_segment(live: httpx.Client) -> None:
    add_fault(live, endpoint="create_custom_segment", mode="commit_drop")
    with pytest.raises(DISCONNECTED):
        live.post(CUSTOM_SEGMENTS, json={"name": "pc-braze-send-1"})
    # The create acted: a retry is refused by the name rule, and the list finds it by name.
    retry = live.post(CUSTOM_SEGMENTS, json={"name": "pc-braze-send-1"})
    assert (retry.status_code, retry.json()) == (422, NAME_TAKEN)
    assert [c["name"] for c in live.get(CUSTOM_SEGMENTS).json()] == ["pc-braze-send-1"]


@pytest.mark.parametrize(
    ("mode", "added"), [("drop", []), ("commit_drop", [GUESTS[0]["guest_id"]])]
)
def test_add_users_connection_drops(live: httpx.Client, mode: str, added: list[int]) -> None:
    created = live.post(CUSTOM_SEGMENTS, json={"name": "pc-braze-send-1"}).json()
    segment_id = created["custom_segment_id"]
    add_fault(live, endpoint="add_users", mode=mode)
    body = {"custom_segment_id": segment_id, "user_identifiers": [str(GUESTS[0]["guest_id"])]}
    with pytest.raises(DISCONNECTED):
        live.post(ADD_USERS, json=body)
    (segment,) = live.get("/_sandbox/custom_segments").json()
    assert segment["member_guest_ids"] == added
    assert live.post(ADD_USERS, json=body).status_code == 200  # adding is safe to repeat
    (segment,) = live.get("/_sandbox/custom_segments").json()
    assert segment["member_guest_ids"] == [GUESTS[0]["guest_id"]]


def test_the_start_time_rule_holds_for_custom_segments(sb: FlaskClient) -> None:
    create(sb)
    (item,) = listed(sb, "pc-braze-send-1")
    soon = utc_z(sandbox_now(sb) + timedelta(minutes=14))
    body = commit_body(sandbox_now(sb), segment_id=item["segment_id"], start_time=soon)
    refused = sb.post(CAMPAIGNS, json=body, headers=ADMIN)
    assert list(refused.json["errors"]) == ["invalid_start_time"]
