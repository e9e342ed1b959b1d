"""The SFMC adapter as pure functions: decoded execute, lifecycle and UI bodies in, shapes out."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from adapters import sfmc, sfmc_config
from adapters.types import GAP_RULE, OPEN_SEND, DistributionRequest
from tests.adapters.strategies import GUEST_MARK, JSON, NAME, guest_fields

OFFER = {"punchh_segment": "Lapsed 90 days", "punchh_redeemable": "Free Coffee"}
JOURNEY, ACTIVITY = "a4dcaf9f-journey", "62d6fed2-activity"
#: Execute fields the adapter reads; everything else in the body is the platform's or a guest's.
IDS = {"journeyId", "activityId", "activityObjectID", "definitionInstanceId", "inArguments"}
ARGUMENTS = {*OFFER, "run_id", "start_time", "punchh_campaign_name", "punchh_test"}


def execute(*arguments: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A decoded execute body as Journey Builder sends it, contact key included."""
    body = {
        "inArguments": list(arguments) or [dict(OFFER)],
        "outArguments": [],
        "activityObjectID": ACTIVITY,
        "journeyId": JOURNEY,
        "activityId": ACTIVITY,
        "definitionInstanceId": "cec6e0a0-instance",
        "activityInstanceId": "3be6161f-instance",
        "keyValue": f"{GUEST_MARK}contact-key",
        "mode": 0,
    }
    return {**body, **fields}


def token(instance: str, activity: str = ACTIVITY) -> str:
    """The replay token the docs define: it names a pass without naming the contact."""
    return hashlib.sha256(f"{activity}:{instance}".encode()).hexdigest()[:32]


# --- execute: table -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (execute(), {"distribution_id": f"sfmc:{JOURNEY}:{ACTIVITY}:{OPEN_SEND}",
                     "key_rule": GAP_RULE}),
        (execute({**OFFER, "run_id": " run-7 "}),
         {"distribution_id": f"sfmc:{JOURNEY}:{ACTIVITY}:run-7", "key_rule": "run_id"}),
        (execute({**OFFER, "run_id": 20261201}), {"send_key": "20261201"}),
        (execute({**OFFER, "run_id": ""}), {"send_key": "", "key_rule": GAP_RULE}),
        (execute({**OFFER, "run_id": None}), {"send_key": ""}),
        (execute(OFFER, {"punchh_redeemable": "Free Dessert"}), {"redeemable": "Free Dessert"}),
        (execute({**OFFER, "punchh_redeemable": ""}, {"punchh_redeemable": "Free Dessert"}),
         {"redeemable": "Free Dessert"}),
        (execute(activityId=None), {"campaign_ref": f"{JOURNEY}:{ACTIVITY}"}),
        (execute(activityObjectID=None), {"campaign_ref": f"{JOURNEY}:{ACTIVITY}"}),
        (execute({**OFFER, "start_time": "2026-11-25T20:30:01+05:30"}),
         {"start_time": datetime(2026, 11, 25, 15, 0, 1, tzinfo=UTC)}),
        (execute({**OFFER, "punchh_campaign_name": "  Winback  "}),
         {"campaign_name": "Winback"}),
        (execute(), {"replay_token": token("cec6e0a0-instance")}),
        (execute(definitionInstanceId=" i-2 "), {"replay_token": token("i-2")}),
        (execute(definitionInstanceId=""), {"replay_token": None}),
        (execute(definitionInstanceId=None), {"replay_token": None}),
    ],
)
def test_an_execute_call_maps_to_one_request(
    body: dict[str, Any], expected: dict[str, Any]
) -> None:
    found = sfmc.parse_execute(body)
    assert not found.test and found.request == sfmc.to_request(body)
    assert found.request.source == "sfmc"
    for name, value in expected.items():
        assert getattr(found.request, name) == value, name


@pytest.mark.parametrize(("flag", "test"), [(True, True), ("true", True), (False, False),
                                            (None, False), ("", False)])
