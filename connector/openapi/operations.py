"""What each endpoint is: summary, body, answers, parameters (data, read by the builder).

An endpoint missing here is still documented, from its view's docstring and its blueprint's
security; list it here to give it a body schema, answers or parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from marshmallow import Schema

from adapters.braze import BrazeWebhookSchema
from adapters.generic import DistributionSchema, RecipientsSchema
from adapters.sfmc import ExecuteSchema
from adapters.sfmc_config import LifecycleSchema
from connector.openapi.schemas import (
    AcceptedSchema,
    DistributionDetailSchema,
    DistributionListSchema,
    ErrorSchema,
    HealthSchema,
    PunchhListSchema,
    ReadySchema,
    RecipientsAddedSchema,
)
from connector.v1.schemas import (
    ActionResultSchema,
    ActionSchema,
    CheckReportSchema,
    CheckSchema,
    ResolveSchema,
    UnlockResultSchema,
)

JSON = "application/json"
HTML = "text/html"


class Reply(NamedTuple):
    """One documented answer: what it means, its body's schema (None: untyped), its type."""

    description: str
    schema: type[Schema] | None = None
    content_type: str = JSON


class Header(NamedTuple):
    """A required request header."""

    name: str
    description: str
    max_length: int
    example: str | None = None


@dataclass(frozen=True)
class Op:
    """How one endpoint is described; anything left out gets a sensible default."""

    summary: str = ""
    tag: str = ""
    #: Security scheme names (all alternatives); None = the blueprint's default.
    security: tuple[str, ...] | None = None
    body: type[Schema] | None = None
    body_type: str = JSON
    body_required: bool = True
    #: A body the endpoint accepts, shown to readers and sent by the schemathesis test.
    body_example: dict[str, Any] | None = None
    #: status → answer; none listed means one untyped 200.
    responses: dict[str, Reply] = field(default_factory=dict)
    query: tuple[tuple[str, str, str], ...] = ()  # (name, type, description)
    headers: tuple[Header, ...] = ()


ACCEPTED = Reply("accepted: created, or counted on the existing send", AcceptedSchema)
ACTION_RESPONSES = {
    "200": Reply("what the action did", ActionResultSchema),
    "404": Reply("no such distribution", ErrorSchema),
    "409": Reply("wrong state for this action, or Punchh access locked out", ErrorSchema),
}
PUNCHH_LIST_RESPONSES = {
    "502": Reply("Punchh failed or refused the key", ErrorSchema),
    "503": Reply("Punchh refused the key recently: not asked", ErrorSchema),
}
PAGE = {"200": Reply("the page", None, HTML)}
NOT_LOCAL = Reply("not a local stack", ErrorSchema)


def _lifecycle() -> Op:
    """Journey Builder's lifecycle calls (save, publish, stop, validate) share one body."""
    return Op(tag="sfmc", body=LifecycleSchema)


