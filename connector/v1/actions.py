"""`/v1` operator actions: retry, resolve, release, cancel or undo one distribution, end a
Punchh key lockout, check the deployment.

The same operations as the `punchh-connector` CLI (both call ledger.actions); a refusal is one
of wiring/errors.py's types, answered by the app's handler. The actor recorded on the
distribution is the `X-Actor` header, else "api".
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Response, jsonify, request
from marshmallow import Schema, ValidationError

from connector.bodies import field_errors, json_body
from connector.v1.blueprint import bp
from connector.v1.schemas import ActionSchema, CheckSchema, ResolveSchema
from ledger import actions, lockout
from wiring import release_check
from wiring.errors import InvalidBody
from wiring.services import current_services as services


def _actor() -> str:
    """Who acts: the X-Actor header, cleaned, else "api"."""
    return actions.clean_actor(request.headers.get("X-Actor"), "api")


def optional_body(schema: Schema) -> dict[str, Any]:
    """An optional JSON body through a schema (no body means every default)."""
    raw: Any = json_body(request) if request.get_data(cache=True) else {}
    if not isinstance(raw, dict):
        raise InvalidBody("the body must be a JSON object")
    try:
        data: dict[str, Any] = schema.load(raw)
    except ValidationError as exc:
        raise field_errors(exc) from exc
    return data


def act_as_caller(
    action: Callable[..., actions.ActionResult], distribution_id: str, **kw: Any
) -> Response:
    """Run one admin operation as the calling actor (a refusal is answered by its handler)."""
    result = action(distribution_id, actor=_actor(), **kw)
    return jsonify(result.as_dict())


@bp.post("/distributions/<path:distribution_id>/retry")
def retry_distribution(distribution_id: str) -> Response:
    """Retry a failed (or rejected) distribution: attempts reset, a commit job queued."""
    svc = services()
    retry = partial(actions.retry, svc.ledger, svc.queue, svc.lockout)
    return act_as_caller(retry, distribution_id, reason=optional_body(ActionSchema())["reason"])


@bp.post("/distributions/<path:distribution_id>/resolve")
def resolve_distribution(distribution_id: str) -> Response:
    """Resolve an unknown distribution: the Punchh campaign found, or not created (commit)."""
    body = optional_body(ResolveSchema())
    svc = services()
    return act_as_caller(
        partial(actions.resolve, svc.ledger, svc.queue, svc.lockout),
        distribution_id,
        campaign_id=body["campaign_id"],
        not_created=body["not_created"],
        reason=body["reason"],
    )


@bp.post("/distributions/<path:distribution_id>/release")
def release_distribution(distribution_id: str) -> Response:
    """Release a held distribution: a commit job queued."""
    svc = services()
    release = partial(actions.release, svc.ledger, svc.queue, svc.lockout)
    return act_as_caller(release, distribution_id, reason=optional_body(ActionSchema())["reason"])


@bp.post("/distributions/<path:distribution_id>/cancel")
def cancel_distribution(distribution_id: str) -> Response:
    """Cancel a held, queued, failed or unknown distribution: nothing more is posted."""
    cancel = partial(actions.cancel, services().ledger)
    return act_as_caller(cancel, distribution_id, reason=optional_body(ActionSchema())["reason"])


@bp.post("/distributions/<path:distribution_id>/undo")
def undo_distribution(distribution_id: str) -> Response:
    """Undo the last admin action, if the distribution has not moved on since."""
    undo = partial(actions.undo, services().ledger, services().queue)
    return act_as_caller(undo, distribution_id, reason=optional_body(ActionSchema())["reason"])


@bp.post("/punchh/unlock")
def unlock_punchh() -> Response:
    """End the Punchh key lockout now (after fixing PUNCHH_API_KEY); retry does not."""
    reason = actions.clean_text(optional_body(ActionSchema())["reason"], actions.MAX_REASON)
    result = lockout.unlock_punchh(services().lockout, actor=_actor(), reason=reason)
    return jsonify(result.as_dict())


@bp.post("/check")
def check() -> Response:
    """Configuration, Redis, and Punchh reachability and key validity (one list call)."""
    body = optional_body(CheckSchema())
    report = release_check.check(services(), punchh=body["punchh"])
    return jsonify(report.as_dict())
