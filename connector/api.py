"""`/v1`: the generic distribution API and the status and list endpoints, behind API_TOKEN."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from marshmallow import ValidationError

from adapters import generic
from connector.auth import require_api_token
from connector.bodies import field_errors, json_body
from connector.errors import punchh_refusal
from ledger.intake import submit
from punchh.client import Kind
from punchh.errors import PunchhError
from wiring.errors import ApiError, BadGateway, NotFound, Unprocessable
from wiring.services import current_services as services

bp = Blueprint("api", __name__, url_prefix="/v1")



bp.before_request(require_api_token)


@bp.post("/distributions")
def create_distribution() -> tuple[Response, int]:
    """Accept one distribution request; the same Idempotency-Key maps to the same send."""
    body = json_body(request)
    try:
        req = generic.to_request(body, request.headers.get("Idempotency-Key"))
    except ValidationError as exc:
        raise field_errors(exc) from exc
    g.source = req.source
    result = submit(services(), req)
    g.distribution_id = result.distribution_id
    g.outcome = result.outcome
    if result.conflict:
        raise Unprocessable(
            "this Idempotency-Key was already used for a different segment or redeemable "
            f"({result.existing_segment!r} / {result.existing_redeemable!r})",
            code="conflict",
            extra={"distribution_id": result.distribution_id, "state": result.state},
        )
    response = jsonify(
        {
            "distribution_id": result.distribution_id,
            "state": result.state,
            "created": result.outcome == "created",
        }
    )
    response.headers["Location"] = f"/v1/distributions/{result.distribution_id}"
    return response, 202


@bp.get("/distributions/<path:distribution_id>")
def show_distribution(distribution_id: str) -> Response:
    """The distribution record and its events."""
    ledger = services().ledger
    dist = ledger.get(distribution_id)
    if dist is None:
        raise NotFound(f"no distribution {distribution_id!r} (or it expired)")
    body = dist.as_dict()
    body["events"] = ledger.events(distribution_id)
    return jsonify(body)


def punchh_list(kind: Kind) -> Response:
    """A Punchh list through the cache, as {"items": [...]}; Punchh trouble is a 502."""
    query = request.args.get("query", "").strip()[:200]
    try:
        items: list[dict[str, Any]] = services().catalog.search(kind, query)
    except PunchhError as exc:
        raise punchh_refusal(exc, unavailable=_list_failed) from exc
    return jsonify({"items": items, "count": len(items)})


def _list_failed(exc: PunchhError) -> ApiError:
    """Punchh did not give the list (a rejection included): the picker shows why."""
    return BadGateway(f"Punchh list failed: {exc}", code="punchh_unavailable")


@bp.get("/segments")
def list_segments() -> Response:
    """Punchh segments matching ?query= (for pickers)."""
    return punchh_list("segments")


@bp.get("/redeemables")
def list_redeemables() -> Response:
    """Punchh redeemables matching ?query= (for pickers)."""
    return punchh_list("redeemables")