def test_punchh_test_makes_a_validation_only_call(flag: object, test: bool) -> None:
    assert sfmc.parse_execute(execute({**OFFER, "punchh_test": flag})).test is test


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inArguments": [OFFER], "activityId": ACTIVITY}, "journeyId"),
        (execute(activityId=None, activityObjectID=None), "activityId"),
        (execute(inArguments=None), "inArguments"),
        (execute(inArguments={"punchh_segment": "x"}), "inArguments"),
        (execute(inArguments=[OFFER, "x"]), "inArguments"),
        (execute({"punchh_redeemable": "Free Coffee"}), "inArguments.punchh_segment"),
        (execute({**OFFER, "run_id": "{{Context.PublicationId}}"}), "inArguments.run_id"),
        (execute({**OFFER, "run_id": True}), "inArguments.run_id"),
        (execute({**OFFER, "run_id": 1.5}), "inArguments.run_id"),
        (execute({**OFFER, "run_id": "r" * 201}), "inArguments.run_id"),
        (execute({**OFFER, "run_id": "run\n7"}), "inArguments.run_id"),
        (execute({**OFFER, "start_time": "tomorrow"}), "inArguments.start_time"),
        (execute({**OFFER, "punchh_test": "perhaps"}), "inArguments.punchh_test"),
        (execute(definitionInstanceId=7), "definitionInstanceId"),
        (execute(definitionInstanceId="i" * 201), "definitionInstanceId"),
        (execute(journeyId=""), "journeyId"),
    ],
)
def test_an_unusable_execute_names_the_wrong_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        sfmc.parse_execute(body)
    assert field in caught.value.messages


@pytest.mark.parametrize("body", [None, [], "x", 7])
def test_a_decoded_body_that_is_not_an_object_is_refused(body: object) -> None:
    with pytest.raises(ValidationError, match="JSON object"):
        sfmc.parse_execute(body)


# --- properties ---------------------------------------------------------------------------------

ARGS = st.dictionaries(st.sampled_from(sorted(ARGUMENTS)), JSON | NAME, max_size=6)
SHAPED = st.fixed_dictionaries(
    {}, optional={"inArguments": st.lists(ARGS, max_size=3) | JSON, "journeyId": JSON | NAME,
                  "activityId": JSON | NAME, "activityObjectID": JSON | NAME,
                  "definitionInstanceId": JSON | NAME},
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSON, SHAPED))
def test_any_decoded_body_maps_or_raises_only_validation_errors(body: Any) -> None:
    parsers = (sfmc.parse_execute, sfmc_config.parse_lifecycle, sfmc_config.parse_activity_config)
    for parse in parsers:
        try:
            parse(body)
        except ValidationError as exc:
            assert exc.messages


VALID_ARGS = st.fixed_dictionaries(
    {"punchh_segment": NAME, "punchh_redeemable": NAME},
    optional={"run_id": NAME | st.integers(min_value=0), "punchh_campaign_name": NAME},
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    VALID_ARGS,
    NAME,
    NAME,
    guest_fields(ARGUMENTS),
    guest_fields(IDS),
    guest_fields(IDS),
)
def test_contacts_of_one_run_share_the_send_and_never_reach_it(
    args: dict[str, Any],
    journey: str,
    activity: str,
    guest_args: dict[str, Any],
    guest: dict[str, Any],
    other_guest: dict[str, Any],
) -> None:
    ids = {"journeyId": journey, "activityId": activity}
    one = sfmc.parse_execute({**guest, **ids, "inArguments": [{**args, **guest_args}],
                              "definitionInstanceId": "pass-1"})
    other = sfmc.parse_execute({**other_guest, **ids, "inArguments": [args],
                                "definitionInstanceId": "pass-2"})
    assert GUEST_MARK not in repr(one) + repr(other)
    assert one.request.distribution_id == other.request.distribution_id
    assert one.request.replay_token != other.request.replay_token
    run_id = str(args.get("run_id", "")).strip() or OPEN_SEND
    assert one.request.distribution_id == f"sfmc:{journey.strip()}:{activity.strip()}:{run_id}"


@settings(max_examples=100)
@given(st.text(max_size=150))
def test_the_replay_token_does_not_carry_the_pass_it_names(text: str) -> None:
    instance = f"{GUEST_MARK}{text}"
    found = sfmc.to_request(execute(definitionInstanceId=instance))
    assert isinstance(found, DistributionRequest)
    assert found.replay_token == token(instance.strip())
    assert GUEST_MARK not in repr(found)
