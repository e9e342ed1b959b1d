"""Audience mode in the adapters as pure functions: the identifier each recipient carries."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from adapters import braze, generic, sfmc, sfmc_config
from adapters.types import RECIPIENTS_AUDIENCE, Guest

BRAZE = {
    "punchh_audience": "recipients",
    "punchh_redeemable": "Free Coffee",
    "campaign_id": "cmp-1",
}


def execute(**args: Any) -> dict[str, Any]:
    base = {"punchh_audience": "recipients", "punchh_redeemable": "Free Coffee"}
    return {
        "journeyId": "j-1",
        "activityId": "a-1",
        "definitionInstanceId": "pass-1",
        "inArguments": [{**base, **args}],
    }


@pytest.mark.parametrize(
    ("fields", "kind", "value"),
    [
        ({"punchh_user_id": "123"}, "user_id", "123"),
        ({"punchh_user_id": 123}, "user_id", "123"),
        ({"email": " Ann@Example.com "}, "email", "ann@example.com"),
        ({"punchh_user_id": "9", "email": "a@b.co"}, "user_id", "9"),  # Punchh prefers user_id
        ({"punchh_user_id": "", "email": "a@b.co"}, "email", "a@b.co"),
        ({"punchh_user_id": "{{custom_attribute.${punchh_user_id}}}", "email": "a@b.co"},
         "email", "a@b.co"),
    ],
)
def test_braze_reads_one_identifier_per_recipient(
    fields: dict[str, Any], kind: str, value: str
) -> None:
    call = braze.parse({**BRAZE, **fields})
    assert call.request.audience == RECIPIENTS_AUDIENCE and call.request.segment == ""
    assert call.guest == Guest(kind, value)


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({}, "punchh_user_id", "this recipient had neither"),
        ({"punchh_user_id": "12a"}, "punchh_user_id", "a whole number"),
        ({"email": "not-an-address"}, "email", "email address"),
        ({"punchh_user_id": "1", "punchh_segment": "Lapsed"}, "punchh_segment", "not both"),
        ({"punchh_audience": "everyone"}, "punchh_audience", "Must be one of"),
    ],
)
def test_braze_refusals_name_the_field_and_never_the_value(
    fields: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        braze.parse({**BRAZE, **fields})
    messages = caught.value.normalized_messages()
    assert says in " ".join(messages[field])
    assert "12a" not in str(messages) and "not-an-address" not in str(messages)


def test_segment_mode_still_needs_a_segment() -> None:
    body = {k: v for k, v in BRAZE.items() if k != "punchh_audience"}
    with pytest.raises(ValidationError) as caught:
        braze.parse(body)
    assert "punchh_audience" in caught.value.normalized_messages()["punchh_segment"][0]


def test_a_braze_test_send_reports_the_missing_identifier_instead_of_refusing() -> None:
    call = braze.parse({**BRAZE, "campaign_id": "campaign_id_for_unsent_campaign"})
    assert call.test_send and call.guest is None
    assert "punchh_user_id" in call.guest_problem


def test_recipients_share_the_memoised_request_but_not_their_identifiers() -> None:
    first = braze.parse({**BRAZE, "punchh_user_id": "1"})
    second = braze.parse({**BRAZE, "punchh_user_id": "2"})
    assert first.request is second.request
    assert (first.guest, second.guest) == (Guest("user_id", "1"), Guest("user_id", "2"))


@given(st.text(min_size=1, max_size=40))
def test_an_identifier_never_shows_in_a_repr(secret: str) -> None:
    guest = Guest("email", secret + "@example.com")
    assert secret + "@example.com" not in repr(guest)


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=10) | st.integers(), max_size=6))
def test_any_braze_body_is_parsed_or_refused_by_validation(extra: dict[str, Any]) -> None:
    try:
        call = braze.parse({**BRAZE, **extra})
    except ValidationError:
        return
    assert call.guest is not None or call.test_send


def test_sfmc_execute_reads_the_bound_identifier() -> None:
    run = sfmc.parse_execute(execute(punchh_user_id="77"))
    assert run.request.gifts_recipients and run.guest == Guest("user_id", "77")
    assert run.request.replay_token  # a retried contact is still counted once


def test_sfmc_unbound_identifier_is_never_refused_but_said() -> None:
    unbound = "{{Contact.Attribute.Guests.punchh_user_id}}"
    real = sfmc.parse_execute(execute(punchh_user_id=unbound))
    assert real.guest is None and "inArguments.punchh_user_id" in real.guest_problem
    told = sfmc.parse_execute(execute(punchh_user_id=unbound, punchh_test=True))
    assert told.guest is None and "inArguments.punchh_user_id" in told.guest_problem


def test_sfmc_activity_config_offers_the_journeys_contacts() -> None:
    config = sfmc_config.parse_activity_config(
        {"redeemable": "Free", "audience": "recipients",
         "guest_binding": "{{Contact.Attribute.Guests.punchh_user_id}}"}
    )
    assert (config.audience, config.segment) == (RECIPIENTS_AUDIENCE, "")
    with pytest.raises(ValidationError):
        sfmc_config.parse_activity_config({"redeemable": "Free"})


def test_api_recipients_body_is_bounded_and_positional() -> None:
    guests = generic.to_guests({"user_ids": [1, "2"], "emails": ["a@b.co"]})
    assert [g.kind for g in guests] == ["user_id", "user_id", "email"]
    with pytest.raises(ValidationError) as caught:
        generic.to_guests({"user_ids": ["x1"], "emails": ["nope"]})
    assert caught.value.normalized_messages() == {
        "user_ids": ["item 0 is not a Punchh user id (a whole number)"],
        "emails": ["item 0 is not an email"],
    }
    with pytest.raises(ValidationError):
        generic.to_guests({"user_ids": list(range(1, 1002))})
    with pytest.raises(ValidationError):
        generic.to_guests({})
