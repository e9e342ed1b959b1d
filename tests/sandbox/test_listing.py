"""Get Segment List and Get Redeemable List: shapes, paging, the silent page cap, search."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from sandbox.app import create_app
from tests.sandbox.support import ADMIN, REDEEMABLES, SEED, SEGMENTS, seed_segment


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
