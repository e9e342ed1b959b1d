"""The generic API adapter as a pure function: body and Idempotency-Key in, a request out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from adapters import generic
from adapters.types import MAX_PART_LENGTH, DistributionRequest
from tests.adapters.strategies import GUEST_MARK, JSON, NAME, guest_fields

BODY = {"segment": "Lapsed 90 days", "redeemable": "Free Coffee"}
FIELDS = {"segment", "redeemable", "start_time", "campaign_name", "campaign_ref"}


# --- table --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        (BODY, "send-1", {"distribution_id": "api:default:send-1", "campaign_name": None}),
        (BODY, "  send-1 \t", {"distribution_id": "api:default:send-1"}),
        (
            {**BODY, "campaign_ref": " spring ", "campaign_name": " Spring sale "},
            "k",
            {"distribution_id": "api:spring:k", "campaign_name": "Spring sale"},
        ),
        ({**BODY, "campaign_name": "   "}, "k", {"campaign_name": None}),
        ({**BODY, "segment": "  VIP Guests  "}, "k", {"segment": "VIP Guests"}),
        ({**BODY, "start_time": None}, "k", {"start_time": None}),
        (
            {**BODY, "start_time": "2026-11-25T20:30:01+05:30"},
            "k",
            {"start_time": datetime(2026, 11, 25, 15, 0, 1, tzinfo=UTC)},
        ),
        (
            {**BODY, "start_time": "2026-11-25T18:36:32z"},
            "k",
            {"start_time": datetime(2026, 11, 25, 18, 36, 32, tzinfo=UTC)},
        ),
        (
            {**BODY, "start_time": "2026-11-25T18:36:32"},
            "k",
            {"start_time": datetime(2026, 11, 25, 18, 36, 32, tzinfo=UTC)},
        ),
        (BODY, "k" * MAX_PART_LENGTH, {"send_key": "k" * MAX_PART_LENGTH}),
    ],
)
def test_a_body_and_key_map_to_one_request(
    body: dict[str, Any], key: str, expected: dict[str, Any]
) -> None:
    request = generic.to_request(body, key)
    assert (request.source, request.key_rule) == ("api", "idempotency-key")
    assert not request.follows_send and request.replay_token is None and request.trace == {}
    for name, value in expected.items():
        assert getattr(request, name) == value, name


@pytest.mark.parametrize(
    ("body", "key", "field"),
    [
        (BODY, None, "Idempotency-Key"),
        (BODY, "", "Idempotency-Key"),
        (BODY, "   ", "Idempotency-Key"),
        (BODY, "k" * (MAX_PART_LENGTH + 1), "Idempotency-Key"),
        (BODY, "send\x001", "Idempotency-Key"),
        (BODY, "send\x7f", "Idempotency-Key"),
        ({"redeemable": "Free Coffee"}, "k", "segment"),
        ({"segment": "Lapsed 90 days"}, "k", "redeemable"),
        ({**BODY, "segment": ""}, "k", "segment"),
        ({**BODY, "redeemable": "Free\tCoffee"}, "k", "redeemable"),
        ({**BODY, "segment": 1306904}, "k", "segment"),
        ({**BODY, "campaign_name": ""}, "k", "campaign_name"),
        ({**BODY, "campaign_name": "n" * 256}, "k", "campaign_name"),
        ({**BODY, "campaign_ref": "r" * (MAX_PART_LENGTH + 1)}, "k", "campaign_ref"),
        ({**BODY, "start_time": "2026-11-25"}, "k", "start_time"),
        ({**BODY, "start_time": "2026-11-25 06:36 PM"}, "k", "start_time"),
        ({**BODY, "start_time": "18:36:32"}, "k", "start_time"),
        ({**BODY, "start_time": 1764095792}, "k", "start_time"),
        ({**BODY, "email": "someone@example.com"}, "k", "email"),  # typos surface, guests too
        ({**BODY, "segment_name": "Lapsed"}, "k", "segment_name"),
    ],
)
def test_an_unusable_request_names_the_wrong_field(
    body: dict[str, Any], key: str | None, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        generic.to_request(body, key)
    assert field in caught.value.messages


@pytest.mark.parametrize("body", [None, [], [BODY], "body", 7])
def test_a_body_that_is_not_an_object_is_refused(body: object) -> None:
    with pytest.raises(ValidationError, match="JSON object"):
        generic.to_request(body, "k")


def test_the_key_is_checked_before_the_body() -> None:
    with pytest.raises(ValidationError) as caught:
        generic.to_request([], None)
    assert list(caught.value.messages) == ["Idempotency-Key"]


# --- properties ---------------------------------------------------------------------------------

SHAPED = st.dictionaries(st.sampled_from(sorted(FIELDS)), JSON | NAME, max_size=6)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSON, SHAPED), st.none() | st.text(max_size=250))
def test_any_json_body_maps_or_raises_only_validation_errors(body: Any, key: str | None) -> None:
    try:
        request = generic.to_request(body, key)
    except ValidationError as exc:
        assert exc.messages
        return
    assert isinstance(request, DistributionRequest)
    assert request.segment and request.redeemable and request.send_key
    assert request.distribution_id.startswith("api:")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {"segment": NAME, "redeemable": NAME},
        optional={"campaign_ref": NAME, "campaign_name": NAME},
    ),
    NAME,
)
def test_the_id_is_the_campaign_ref_and_the_key(body: dict[str, str], key: str) -> None:
    request = generic.to_request(body, key)
    assert request == generic.to_request(dict(reversed(body.items())), f" {key} ")
    ref = body.get("campaign_ref", "default").strip()
    assert request.distribution_id == f"api:{ref}:{key.strip()}"


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(guest_fields(FIELDS))
def test_guest_fields_are_refused_never_carried(guest: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        generic.to_request({**BODY, **guest}, "k")
    assert set(caught.value.messages) == set(guest)
    assert GUEST_MARK not in str(caught.value.messages)  # the refusal names keys, not values
