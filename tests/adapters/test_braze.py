"""The Braze adapter as a pure function: body in, DistributionRequest (or field errors) out."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from adapters import braze
from adapters.types import GAP_RULE, OPEN_SEND, DistributionRequest
from tests.adapters.strategies import GUEST_MARK, JSON, NAME, guest_fields

OFFER = {"punchh_segment": "Lapsed 90 days", "punchh_redeemable": "Free Coffee"}
SCHEDULED = {
    **OFFER,
    "campaign_id": "cmp-1",
    "campaign_name": "Winback",
    "send_key": "disp-1",
    "dispatch_id": "disp-1",
}
CANVAS = {**OFFER, "canvas_id": "cnv-9", "canvas_name": "Onboarding", "campaign_id": "step-2"}
#: Every field the adapter reads.
READ = {*SCHEDULED, *CANVAS, "start_time", "punchh_campaign_name"}


def parse(**fields: Any) -> DistributionRequest:
    """The request of a body, failing the test if it is a test send."""
    call = braze.parse(fields)
    assert not call.test_send, call.placeholder_fields
    return call.request


# --- table: the send's identity -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "distribution_id", "key_rule"),
    [
        (SCHEDULED, "braze:cmp-1:disp-1", "send_key=dispatch_id"),
        ({**SCHEDULED, "send_key": "run-7"}, "braze:cmp-1:run-7", "send_key"),
        ({**OFFER, "campaign_id": "cmp-1", "send_key": " run-7 "}, "braze:cmp-1:run-7", "send_key"),
        ({**CANVAS, "send_key": "lunch"}, "braze:cnv-9:step-2:lunch", "send_key"),
        (CANVAS, f"braze:cnv-9:step-2:{OPEN_SEND}", GAP_RULE),
        ({**OFFER, "canvas_id": "cnv-9"}, f"braze:cnv-9:{OPEN_SEND}", GAP_RULE),
        ({**OFFER, "campaign_id": "cmp-1"}, f"braze:cmp-1:{OPEN_SEND}", GAP_RULE),
        ({**SCHEDULED, "canvas_id": ""}, "braze:cmp-1:disp-1", "send_key=dispatch_id"),
        ({**CANVAS, "send_key": "  "}, f"braze:cnv-9:step-2:{OPEN_SEND}", GAP_RULE),
        (
            {**CANVAS, "send_key": "2026-12-01"},
            f"braze:cnv-9:step-2:{OPEN_SEND}",
            f"{GAP_RULE} (date send_key 2026-12-01 ignored)",
        ),
        (
            {**CANVAS, "send_key": "20261201"},
            f"braze:cnv-9:step-2:{OPEN_SEND}",
            f"{GAP_RULE} (date send_key 20261201 ignored)",
        ),
        ({**CANVAS, "send_key": "2026-12-01-13"}, "braze:cnv-9:step-2:2026-12-01-13", "send_key"),
    ],
    ids=[
        "scheduled", "run-key", "trimmed", "canvas-run-key", "canvas-followed", "canvas-only",
        "triggered-followed", "empty-canvas-is-absent", "blank-key-is-absent", "date-key",
        "compact-date-key", "hour-key",
    ],
)
def test_the_send_is_named_by_its_key_or_followed(
    body: dict[str, Any], distribution_id: str, key_rule: str
) -> None:
    request = parse(**body)
    assert (request.distribution_id, request.key_rule) == (distribution_id, key_rule)
    assert request.source == "braze" and request.follows_send == (OPEN_SEND in distribution_id)
    assert (request.segment, request.redeemable) == ("Lapsed 90 days", "Free Coffee")


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (SCHEDULED, "Braze: Winback (disp-1)"),
        (CANVAS, "Braze: Onboarding"),  # a followed send's key is added by the ledger
        ({**CANVAS, "campaign_name": "Step 2"}, "Braze: Onboarding / Step 2"),
        ({**OFFER, "campaign_id": "cmp-1"}, "Braze: cmp-1"),
        ({**OFFER, "canvas_id": "cnv-9"}, "Braze: cnv-9"),
        ({**SCHEDULED, "punchh_campaign_name": " Chosen "}, "Chosen"),
        ({**SCHEDULED, "punchh_campaign_name": "{{campaign.${name}}}"}, "Braze: Winback (disp-1)"),
        (
            {**CANVAS, "canvas_name": "c" * 200, "campaign_name": "s" * 200},
            f"Braze: {'c' * 200} / {'s' * 45}",  # cut to the 255 characters Punchh takes
        ),
    ],
)
def test_the_campaign_name_is_chosen_or_built_from_braze_names(
    body: dict[str, Any], name: str
) -> None:
    assert parse(**body).campaign_name == name


@pytest.mark.parametrize(
    ("start_time", "expected"),
    [
        (None, None),
        ("", None),
        ("2026-11-25T18:36:32Z", datetime(2026, 11, 25, 18, 36, 32, tzinfo=UTC)),
        ("2026-11-25T20:30:01+05:30", datetime(2026, 11, 25, 15, 0, 1, tzinfo=UTC)),
        ("2026-11-25T18:36:32", datetime(2026, 11, 25, 18, 36, 32, tzinfo=UTC)),
        ("{{ 'now' | date: '%Y' }}", None),  # unrendered Liquid: no start time, not an error
    ],
)
def test_start_time_is_utc_or_absent(start_time: str | None, expected: datetime | None) -> None:
    body = dict(SCHEDULED) if start_time is None else {**SCHEDULED, "start_time": start_time}
    assert braze.parse(body).request.start_time == expected


def test_non_guest_context_is_kept_for_tracing() -> None:
    request = parse(**{**CANVAS, "dispatch_id": "d-1"})
    assert request.trace == {"canvas_name": "Onboarding", "dispatch_id": "d-1"}


# --- table: test sends --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"dispatch_id": "dispatch_id_for_unsent_campaign"}, ("dispatch_id",)),
        ({"send_key": "dispatch_id_for_unsent_campaign", "dispatch_id": "x"}, ("send_key",)),
        ({"campaign_id": "{{campaign.${api_id}}}"}, ("campaign_id",)),
        ({"canvas_id": "{% if x %}"}, ("canvas_id",)),
        ({"send_key": "${dispatch_id}", "dispatch_id": "${dispatch_id}"},
         ("send_key", "dispatch_id")),
    ],
)
def test_placeholders_make_a_test_send(changes: dict[str, str], fields: tuple[str, ...]) -> None:
    call = braze.parse({**SCHEDULED, **changes})
    assert call.test_send and call.placeholder_fields == fields
    assert not any(k in call.request.trace for k in fields)  # a placeholder is not traced


# --- table: refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**OFFER}, "campaign_id"),
        ({**OFFER, "campaign_id": "", "canvas_id": " "}, "campaign_id"),
        ({**SCHEDULED, "punchh_segment": "  "}, "punchh_segment"),
        ({k: v for k, v in SCHEDULED.items() if k != "punchh_redeemable"}, "punchh_redeemable"),
        ({**SCHEDULED, "punchh_segment": "Lapsed\n90"}, "punchh_segment"),
        ({**SCHEDULED, "punchh_redeemable": "x" * 201}, "punchh_redeemable"),
        ({**SCHEDULED, "punchh_segment": 7}, "punchh_segment"),
        ({**SCHEDULED, "send_key": "k" * 201}, "send_key"),
        ({**SCHEDULED, "campaign_id": ["cmp"]}, "campaign_id"),
        ({**SCHEDULED, "start_time": "2026-11-25 06:36 PM"}, "start_time"),
        ({**SCHEDULED, "start_time": "2026-11-25"}, "start_time"),
        ({**SCHEDULED, "punchh_campaign_name": "n" * 256}, "punchh_campaign_name"),
        ({**CANVAS, "send_key": "d-1", "dispatch_id": "d-1"}, "send_key"),  # per-guest in Canvas
    ],
)
def test_an_unusable_body_names_the_wrong_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        braze.parse(body)
    assert field in caught.value.messages


@pytest.mark.parametrize("body", [None, [], [SCHEDULED], "body", 7, True])
def test_a_body_that_is_not_an_object_is_refused(body: object) -> None:
    with pytest.raises(ValidationError, match="JSON object"):
        braze.parse(body)


# --- properties ---------------------------------------------------------------------------------

#: Bodies of the fields the adapter reads, any JSON in them, with or without guest fields.
SHAPED = st.dictionaries(st.sampled_from(sorted(READ)), JSON | NAME, max_size=8)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSON, SHAPED, st.builds(lambda b, g: {**b, **g}, SHAPED, guest_fields(READ))))
def test_any_json_body_maps_or_raises_only_validation_errors(body: Any) -> None:
    try:
        call = braze.parse(body)
    except ValidationError as exc:
        assert exc.messages
        return
    assert isinstance(call.request, DistributionRequest) and call.request.source == "braze"


#: A send key that is not only a date (a date is ignored: the send is followed instead).
KEY = NAME.filter(lambda s: not re.fullmatch(r"\s*\d{4}-?\d{2}-?\d{2}\s*", s))
#: Valid bodies: the offer, a campaign, and optional names and keys.
VALID = st.fixed_dictionaries(
    {"punchh_segment": NAME, "punchh_redeemable": NAME, "campaign_id": NAME},
    optional={"canvas_name": NAME, "campaign_name": NAME, "send_key": KEY, "dispatch_id": NAME},
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(VALID, guest_fields(READ), guest_fields(READ))
def test_guest_fields_change_nothing_and_never_reach_the_request(
    body: dict[str, Any], guest: dict[str, Any], other_guest: dict[str, Any]
) -> None:
    call = braze.parse({**body, **guest})
    again = braze.parse({**other_guest, **body})
    assert call == again  # deterministic: the same send, whoever the recipient
    assert GUEST_MARK not in repr(call)
    send_key = body.get("send_key", "").strip() or OPEN_SEND
    if not call.test_send:
        assert call.request.distribution_id == f"braze:{body['campaign_id'].strip()}:{send_key}"
