"""`/v1` for audience sends (docs/audience-mode.md): add recipients, end the send, and the
operator's commit-partial.

A send opened by `POST /v1/distributions` with `"audience": "recipients"` gathers the guests
posted here (at most 1,000 a call, Punchh's own batch) into its custom segment, and is
committed once it has been quiet for AUDIENCE_QUIET_SECONDS, or at once after `end`.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from flask import Response, jsonify, request
from marshmallow import ValidationError

from adapters import generic
from connector.bodies import field_errors, json_body
from connector.v1.actions import act_as_caller, optional_body
from connector.v1.blueprint import bp
from connector.v1.schemas import ActionSchema
from ledger import audience_actions
from wiring.services import current_services as services


@bp.post("/distributions/<path:distribution_id>/recipients")
def add_recipients(distribution_id: str) -> tuple[Response, int]:
    """Add guests (Punchh user ids or emails) to an audience send; answered with counts."""
    body: Any = json_body(request)
    try:
        guests = generic.to_guests(body)
    except ValidationError as exc:
        raise field_errors(exc) from exc
    svc = services()
    added = audience_actions.add_recipients(
        svc.ledger, svc.queue, distribution_id, guests, now=time.time()
    )
    return jsonify(added.as_dict()), 202


@bp.post("/distributions/<path:distribution_id>/end")
def end_send(distribution_id: str) -> Response:
    """The audience send is over: deliver the rest, then commit (no quiet gap to wait out)."""
    svc = services()
    return act_as_caller(
        partial(audience_actions.end_send, svc.ledger, svc.queue),
        distribution_id,
        reason=optional_body(ActionSchema())["reason"],
    )


@bp.post("/distributions/<path:distribution_id>/commit-partial")
def commit_partial(distribution_id: str) -> Response:
    """A failed audience send: gift only the guests Punchh already has."""
    svc = services()
    return act_as_caller(
        partial(audience_actions.commit_partial, svc.ledger, svc.queue),
        distribution_id,
        reason=optional_body(ActionSchema())["reason"],
    )
