"""`GET /openapi.json`: the connector's own HTTP surface as OpenAPI 3, built from the app.

Every rule of the app's url_map is described (static files aside), so a route added later
appears with a default description at once, and tests/test_openapi.py holds the document to
the real routes. To describe a new endpoint properly, add it to OPERATIONS below: summary,
request schema, responses. Request and response bodies come from the marshmallow schemas
(apispec's marshmallow plugin); the Braze and SFMC schemas are looked up by name when the
document is built, so this module does not depend on those adapters being present.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify
from marshmallow import Schema, fields

from wiring.version import __version__

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.0.3"
#: Methods every route has implicitly; not described.
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
_CONVERTER = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?(?P<name>\w+)>")


# --- documentation-only schemas (what the views answer) ----------------------------------------
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


class EventSchema(Schema):
    """One state change or admin action on a distribution."""

    at = fields.String()
    to = fields.String()
    by = fields.String()
    note = fields.String()


class DistributionRecordSchema(Schema):
    """A distribution as the ledger keeps it (no guest data)."""

    distribution_id = fields.String()
    state = fields.String(
        metadata={
            "enum": [
                "queued", "resolving", "committing", "committed", "rejected", "failed",
                "held", "unknown", "cancelled",
            ]
        }
    )
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


# --- what each endpoint is ---------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """How one endpoint is described; anything left out gets a sensible default."""

    summary: str = ""
    tag: str = ""
    #: Security scheme names (all alternatives); None = the blueprint's default.
    security: tuple[str, ...] | None = None
    #: A schema (class or a callable returning one, for schemas found late), and its type.
    body: type[Schema] | Callable[[], type[Schema] | None] | None = None
    body_type: str = "application/json"
    body_required: bool = True
    #: status → (description, schema or None, content type)
    responses: dict[str, tuple[str, Any, str]] = field(default_factory=dict)
    query: tuple[tuple[str, str, str], ...] = ()  # (name, type, description)
    #: Required request headers: (name, description, max length).
    headers: tuple[tuple[str, str, int], ...] = ()


def _optional(module: str, *names: str) -> Callable[[], type[Schema] | None]:
    """A schema looked up by name when the document is built (None while absent)."""

    def find() -> type[Schema] | None:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return None
        for name in names:
            found = getattr(mod, name, None)
            if isinstance(found, type) and issubclass(found, Schema):
                return found
        return None

    return find


BRAZE_BODY = _optional("adapters.braze", "BrazeWebhookSchema")
SFMC_EXECUTE_BODY = _optional(
    "adapters.sfmc",
    "ExecuteSchema",
    "SfmcExecuteSchema",
    "ExecuteBodySchema",
    "ExecuteRequestSchema",
)
SFMC_LIFECYCLE_BODY = _optional(
    "adapters.sfmc", "LifecycleSchema", "SfmcLifecycleSchema", "LifecycleBodySchema"
)

#: Journey Builder's lifecycle calls (save, publish, stop, validate) share one body shape.
SFMC_LIFECYCLE_NAMES = ("save", "publish", "stop", "validate")


def _admin(name: str) -> Callable[[], type[Schema] | None]:
    return _optional("connector.v1.schemas", name)


JSON = "application/json"
ACTION_RESPONSES: dict[str, tuple[str, Any, str]] = {
    "200": ("what the action did", _admin("ActionResultSchema"), JSON),
    "404": ("no such distribution", ErrorSchema, JSON),
    "409": ("wrong state for this action, or Punchh access locked out", ErrorSchema, JSON),
}

#: Endpoint name → description. Endpoints missing here are still documented, with defaults.
OPERATIONS: dict[str, Op] = {
    "v1.create_distribution": Op(
        "Request one distribution (the Idempotency-Key header names the send)",
        tag="distributions",
        body=_optional("adapters.generic", "DistributionSchema"),
        headers=(("Idempotency-Key", "names the send: the same key is the same send", 200),),
        responses={
            "202": ("accepted: created, or counted on the existing send", AcceptedSchema, JSON),
            "422": ("the key was used for a different segment or redeemable", ErrorSchema, JSON),
        },
    ),
    "braze.braze_webhook": Op(
        "Braze webhook: one request per recipient, one Punchh campaign per send",
        tag="webhooks",
        body=BRAZE_BODY,
        responses={
            "202": ("accepted: created, or counted on the existing send", AcceptedSchema, JSON),
            "200": ("a test send: validation report, nothing committed", None, JSON),
            "409": ("this send already gifts another segment or redeemable", ErrorSchema, JSON),
        },
    ),
    "sfmc.execute": Op(
        "Journey Builder execute: once per contact (body: a JWT whose claims are this shape)",
        tag="sfmc",
        body=SFMC_EXECUTE_BODY,
    ),
    "v1.show_distribution": Op(
        "One distribution and its events",
        tag="distributions",
        responses={"200": ("the distribution", DistributionDetailSchema, JSON),
                   "404": ("no such distribution (or it expired)", ErrorSchema, JSON)},
    ),
    "v1.list_segments": Op(
        "Punchh segments matching a query (cached)",
        tag="punchh",
        query=(("query", "string", "search text"),),
        responses={"200": ("matching segments", PunchhListSchema, JSON),
                   "502": ("Punchh failed or refused the key", ErrorSchema, JSON),
                   "503": ("Punchh refused the key recently: not asked", ErrorSchema, JSON)},
    ),
    "v1.list_redeemables": Op(
        "Punchh redeemables matching a query (cached)",
        tag="punchh",
        query=(("query", "string", "search text"),),
        responses={"200": ("matching redeemables", PunchhListSchema, JSON),
                   "502": ("Punchh failed or refused the key", ErrorSchema, JSON),
                   "503": ("Punchh refused the key recently: not asked", ErrorSchema, JSON)},
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
        responses={"200": ("distributions", DistributionListSchema, JSON)},
    ),
    "v1.retry_distribution": Op(
        "Retry a failed (or rejected) distribution",
        tag="admin", body=_admin("ActionSchema"), body_required=False,
        responses=ACTION_RESPONSES,
    ),
    "v1.resolve_distribution": Op(
        "Resolve an unknown distribution after checking Punchh",
        tag="admin", body=_admin("ResolveSchema"), responses=ACTION_RESPONSES,
    ),
    "v1.release_distribution": Op(
        "Release a held distribution (commit it)",
        tag="admin", body=_admin("ActionSchema"), body_required=False,
        responses=ACTION_RESPONSES,
    ),
    "v1.cancel_distribution": Op(
        "Cancel a held, queued, failed or unknown distribution",
        tag="admin", body=_admin("ActionSchema"), body_required=False,
        responses=ACTION_RESPONSES,
    ),
    "v1.undo_distribution": Op(
        "Undo the last admin action while nothing has moved since",
        tag="admin", body=_admin("ActionSchema"), body_required=False,
        responses=ACTION_RESPONSES,
    ),
    "v1.unlock_punchh": Op(
        "End the Punchh key lockout now (retrying a distribution does not)",
        tag="admin", body=_admin("ActionSchema"), body_required=False,
        responses={"200": ("what was cleared", _admin("UnlockResultSchema"), JSON)},
    ),
    "v1.check": Op(
        "Check configuration, Redis, and Punchh reachability and key validity",
        tag="admin", body=_admin("CheckSchema"), body_required=False,
        responses={"200": ("every check's result", _admin("CheckReportSchema"), JSON)},
    ),
    "ops.healthz": Op(
        "Liveness: the process answers", tag="operations",
        responses={"200": ("alive", HealthSchema, JSON)},
    ),
    "ops.readyz": Op(
        "Readiness: Redis reachable and the queue not stuck", tag="operations",
        responses={"200": ("ready", ReadySchema, JSON),
                   "503": ("not ready, with the reason", ReadySchema, JSON)},
    ),
    "metrics.metrics": Op(
        "Prometheus metrics (text format), derived from Redis", tag="operations",
        responses={"200": ("metrics", None, "text/plain; version=0.0.4")},
    ),
    "status.status_page": Op(
        "Status page: recent sends (HTML, read-only)", tag="operations",
        query=(("state", "string", "show only these states"),
               ("source", "string", "show only this source"),
               ("limit", "integer", "rows (default 100, at most 500)")),
        responses={"200": ("the page", None, "text/html")},
    ),
    "home.home": Op(
        "Home page: what this service is, with links to the others (HTML)", tag="operations",
        security=(), responses={"200": ("the page", None, "text/html")},
    ),
    "home.docs": Op(
        "API documentation: this document rendered by the vendored Redoc (HTML)",
        tag="operations", security=(), responses={"200": ("the page", None, "text/html")},
    ),
    "sfmc_simulator.page": Op(
        "Local stack only: a simulated Journey Builder around the activity UI (HTML)",
        tag="sfmc", security=(),
        responses={"200": ("the page", None, "text/html"),
                   "404": ("not a local stack", ErrorSchema, JSON)},
    ),
    "sfmc_simulator.bodies": Op(
        "Local stack only: execute bodies for N contacts, signed as Journey Builder signs",
        tag="sfmc", security=(),
        responses={"200": ("the run id and the signed bodies", None, JSON),
                   "404": ("not a local stack", ErrorSchema, JSON)},
    ),
    "sfmc_simulator.distribution": Op(
        "Local stack only: the send a simulated run made", tag="sfmc", security=(),
        responses={"200": ("state, recipients, Punchh campaign", None, JSON),
                   "404": ("not a local stack, or no such send", ErrorSchema, JSON)},
    ),
    "sfmc.ui": Op(
        "The activity's configuration page Journey Builder frames (HTML, public)", tag="sfmc",
        security=(), responses={"200": ("the page", None, "text/html")},
    ),
    "status.send_page": Op(
        "One send's page: state timeline, recipients over time, Punchh campaign, next step "
        "(HTML, read-only)", tag="operations",
        responses={"200": ("the page", None, "text/html"),
                   "404": ("no such send (or it expired)", None, "text/html")},
    ),
    "openapi.openapi_document": Op(
        "This document", tag="operations",
        responses={"200": ("OpenAPI 3 document", None, JSON)},
    ),
}

#: Security by blueprint when an Op does not say (alternatives: any one suffices).
BLUEPRINT_SECURITY: dict[str, tuple[str, ...]] = {
    "v1": ("apiToken",),
    "braze": ("brazeToken",),
    "sfmc": ("sfmcJwt",),
    "metrics": ("apiToken", "apiTokenBasic"),
    "status": ("apiToken", "apiTokenBasic"),
    "ops": (),
    "openapi": (),
}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "apiToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "API_TOKEN (any of its comma-separated values)",
    },
    "apiTokenBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "HTTP Basic with any user name and API_TOKEN as the password (browsers)",
    },
    "brazeToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "BRAZE_WEBHOOK_TOKEN, set as a header in the Braze webhook template",
    },
    "sfmcJwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "Journey Builder sends the body as a compact HS256 JWT (Content-Type "
            "application/jwt) signed with SFMC_JWT_SECRET"
        ),
    },
}


def openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """werkzeug `<path:x>` → OpenAPI `{x}`, with the path parameters it names."""
    params: list[dict[str, Any]] = []

    def replace(match: re.Match[str]) -> str:
        conv = match.group("conv") or "string"
        kind = {"int": "integer", "float": "number"}.get(conv, "string")
        param: dict[str, Any] = {
            "name": match.group("name"),
            "in": "path",
            "required": True,
            "schema": {"type": kind},
        }
        if conv == "path":
            param["description"] = "may contain slashes"
        params.append(param)
        return "{" + match.group("name") + "}"

    return _CONVERTER.sub(replace, rule), params


def _resolve_schema(value: Any) -> type[Schema] | None:
    if value is None or (isinstance(value, type) and issubclass(value, Schema)):
        return value
    found = value()
    return found if isinstance(found, type) and issubclass(found, Schema) else None


def _default_op(endpoint: str, method: str) -> Op:
    """Description of an endpoint nobody listed: its docstring and the blueprint's body."""
    blueprint, _, name = endpoint.partition(".")
    body: Any = None
    if method == "POST" and blueprint == "braze":
        body = BRAZE_BODY
    elif method == "POST" and blueprint == "sfmc" and "execute" in name:
        body = SFMC_EXECUTE_BODY
    elif method == "POST" and blueprint == "sfmc" and name.startswith(SFMC_LIFECYCLE_NAMES):
        body = SFMC_LIFECYCLE_BODY
    return Op(tag=blueprint or "other", body=body)


