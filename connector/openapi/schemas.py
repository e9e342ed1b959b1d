"""The document's schemas: the answers the views give, and the registry of every component.

Request bodies are the schemas the views load with (adapters, admin); answers are described
here, since the views build them as plain dicts. Every schema the document references is
registered under its name in COMPONENTS; the builder refuses one that is not.
"""

from __future__ import annotations

from marshmallow import Schema, fields

from adapters.braze import BrazeWebhookSchema
from adapters.generic import DistributionSchema, RecipientsSchema
from adapters.sfmc import ExecuteSchema
from adapters.sfmc_config import LifecycleSchema
from connector.v1.schemas import (
    ActionResultSchema,
    ActionSchema,
    CheckItemSchema,
    CheckReportSchema,
    CheckSchema,
    ResolveSchema,
    UnlockResultSchema,
)
from ledger.states import State


class ErrorDetailSchema(Schema):
    """The error object every refusal carries."""

    code = fields.String(required=True, metadata={"example": "invalid_fields"})
    message = fields.String(required=True)
    field_messages = fields.Dict(
        data_key="fields", metadata={"description": "per-field messages, when fields are wrong"}
    )


class ErrorSchema(Schema):
    """The one JSON error shape."""

    error = fields.Nested(ErrorDetailSchema, required=True)


class AcceptedSchema(Schema):
    """An intake request accepted (first of a send: created; later ones: counted)."""

    distribution_id = fields.String(metadata={"example": "api:default:spring-send-1"})
    state = fields.String()
    created = fields.Boolean()


class RecipientsAddedSchema(Schema):
    """What one POST of recipients did to an audience send (counts, never identifiers)."""

    distribution_id = fields.String()
    state = fields.String()
    accepted = fields.Integer(metadata={"description": "identifiers stored for Punchh"})
    late = fields.Integer(metadata={"description": "arrived after late_at: counted only"})


class EventSchema(Schema):
    """One state change or admin action on a distribution."""

    at = fields.String()
    to = fields.String()
    by = fields.String()
    note = fields.String()


class DistributionRecordSchema(Schema):
    """A distribution as the ledger keeps it (no guest data)."""

    distribution_id = fields.String()
    state = fields.String(metadata={"enum": [state.value for state in State]})
    source = fields.String()
    campaign_ref = fields.String()
    send_key = fields.String()
    key_rule = fields.String()
    segment = fields.String()
    redeemable = fields.String()
    segment_id = fields.Integer(allow_none=True)
    redeemable_uuid = fields.String(allow_none=True)
    campaign_name = fields.String(allow_none=True)
    start_time_requested = fields.String(allow_none=True)
    start_time = fields.String(allow_none=True)
    recipients = fields.Integer()
    conflicts = fields.Integer()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    campaign_id = fields.Integer(allow_none=True)
    next_attempt_at = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
    committed_at = fields.String(allow_none=True)
    trace = fields.Dict()
    audience = fields.Dict(
        allow_none=True,
        metadata={"description": "audience sends only: the custom segment and its counts"},
    )


class DistributionDetailSchema(DistributionRecordSchema):
    """A distribution with its events."""

    events = fields.List(fields.Nested(EventSchema))


class DistributionListSchema(Schema):
    """A page of distributions, newest first."""

    items = fields.List(fields.Nested(DistributionRecordSchema))
    count = fields.Integer()


class PunchhListSchema(Schema):
    """Punchh segments or redeemables matching a query."""

    items = fields.List(fields.Dict())
    count = fields.Integer()


class HealthSchema(Schema):
    """Liveness."""

    status = fields.String(metadata={"example": "ok"})


class ReadySchema(Schema):
    """Readiness: Redis answers and the queue moves."""

    status = fields.String(metadata={"example": "ok"})
    reason = fields.String(metadata={"description": "why not ready (503 only)"})
    oldest_queued_seconds = fields.Float(allow_none=True)
    workers = fields.Integer()


#: Component name → schema, in registration order: a nested schema before any that holds it.
COMPONENTS: tuple[tuple[str, type[Schema]], ...] = (
    ("ErrorDetail", ErrorDetailSchema),
    ("Error", ErrorSchema),
    ("Accepted", AcceptedSchema),
    ("RecipientsAdded", RecipientsAddedSchema),
    ("Event", EventSchema),
    ("DistributionRecord", DistributionRecordSchema),
    ("DistributionDetail", DistributionDetailSchema),
    ("DistributionList", DistributionListSchema),
    ("PunchhList", PunchhListSchema),
    ("Health", HealthSchema),
    ("Ready", ReadySchema),
    # Request bodies, as the views load them.
    ("Distribution", DistributionSchema),
    ("Recipients", RecipientsSchema),
    ("BrazeWebhook", BrazeWebhookSchema),
    ("Execute", ExecuteSchema),
    ("Lifecycle", LifecycleSchema),
    ("Action", ActionSchema),
    ("Resolve", ResolveSchema),
    ("Check", CheckSchema),
    # Admin answers.
    ("ActionResult", ActionResultSchema),
    ("UnlockResult", UnlockResultSchema),
    ("CheckItem", CheckItemSchema),
    ("CheckReport", CheckReportSchema),
)
