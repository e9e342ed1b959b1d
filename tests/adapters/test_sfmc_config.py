"""The SFMC definition side as pure functions: lifecycle bodies and the UI's saved choices."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from adapters import sfmc_config

ACTIVITY = "62d6fed2-0000-4000-8000-000000000002"
OFFER = {"punchh_segment": "Lapsed 90 days", "punchh_redeemable": "Free Coffee"}


def lifecycle(**fields: Any) -> dict[str, Any]:
    """A save/publish body: the journey's ids and, under arguments, the saved inArguments."""
    return {
        "activityObjectID": ACTIVITY,
        "interactionId": "int-1",
        "originalDefinitionId": "def-1",
        "interactionKey": "key-1",
        "interactionVersion": 3,
        "arguments": {"execute": {"inArguments": [OFFER, {"email": "{{Contact.Default.Email}}"}]}},
        **fields,
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (lifecycle(), {"segment": "Lapsed 90 days", "redeemable": "Free Coffee",
                       "interaction_version": "3", "is_published": False}),
        (lifecycle(isPublished=True), {"is_published": True}),
        (lifecycle(isPublished="TRUE"), {"is_published": True}),
        (lifecycle(isPublished="no"), {"is_published": False}),
        (lifecycle(interactionVersion="v" * 80), {"interaction_version": "v" * 50}),
        (lifecycle(arguments={"execute": {"inArguments": [
            {"punchh_segment": "{{Event.DE.Segment}}", "punchh_redeemable": " Free Dessert "}]}}),
         {"segment": None, "redeemable": "Free Dessert"}),
        (lifecycle(arguments=None), {"segment": None, "redeemable": None}),
        ({}, {"activity_object_id": None, "interaction_version": None, "segment": None}),
    ],
)
def test_a_lifecycle_call_keeps_ids_and_literal_names(
    body: dict[str, Any], expected: dict[str, Any]
) -> None:
    found = sfmc_config.parse_lifecycle(body)
    for name, value in expected.items():
        assert getattr(found, name) == value, name


def test_a_lifecycle_record_keeps_only_what_it_has() -> None:
    assert sfmc_config.parse_lifecycle(lifecycle(interactionKey=None)).record_fields() == {
        "interaction_id": "int-1",
        "original_definition_id": "def-1",
        "interaction_version": "3",
    }


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"segment": "S", "redeemable": "R"}, None),
        ({"segment": "S", "redeemable": "R", "run_id": "  ", "campaign_name": ""}, None),
        ({"segment": "S", "redeemable": "R", "draft": True, "activity_key": "a",
          "interaction_key": "k"}, None),
        ({"segment": "S", "redeemable": "R", "draft": True, "interaction_id": "i"},
         "activity_key"),
        ({"segment": "S", "redeemable": "R", "draft": True, "activity_key": "a"},
         "interaction_key"),
        ({"redeemable": "R"}, "segment"),
        ({"segment": "S", "redeemable": "R", "start_time": "2026-11-25"}, "start_time"),
    ],
)
def test_the_ui_configuration_is_validated(body: dict[str, Any], problem: str | None) -> None:
    if problem is not None:
        with pytest.raises(ValidationError) as caught:
            sfmc_config.parse_activity_config(body)
        assert problem in caught.value.messages
        return
    config = sfmc_config.parse_activity_config(body)
    assert (config.segment, config.redeemable) == ("S", "R")
    assert config.run_id is None and config.campaign_name is None




@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"redeemable": "R", "audience": "recipients",
          "guest_binding": "{{Contact.Attribute.G.punchh_user_id}}"}, None),
        ({"redeemable": "R", "audience": "recipients"}, "guest_binding"),
        ({"redeemable": "R", "audience": "recipients", "guest_binding": "880001"},
         "guest_binding"),
        ({"segment": "S", "redeemable": "R", "audience": "recipients",
          "guest_binding": "{{Contact.Attribute.G.email}}"}, "segment"),
    ],
)
def test_gifting_the_journeys_contacts_needs_a_bound_identifier_and_no_segment(
    body: dict[str, Any], problem: str | None
) -> None:
    if problem is not None:
        with pytest.raises(ValidationError) as caught:
            sfmc_config.parse_activity_config(body)
        assert problem in caught.value.messages
        return
    config = sfmc_config.parse_activity_config(body)
    assert (config.audience, config.segment) == ("recipients", "")
    assert config.guest_binding == "{{Contact.Attribute.G.punchh_user_id}}"
