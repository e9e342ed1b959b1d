"""The connector's own API payload: `POST /v1/distributions` with an Idempotency-Key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from adapters.common import Name, StartTime, audience_field, one_audience
from adapters.guest import read_guest
from adapters.types import (
    MAX_PART_LENGTH,
    DistributionRequest,
    Guest,
)

#: Identifiers one `POST /v1/distributions/<id>/recipients` may carry: Punchh's own add_users
#: limit, so a call never has to be split or half-refused.
MAX_RECIPIENTS_PER_CALL = 1000

SOURCE = "api"


class DistributionSchema(Schema):
    """Body of POST /v1/distributions; unknown fields are refused so typos surface."""

    class Meta:
        unknown = RAISE

    segment = Name(
        load_default=None,
        metadata={"description": "Punchh segment name (leave out with audience: recipients)"},
    )
    audience = audience_field(
        '"recipients": gift exactly the guests you then post to '
        '/v1/distributions/{id}/recipients; default "segment" gifts `segment`'
    )
    redeemable = Name(required=True, metadata={"description": "Punchh redeemable name"})
    start_time = StartTime(
        load_default=None,
        metadata={"description": "ISO 8601; moved to now + 15 min + margin if sooner"},
    )
    campaign_name = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=255),
        metadata={"description": "campaign name shown in Punchh"},
    )
    campaign_ref = Name(
        load_default="default",
        metadata={"description": "the calling tool's campaign id; groups sends in the ledger"},
    )

    @validates_schema
    def _one_audience(self, data: dict[str, Any], **kwargs: Any) -> None:
        one_audience(
            data.get("audience"),
            data.get("segment"),
            field_name="segment",
            recipients='send "audience": "recipients"',
        )

    @post_load
    def _strip(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("campaign_name") is not None:
            data["campaign_name"] = data["campaign_name"].strip() or None
        return data


def idempotency_key(header: str | None) -> str:
    """Validate the Idempotency-Key header (required: it names the send)."""
    if header is None or not header.strip():
        raise ValidationError({"Idempotency-Key": ["the Idempotency-Key header is required"]})
    key = header.strip()
    if len(key) > MAX_PART_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise ValidationError(
            {"Idempotency-Key": [f"must be 1 to {MAX_PART_LENGTH} printable characters"]}
        )
    return key


def to_request(body: Any, key_header: str | None) -> DistributionRequest:
    """Validate the body and header into a DistributionRequest, or raise ValidationError."""
    key = idempotency_key(key_header)
    if not isinstance(body, dict):
        raise ValidationError({"_body": ["the body must be a JSON object"]})
    data = DistributionSchema().load(body)
    start: datetime | None = data["start_time"]
    return DistributionRequest(
        source=SOURCE,
        campaign_ref=data["campaign_ref"],
        send_key=key,
        key_rule="idempotency-key",
        segment=data["segment"] or "",
        redeemable=data["redeemable"],
        start_time=start,
        campaign_name=data["campaign_name"],
        audience=data["audience"],
    )


class RecipientsSchema(Schema):
    """Body of POST /v1/distributions/{id}/recipients: guests to add to the send's audience."""

    class Meta:
        unknown = RAISE

    user_ids = fields.List(
        fields.Raw(),
        load_default=list,
        metadata={"description": "Punchh user ids (whole numbers)"},
    )
    emails = fields.List(
        fields.String(),
        load_default=list,
        metadata={"description": "guests' email addresses"},
    )


_RECIPIENTS = RecipientsSchema()


def to_guests(body: Any) -> list[Guest]:
    """Validate a recipients body into identifiers; errors name the position, never a value."""
    if not isinstance(body, dict):
        raise ValidationError({"_body": ["the body must be a JSON object"]})
    data = _RECIPIENTS.load(body)
    total = len(data["user_ids"]) + len(data["emails"])
    if total == 0:
        raise ValidationError({"user_ids": ["send at least one user id or email"]})
    if total > MAX_RECIPIENTS_PER_CALL:
        raise ValidationError(
            {"user_ids": [f"at most {MAX_RECIPIENTS_PER_CALL} recipients per call, got {total}"]}
        )
    guests: list[Guest] = []
    problems: dict[str, list[str]] = {}
    for name, values in (("user_ids", data["user_ids"]), ("emails", data["emails"])):
        for i, value in enumerate(values):
            uid, mail = (value, None) if name == "user_ids" else (None, value)
            try:
                guests.append(read_guest(uid, mail, user_field=name, email_field=name))
            except ValidationError:
                kind = "a Punchh user id (a whole number)" if uid is not None else "an email"
                problems.setdefault(name, []).append(f"item {i} is not {kind}")
    if problems:
        raise ValidationError(problems)
    return guests
