"""Braze webhook body → DistributionRequest; guest fields are dropped here and go no further."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from adapters.common import Name, from_memo_key, memo_key, parse_start_time
from connector.models import MAX_PART_LENGTH, DistributionRequest

SOURCE = "braze"

#: What Braze renders for ids of a message that was never really sent (previews, test sends),
#: and Liquid that did not render at all.
_PLACEHOLDER = re.compile(r"_for_unsent_|\{\{|\}\}|\{%|%\}|\$\{", re.IGNORECASE)

#: Fields whose empty or placeholder value marks a test send.
ID_FIELDS = ("campaign_id", "canvas_id", "send_key", "dispatch_id")


def is_placeholder(value: str) -> bool:
    """True for a rendered-empty or unrendered id, or Braze's unsent-campaign placeholder."""
    return not value.strip() or bool(_PLACEHOLDER.search(value))


class OptionalText(fields.String):
    """A string that may be sent empty by an unrendered template; trimmed and bounded."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("load_default", None)
        kwargs.setdefault("validate", validate.Length(max=MAX_PART_LENGTH))
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class BrazeWebhookSchema(Schema):
    """The webhook body the connector documents for Braze (names are the contract)."""

    class Meta:
        unknown = EXCLUDE  # guest ids, emails and attributes are never read

    punchh_segment = Name(required=True, metadata={"description": "Punchh segment name"})
    punchh_redeemable = Name(required=True, metadata={"description": "Punchh redeemable name"})
    campaign_id = OptionalText(
        metadata={"description": "{{campaign.${api_id}}} (in a Canvas step: the step id)"}
    )
    campaign_name = OptionalText(metadata={"description": "{{campaign.${name}}}"})
    canvas_id = OptionalText(metadata={"description": "{{canvas.${api_id}}}"})
    canvas_name = OptionalText(metadata={"description": "{{canvas.${name}}}"})
    send_key = OptionalText(
        metadata={
            "description": "names the send: {{campaign.${dispatch_id}}} for a scheduled "
            "campaign, a Liquid date bucket for a Canvas; default: the calendar day"
        }
    )
    dispatch_id = OptionalText(metadata={"description": "{{campaign.${dispatch_id}}}, tracing"})
    start_time = fields.String(
        load_default=None, metadata={"description": "ISO 8601; optional"}
    )
    punchh_campaign_name = fields.String(
        load_default=None,
        validate=validate.Length(max=255),
        metadata={"description": "campaign name shown in Punchh; default from Braze's names"},
    )

    @validates_schema
    def _needs_a_campaign(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("campaign_id") is None and data.get("canvas_id") is None:
            raise ValidationError(
                "send campaign_id ({{campaign.${api_id}}}) or canvas_id ({{canvas.${api_id}}})",
                field_name="campaign_id",
            )


@dataclass(frozen=True)
class BrazeCall:
    """A parsed Braze webhook: the request, or a test send to validate only."""

    request: DistributionRequest
    test_send: bool
    placeholder_fields: tuple[str, ...] = ()


_SCHEMA = BrazeWebhookSchema()  # built once: construction deep-copies every declared field
#: The only body fields the adapter reads: the memo key (guest fields are never part of it).
_READ = tuple(_SCHEMA.fields)
#: Sends in flight at once per process that parse without touching marshmallow again.
MEMO_SIZE = 256


def parse(body: Any, today: date) -> BrazeCall:
    """Validate a Braze body; raise ValidationError naming each field that is wrong.

    Pure, so it is memoised on the fields it reads: every recipient of one send carries the
    same ones, and only the first of them pays for validation.
    """
    if not isinstance(body, dict):
        raise ValidationError({"_body": ["the body must be a JSON object or a form"]})
    key = memo_key(body, _READ)
    if key is None:
        return _parse(body, today)
    return _parse_memo(key, today)


@lru_cache(maxsize=MEMO_SIZE)
def _parse_memo(key: tuple[Any, ...], today: date) -> BrazeCall:
    return _parse(from_memo_key(_READ, key), today)


def _parse(body: dict[str, Any], today: date) -> BrazeCall:
    data = _SCHEMA.load(body)
    placeholders = tuple(
        name for name in ID_FIELDS if data.get(name) is not None and is_placeholder(data[name])
    )
    start = None
    raw_start = (data.get("start_time") or "").strip()
    if raw_start and not is_placeholder(raw_start):
        try:
            start = parse_start_time(raw_start)
        except ValidationError as exc:
            raise ValidationError({"start_time": exc.messages}) from exc

    campaign_id = data.get("campaign_id") or ""
    canvas_id = data.get("canvas_id") or ""
    if canvas_id:
        campaign_ref = f"{canvas_id}:{campaign_id}" if campaign_id else canvas_id
    else:
        campaign_ref = campaign_id
    send_key = data.get("send_key") or ""
    dispatch_id = data.get("dispatch_id") or ""
    if send_key:
        key_rule = "send_key=dispatch_id" if send_key == dispatch_id else "send_key"
    else:
        send_key = today.isoformat()
        key_rule = "day"

    trace = {
        k: data[k]
        for k in ("campaign_name", "canvas_name", "dispatch_id")
        if data.get(k) and not is_placeholder(data[k])
    }
    request = DistributionRequest(
        source=SOURCE,
        campaign_ref=campaign_ref or "-",
        send_key=send_key,
        key_rule=key_rule,
        segment=data["punchh_segment"],
        redeemable=data["punchh_redeemable"],
        start_time=start,
        campaign_name=_campaign_name(data, send_key),
        trace=trace,
    )
    return BrazeCall(request, test_send=bool(placeholders), placeholder_fields=placeholders)


def _campaign_name(data: dict[str, Any], send_key: str) -> str:
    """The name Punchh shows: the marketer's choice, else built from Braze's names."""
    chosen = (data.get("punchh_campaign_name") or "").strip()
    if chosen and not is_placeholder(chosen):
        return chosen
    parts = [
        data[k]
        for k in ("canvas_name", "campaign_name")
        if data.get(k) and not is_placeholder(data[k])
    ]
    label = " / ".join(parts) or data.get("canvas_id") or data.get("campaign_id") or "campaign"
    return f"Braze: {label} ({send_key})"[:255]
