"""Braze webhook body → DistributionRequest; guest fields are dropped here and go no further."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from adapters.common import (
    Name,
    audience_field,
    from_memo_key,
    memo_key,
    one_audience,
    parse_start_time,
)
from adapters.guest import guest_or_problem
from adapters.types import (
    GAP_RULE,
    MAX_PART_LENGTH,
    DistributionRequest,
    Guest,
)

SOURCE = "braze"

#: What Braze renders for ids of a message that was never really sent (previews, test sends),
#: and Liquid that did not render at all.
_PLACEHOLDER = re.compile(r"_for_unsent_|\{\{|\}\}|\{%|%\}|\$\{", re.IGNORECASE)

#: Fields whose placeholder value marks a test send.
ID_FIELDS = ("campaign_id", "canvas_id", "send_key", "dispatch_id")

#: A send key that is only a calendar date: the bucket the old Canvas template rendered per
#: request. It would split a send at midnight, so the send is followed by continuity instead.
_DAY_KEY = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")


def is_placeholder(value: str) -> bool:
    """True for an unrendered id, or Braze's unsent-campaign placeholder.

    An empty value is not one: Braze renders absent Liquid (`{{canvas.${api_id}}}` outside a
    Canvas) as "", and a real webhook must not be mistaken for a test send because of it.
    """
    return bool(_PLACEHOLDER.search(value))


class OptionalText(fields.String):
    """A string that may be sent empty by an unrendered template; trimmed and bounded."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("load_default", None)
        kwargs.setdefault("validate", validate.Length(max=MAX_PART_LENGTH))
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


#: Optional text fields: an empty value is the same as leaving the field out.
OPTIONAL_TEXT = frozenset(
    {
        "campaign_id",
        "campaign_name",
        "canvas_id",
        "canvas_name",
        "send_key",
        "dispatch_id",
        "punchh_segment",
        "punchh_audience",
    }
)

#: Audience mode's guest fields: read outside the schema (and its memo), one recipient at a
#: time, and only when the send gifts its recipients.
USER_ID_FIELD = "punchh_user_id"
EMAIL_FIELD = "email"


class BrazeWebhookSchema(Schema):
    """The webhook body the connector documents for Braze (names are the contract)."""

    class Meta:
        unknown = EXCLUDE  # guest ids, emails and attributes are never read

    punchh_segment = Name(
        load_default=None,
        metadata={"description": "Punchh segment name (leave out with punchh_audience)"},
    )
    punchh_audience = audience_field(
        '"recipients" gifts exactly this send\'s recipients (each body then carries '
        'punchh_user_id or email); default "segment" gifts punchh_segment'
    )
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
            "campaign, or a run key the same for every recipient of a run; leave it out "
            "(Canvas steps, triggered campaigns) to have the send followed by its continuity"
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

    @pre_load
    def _empty_is_absent(self, data: Any, **kwargs: Any) -> Any:
        # Braze renders a tag with no value here (`{{canvas.${api_id}}}` outside a Canvas)
        # as "": that field is absent, not a test send and not an id.
        if not isinstance(data, dict):
            return data
        return {
            k: v
            for k, v in data.items()
            if not (k in OPTIONAL_TEXT and isinstance(v, str) and not v.strip())
        }

    @validates_schema
    def _one_audience(self, data: dict[str, Any], **kwargs: Any) -> None:
        one_audience(
            data.get("punchh_audience"),
            data.get("punchh_segment"),
            field_name="punchh_segment",
            recipients='send "punchh_audience": "recipients" to gift exactly this send\'s '
            "recipients",
        )

    @validates_schema
    def _needs_a_campaign(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("campaign_id") is None and data.get("canvas_id") is None:
            raise ValidationError(
                "send campaign_id ({{campaign.${api_id}}}) or canvas_id ({{canvas.${api_id}}})",
                field_name="campaign_id",
            )

    @validates_schema
    def _no_per_guest_key_in_a_canvas(self, data: dict[str, Any], **kwargs: Any) -> None:
        send_key, canvas_id = data.get("send_key"), data.get("canvas_id")
        if (
            send_key
            and canvas_id
            and send_key == data.get("dispatch_id")
            and not is_placeholder(send_key)
            and not is_placeholder(canvas_id)
        ):
            raise ValidationError(
                "inside a Canvas, {{campaign.${dispatch_id}}} can differ for every guest, so "
                "each guest would become a send that gifts the whole segment: leave send_key "
                "out (the connector follows the send) or use a run key that is the same for "
                "every recipient of a run (docs/braze.md#naming-the-send)",
                field_name="send_key",
            )


@dataclass(frozen=True)
class BrazeCall:
    """A parsed Braze webhook: the request, or a test send to validate only."""

    request: DistributionRequest
    test_send: bool
    placeholder_fields: tuple[str, ...] = ()
    #: Audience mode: this recipient's identifier (never stored beyond its batch).
    guest: Guest | None = None
    #: Audience-mode test send without a usable identifier: what a real send would refuse.
    guest_problem: str = ""


_SCHEMA = BrazeWebhookSchema()  # built once: construction deep-copies every declared field
#: The only body fields the adapter reads: the memo key (guest fields are never part of it).
_READ = tuple(_SCHEMA.fields)
#: Sends in flight at once per process that parse without touching marshmallow again.
MEMO_SIZE = 256


def parse(body: Any) -> BrazeCall:
    """Validate a Braze body; raise ValidationError naming each field that is wrong.

    Pure, so it is memoised on the fields it reads: every recipient of one send carries the
    same ones, and only the first of them pays for validation.
    """
    if not isinstance(body, dict):
        raise ValidationError({"_body": ["the body must be a JSON object or a form"]})
    key = memo_key(body, _READ)
    call = _parse(body) if key is None else _parse_memo(key)
    if not call.request.gifts_recipients:
        return call
    return with_guest(call, body)


def with_guest(call: BrazeCall, body: dict[str, Any]) -> BrazeCall:
    """Add the recipient's identifier; a real send without one is refused, a test send told."""
    guest, problem = guest_or_problem(
        body.get(USER_ID_FIELD),
        body.get(EMAIL_FIELD),
        user_field=USER_ID_FIELD,
        email_field=EMAIL_FIELD,
        refuse=not call.test_send,
    )
    return replace(call, guest=guest, guest_problem=problem)


@lru_cache(maxsize=MEMO_SIZE)
def _parse_memo(key: tuple[Any, ...]) -> BrazeCall:
    return _parse(from_memo_key(_READ, key))


def _parse(body: dict[str, Any]) -> BrazeCall:
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
    if send_key and _DAY_KEY.match(send_key):
        send_key, key_rule = "", f"{GAP_RULE} (date send_key {data['send_key']} ignored)"
    elif send_key:
        key_rule = "send_key=dispatch_id" if send_key == dispatch_id else "send_key"
    else:
        key_rule = GAP_RULE

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
        segment=data["punchh_segment"] or "",
        redeemable=data["punchh_redeemable"],
        start_time=start,
        campaign_name=_campaign_name(data, send_key),
        trace=trace,
        audience=data["punchh_audience"],
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
    # A followed send's key is chosen by the ledger, which adds it to the name.
    return (f"Braze: {label} ({send_key})" if send_key else f"Braze: {label}")[:255]
