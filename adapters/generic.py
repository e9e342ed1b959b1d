"""The connector's own API payload: `POST /v1/distributions` with an Idempotency-Key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from adapters.common import Name, StartTime
from adapters.types import MAX_PART_LENGTH, DistributionRequest

SOURCE = "api"


class DistributionSchema(Schema):
    """Body of POST /v1/distributions; unknown fields are refused so typos surface."""

    class Meta:
        unknown = RAISE

    segment = Name(required=True, metadata={"description": "Punchh segment name"})
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
        segment=data["segment"],
        redeemable=data["redeemable"],
        start_time=start,
        campaign_name=data["campaign_name"],
    )