def _operation(app: Flask, endpoint: str, method: str) -> dict[str, Any]:
    op = OPERATIONS.get(endpoint) or _default_op(endpoint, method)
    view = app.view_functions.get(endpoint)
    doc = (view.__doc__ or "").strip().splitlines() if view is not None else []
    summary = op.summary or (doc[0] if doc else endpoint)
    blueprint = endpoint.partition(".")[0] if "." in endpoint else ""
    security = op.security if op.security is not None else BLUEPRINT_SECURITY.get(blueprint, ())
    operation: dict[str, Any] = {
        "operationId": f"{endpoint.replace('.', '_')}_{method.lower()}",
        "summary": summary,
        "tags": [op.tag or blueprint or "other"],
        "security": [{name: []} for name in security],
        "responses": {},
    }
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "query", "required": False, "schema": {"type": kind},
         "description": text}
        for name, kind, text in op.query
    ]
    parameters += [
        {"name": name, "in": "header", "required": True, "description": text,
         "schema": {"type": "string", "minLength": 1, "maxLength": longest}}
        for name, text, longest in op.headers
    ]
    if parameters:
        operation["parameters"] = parameters
    if method in {"POST", "PUT", "PATCH"}:
        schema = _resolve_schema(op.body)
        content_schema: Any = schema if schema is not None else {"type": "object"}
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {op.body_type: {"schema": content_schema}},
        }
    responses = dict(op.responses) or {"200": ("success", None, JSON)}
    for status, (description, schema_ref, content_type) in responses.items():
        operation["responses"][status] = _response(description, schema_ref, content_type)
    error_statuses = ["400", "415"] if method in {"POST", "PUT", "PATCH"} else []
    if security:
        error_statuses.append("401")
    error_statuses.append("500")
    for status in error_statuses:
        operation["responses"].setdefault(
            status, _response(_ERROR_TEXT.get(status, "error"), ErrorSchema, JSON)
        )
    return operation


