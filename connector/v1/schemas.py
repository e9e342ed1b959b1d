"""The bodies `/v1`'s operator actions read, and the answers they give (for the API document)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ledger.actions import MAX_REASON


class ActionSchema(Schema):
    """Body of an admin action (optional): why the operator acts."""

    class Meta:
        unknown = RAISE

    reason = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_REASON),
        metadata={"description": "why; recorded on the distribution's events"},
    )


class ResolveSchema(ActionSchema):
    """Body of POST …/resolve: exactly one of campaign_id or not_created."""

    campaign_id = fields.Integer(
        strict=True,
        load_default=None,
        validate=validate.Range(min=1),
        metadata={"description": "the Punchh campaign an operator found for this send"},
    )
    not_created = fields.Boolean(
        load_default=False,
        metadata={"description": "true when Punchh has no campaign for it: commit it now"},
    )

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("campaign_id") is None) == (not data.get("not_created")):
            raise ValidationError("give exactly one of campaign_id or not_created=true")


class CheckSchema(Schema):
    """Body of POST /v1/check (optional)."""

    class Meta:
        unknown = RAISE

    punchh = fields.Boolean(
        load_default=True,
        metadata={"description": "false skips the Punchh list call"},
    )


class ActionResultSchema(Schema):
    """What an admin action did."""

    distribution_id = fields.String()
    action = fields.String()
    state_before = fields.String()
    state = fields.String()
    actor = fields.String()
    note = fields.String()
    job_id = fields.String(allow_none=True)


class UnlockResultSchema(Schema):
    """What POST /v1/punchh/unlock did."""

    cleared = fields.Boolean(metadata={"description": "false when no lockout stood"})
    by = fields.String()
    reason = fields.String()
    lockout = fields.Dict(
        allow_none=True,
        metadata={"description": "the lockout ended: reason, refused_at, until"},
    )


class CheckItemSchema(Schema):
    """One check's result."""

    name = fields.String()
    ok = fields.Boolean()
    detail = fields.String()


class CheckReportSchema(Schema):
    """Every check's result; ok only when all passed."""

    ok = fields.Boolean()
    checks = fields.List(fields.Nested(CheckItemSchema))
