"""`/v1` admin API: list distributions, act on one (retry, resolve, release, cancel, undo),
end a Punchh key lockout, check.

The same operations as the `punchh-connector` CLI (both call ledger.actions), behind the
API token. The actor recorded on the distribution is the `X-Actor` header, else "api".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from connector.auth import require_api_token
from connector.bodies import field_errors, json_body
from ledger import actions as admin_ops
from wiring.errors import InvalidBody, InvalidQuery
from wiring.services import current_services as services

bp = Blueprint("admin", __name__, url_prefix="/v1")

#: Largest page of GET /v1/distributions.
MAX_LIST_LIMIT = 1000
DEFAULT_LIST_LIMIT = 100


class ActionSchema(Schema):
    """Body of an admin action (optional): why the operator acts."""

    class Meta:
        unknown = RAISE

    reason = fields.String(
        load_default="",
        validate=validate.Length(max=admin_ops.MAX_REASON),
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



bp.before_request(require_api_token)


def _actor() -> str:
    return admin_ops.clean_actor(request.headers.get("X-Actor"), "api")


def _body(schema: Schema) -> dict[str, Any]:
    """An optional JSON body through a schema (no body means every default)."""
    raw: Any = json_body(request) if request.get_data(cache=True) else {}
    if not isinstance(raw, dict):
        raise InvalidBody("the body must be a JSON object")
    try:
        data: dict[str, Any] = schema.load(raw)
    except ValidationError as exc:
        raise field_errors(exc) from exc
    return data


def parse_time(name: str, value: str | None) -> float | None:
    """A time filter from the query string, or a 400."""
    try:
        return admin_ops.parse_time(value)
    except ValueError as exc:
        raise InvalidQuery(f"{name}: {exc}") from exc


@bp.get("/distributions")
def list_distributions() -> Response:
    """Recent distributions, newest first; filter by state, source and creation time."""
    args = request.args
    states = [s.strip() for value in args.getlist("state") for s in value.split(",")]
    raw_limit = args.get("limit", str(DEFAULT_LIST_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST_LIMIT:
        raise InvalidQuery(f"limit must be 1 to {MAX_LIST_LIMIT}")
    found = admin_ops.list_distributions(
        services(),
        states=states,
        source=args.get("source") or None,
        since=parse_time("since", args.get("since")),
        until=parse_time("until", args.get("until")),
        limit=int(raw_limit),
    )
    items = [dist.as_dict() for dist in found]
    return jsonify({"items": items, "count": len(items)})


def _act(
    action: Callable[..., admin_ops.ActionResult], distribution_id: str, **kw: Any
) -> Response:
    """Run one admin operation as the calling actor (a refusal is answered by its handler)."""
    result = action(services(), distribution_id, actor=_actor(), **kw)
    return jsonify(result.as_dict())


@bp.post("/distributions/<path:distribution_id>/retry")
def retry_distribution(distribution_id: str) -> Response:
    """Retry a failed (or rejected) distribution: attempts reset, a commit job queued."""
    return _act(admin_ops.retry, distribution_id, reason=_body(ActionSchema())["reason"])


@bp.post("/distributions/<path:distribution_id>/resolve")
def resolve_distribution(distribution_id: str) -> Response:
    """Resolve an unknown distribution: the Punchh campaign found, or not created (commit)."""
    body = _body(ResolveSchema())
    return _act(
        admin_ops.resolve,
        distribution_id,
        campaign_id=body["campaign_id"],
        not_created=body["not_created"],
        reason=body["reason"],
    )


@bp.post("/distributions/<path:distribution_id>/release")
def release_distribution(distribution_id: str) -> Response:
    """Release a held distribution: a commit job queued."""
    return _act(admin_ops.release, distribution_id, reason=_body(ActionSchema())["reason"])


@bp.post("/distributions/<path:distribution_id>/cancel")
def cancel_distribution(distribution_id: str) -> Response:
    """Cancel a held, queued, failed or unknown distribution: nothing more is posted."""
    return _act(admin_ops.cancel, distribution_id, reason=_body(ActionSchema())["reason"])


@bp.post("/distributions/<path:distribution_id>/undo")
def undo_distribution(distribution_id: str) -> Response:
    """Undo the last admin action, if the distribution has not moved on since."""
    return _act(admin_ops.undo, distribution_id, reason=_body(ActionSchema())["reason"])


@bp.post("/punchh/unlock")
def unlock_punchh() -> Response:
    """End the Punchh key lockout now (after fixing PUNCHH_API_KEY); retry does not."""
    reason = admin_ops.clean_text(_body(ActionSchema())["reason"], admin_ops.MAX_REASON)
    result = admin_ops.unlock_punchh(services(), actor=_actor(), reason=reason)
    return jsonify(result.as_dict())


@bp.post("/check")
def check() -> Response:
    """Configuration, Redis, and Punchh reachability and key validity (one list call)."""
    body = _body(CheckSchema())
    report = admin_ops.check(services(), punchh=body["punchh"])
    return jsonify(report.as_dict())
