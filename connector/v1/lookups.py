"""`/v1/segments` and `/v1/redeemables`: Punchh's lists by name, through the cache, for pickers."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from connector.errors import punchh_refusal
from connector.v1.blueprint import bp
from punchh.client import Kind
from punchh.errors import PunchhError
from wiring.errors import ApiError, BadGateway
from wiring.services import current_services as services


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