_ERROR_TEXT = {
    "400": "the body or a parameter is invalid",
    "401": "missing or invalid credentials",
    "415": "the body is not JSON",
    "500": "the connector failed unexpectedly",
}


def _response(description: str, schema_ref: Any, content_type: str) -> dict[str, Any]:
    schema = _resolve_schema(schema_ref)
    content: dict[str, Any] = {}
    if schema is not None:
        content = {content_type: {"schema": schema}}
    elif content_type:
        content = {content_type: {"schema": {"type": "string" if "json" not in content_type
                                             else "object"}}}
    return {"description": description, "content": content} if content else {
        "description": description
    }


def routes(app: Flask) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every described route of the app."""
    found: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        path, _ = openapi_path(rule.rule)
        for method in (rule.methods or set()) - IMPLICIT_METHODS:
            found.add((path, method.lower()))
    return found


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3 document for every route of `app`."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="punchh-connector",
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={
            "description": (
                "Turns Braze and SFMC campaign sends (one webhook per recipient) and generic "
                "API requests into exactly one Punchh mass-offer campaign per send."
            )
        },
    )
    try:
        from adapters.common import StartTime

        plugin.map_to_openapi_type(StartTime, "string", "date-time")  # type: ignore[no-untyped-call]
    except ImportError:  # pragma: no cover - the adapters ship with the connector
        pass
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("Error", schema=ErrorSchema)

    paths: dict[str, dict[str, Any]] = {}
    path_params: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        path, params = openapi_path(rule.rule)
        path_params[path] = params
        for method in sorted((rule.methods or set()) - IMPLICIT_METHODS):
            operation = _operation(app, rule.endpoint, method)
            base, n = operation["operationId"], 2
            while operation["operationId"] in seen:  # one view on several rules
                operation["operationId"] = f"{base}_{n}"
                n += 1
            seen.add(operation["operationId"])
            paths.setdefault(path, {})[method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations, parameters=path_params[path] or None)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The connector's HTTP surface as OpenAPI 3 (no auth: it holds no secrets)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    cache = app.extensions.setdefault("punchh_connector_openapi", {})
    if "document" not in cache:
        cache["document"] = build_document(app)
    return jsonify(cache["document"])