#: Endpoint name → description.
OPERATIONS: dict[str, Op] = {
    "v1.create_distribution": Op(
        "Request one distribution (the Idempotency-Key header names the send)",
        tag="distributions",
        body=DistributionSchema,
        body_example={
            "segment": "Lapsed 90 days",
            "redeemable": "Free Coffee",
            "campaign_name": "Spring win-back",
        },
        headers=(
            Header(
                "Idempotency-Key",
                "names the send: the same key is the same send",
                200,
                "spring-send-1",
            ),
        ),
        responses={
            "202": ACCEPTED,
            "422": Reply("the key was used for a different segment or redeemable", ErrorSchema),
        },
    ),
    "braze.braze_webhook": Op(
        "Braze webhook: one request per recipient, one Punchh campaign per send",
        tag="webhooks",
        body=BrazeWebhookSchema,
        responses={
            "202": ACCEPTED,
            "200": Reply("a test send: validation report, nothing committed"),
            "409": Reply("this send already gifts another segment or redeemable", ErrorSchema),
        },
    ),
    "sfmc.execute": Op(
        "Journey Builder execute: once per contact (body: a JWT whose claims are this shape)",
        tag="sfmc",
        body=ExecuteSchema,
    ),
    "sfmc.save": _lifecycle(),
    "sfmc.publish": _lifecycle(),
    "sfmc.stop": _lifecycle(),
    "sfmc.validate_activity": _lifecycle(),
    "v1.show_distribution": Op(
        "One distribution and its events",
        tag="distributions",
        responses={"200": Reply("the distribution", DistributionDetailSchema),
                   "404": Reply("no such distribution (or it expired)", ErrorSchema)},
    ),
    "v1.list_segments": Op(
        "Punchh segments matching a query (cached)",
        tag="punchh",
        query=(("query", "string", "search text"),),
        responses={"200": Reply("matching segments", PunchhListSchema), **PUNCHH_LIST_RESPONSES},
    ),
    "v1.list_redeemables": Op(
        "Punchh redeemables matching a query (cached)",
        tag="punchh",
        query=(("query", "string", "search text"),),
        responses={"200": Reply("matching redeemables", PunchhListSchema),
                   **PUNCHH_LIST_RESPONSES},
    ),
    "v1.list_distributions": Op(
        "List distributions, newest first",
        tag="admin",
        query=(
            ("state", "string", "comma-separated states (repeatable)"),
            ("source", "string", "braze, sfmc or api"),
            ("since", "string", "created at or after: ISO 8601 or epoch seconds"),
            ("until", "string", "created at or before: ISO 8601 or epoch seconds"),
            ("limit", "integer", "1 to 1000 (default 100)"),
        ),
        responses={"200": Reply("distributions", DistributionListSchema)},
    ),
    "v1.retry_distribution": Op(
        "Retry a failed (or rejected) distribution",
        tag="admin", body=ActionSchema, body_required=False, responses=ACTION_RESPONSES,
    ),
    "v1.resolve_distribution": Op(
        "Resolve an unknown distribution after checking Punchh",
        tag="admin", body=ResolveSchema, responses=ACTION_RESPONSES,
    ),
    "v1.release_distribution": Op(
        "Release a held distribution (commit it)",
        tag="admin", body=ActionSchema, body_required=False, responses=ACTION_RESPONSES,
    ),
    "v1.cancel_distribution": Op(
        "Cancel a held, queued, failed or unknown distribution",
        tag="admin", body=ActionSchema, body_required=False, responses=ACTION_RESPONSES,
    ),
    "v1.undo_distribution": Op(
        "Undo the last admin action while nothing has moved since",
        tag="admin", body=ActionSchema, body_required=False, responses=ACTION_RESPONSES,
    ),
    "v1.add_recipients": Op(
        "Add guests to an audience send's custom segment (at most 1,000 a call)",
        tag="distributions", body=RecipientsSchema,
        responses={
            "202": Reply("counted; stored until Punchh has them", RecipientsAddedSchema),
            "404": Reply("no such distribution", ErrorSchema),
            "409": Reply("not an audience send, or cancelled or rejected", ErrorSchema),
        },
    ),
    "v1.end_send": Op(
        "End an audience send now: deliver the rest and commit",
        tag="distributions", body=ActionSchema, body_required=False,
        responses=ACTION_RESPONSES,
    ),
    "v1.commit_partial": Op(
        "Commit a failed audience send to the guests already added",
        tag="admin", body=ActionSchema, body_required=False, responses=ACTION_RESPONSES,
    ),
    "v1.unlock_punchh": Op(
        "End the Punchh key lockout now (retrying a distribution does not)",
        tag="admin", body=ActionSchema, body_required=False,
        responses={"200": Reply("what was cleared", UnlockResultSchema)},
    ),
    "v1.check": Op(
        "Check configuration, Redis, and Punchh reachability and key validity",
        tag="admin", body=CheckSchema, body_required=False,
        responses={"200": Reply("every check's result", CheckReportSchema)},
    ),
    "ops.healthz": Op(
        "Liveness: the process answers", tag="operations",
        responses={"200": Reply("alive", HealthSchema)},
    ),
    "ops.readyz": Op(
        "Readiness: Redis reachable and the queue not stuck", tag="operations",
        responses={"200": Reply("ready", ReadySchema),
                   "503": Reply("not ready, with the reason", ReadySchema)},
    ),
    "metrics.metrics": Op(
        "Prometheus metrics (text format), derived from Redis", tag="operations",
        responses={"200": Reply("metrics", None, "text/plain; version=0.0.4")},
    ),
    "status.status_page": Op(
        "Status page: recent sends (HTML, read-only)", tag="operations",
        query=(("state", "string", "show only these states"),
               ("source", "string", "show only this source"),
               ("limit", "integer", "rows (default 100, at most 500)")),
        responses=PAGE,
    ),
    "status.send_page": Op(
        "One send's page: state timeline, recipients over time, Punchh campaign, next step "
        "(HTML, read-only)", tag="operations",
        responses={**PAGE, "404": Reply("no such send (or it expired)", None, HTML)},
    ),
    "home.home": Op(
        "Home page: what this service is, with links to the others (HTML)", tag="operations",
        security=(), responses=PAGE,
    ),
    "home.docs": Op(
        "API documentation: this document rendered by the vendored Redoc (HTML)",
        tag="operations", security=(), responses=PAGE,
    ),
    "sfmc_simulator.page": Op(
        "Local stack only: a simulated Journey Builder around the activity UI (HTML)",
        tag="sfmc", security=(), responses={**PAGE, "404": NOT_LOCAL},
    ),
    "sfmc_simulator.bodies": Op(
        "Local stack only: execute bodies for N contacts, signed as Journey Builder signs",
        tag="sfmc", security=(),
        responses={"200": Reply("the run id and the signed bodies"), "404": NOT_LOCAL},
    ),
    "sfmc_simulator.distribution": Op(
        "Local stack only: the send a simulated run made", tag="sfmc", security=(),
        responses={"200": Reply("state, recipients, Punchh campaign"),
                   "404": Reply("not a local stack, or no such send", ErrorSchema)},
    ),
    "sfmc.ui": Op(
        "The activity's configuration page Journey Builder frames (HTML, public)", tag="sfmc",
        security=(), responses=PAGE,
    ),
    "openapi.openapi_document": Op(
        "This document", tag="operations",
        responses={"200": Reply("OpenAPI 3 document")},
    ),
}
