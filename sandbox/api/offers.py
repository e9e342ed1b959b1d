"""Headless Offers Management - Distribution: Get Segment List, Get Redeemable List and Commit
Redeemable Distribution."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from sandbox.campaigns import commit_reply
from sandbox.errors import FEATURE_DISABLED, ApiError
from sandbox.listing import list_params, page_of, search
from sandbox.serving import params, reply, serve
from sandbox.state import SandboxState

offers = Blueprint("offers", __name__, url_prefix="/api2/dashboard")


@offers.get("/segments")
def segments() -> Response:
    """Get Segment List: a bare array, searched on name."""

    def action(state: SandboxState) -> Response:
        query, page, per_page = list_params(params(), None, state.max_per_page)
        found = search(state.listed_segments(), query, "name")
        return reply([s.public() for s in page_of(found, page, per_page)])

    return serve("segments", action)


@offers.get("/redeemables")
def redeemables() -> Response:
    """Get Redeemable List: a bare array, searched on name and description."""

    def action(state: SandboxState) -> Response:
        if not state.seed.external_distribution_enabled:
            raise ApiError(422, FEATURE_DISABLED)
        query, page, per_page = list_params(params(), None, state.max_per_page)
        # Every redeemable is listed whatever its state: the commit is where state matters.
        found = search(state.seed.redeemables, query, "name", "description")
        return reply([r.public() for r in page_of(found, page, per_page)])

    return serve("redeemables", action)


@offers.post("/campaigns")
def campaigns() -> Response:
    """Commit Redeemable Distribution: validate, create a campaign, no idempotency at all."""

    def action(state: SandboxState) -> Response:
        body: Any = {}
        if request.get_data().strip():
            body = request.get_json(force=True, silent=True)
            if body is None:
                # Rails answers an unparseable JSON body with a 400 before any check.
                return reply({"error": "Invalid JSON body"}, 400)
        if not isinstance(body, dict):
            body = {}  # a JSON array or scalar has none of the fields
        campaign, valid = state.commit(body)
        return reply(commit_reply(campaign.campaign_id, valid, body, state.seed))

    return serve("campaigns", action)
