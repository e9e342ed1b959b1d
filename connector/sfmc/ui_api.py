"""`/sfmc/api/…`: the configuration UI's own calls, authorised by the marketer's token."""

from __future__ import annotations

import logging

from flask import Response, jsonify, request
from marshmallow import ValidationError

from adapters import sfmc_config as adapter
from adapters.types import RECIPIENTS_AUDIENCE
from connector.bodies import field_errors, json_body
from connector.sfmc.blueprint import bp
from connector.sfmc.lifecycle import activities, resolve_or_refuse
from connector.sfmc.marketer import require_marketer
from connector.v1.lookups import punchh_list
from wiring.errors import InvalidFields, Unprocessable
from wiring.services import current_services as services

log = logging.getLogger("connector.sfmc")


def _marketer() -> None:
    """Only a marketer signed in to Marketing Cloud may use the UI's endpoints."""
    svc = services()
    require_marketer(svc.settings, svc.redis, request.headers.get("Authorization"))


@bp.get("/api/segments")
def api_segments() -> Response:
    """Punchh segments matching ?query= for the picker."""
    _marketer()
    return punchh_list("segments")


@bp.get("/api/redeemables")
def api_redeemables() -> Response:
    """Punchh redeemables matching ?query= for the picker."""
    _marketer()
    return punchh_list("redeemables")


@bp.post("/api/activities/<activity_ref>")
def api_store_activity(activity_ref: str) -> Response:
    """The UI's Done: check the offer in Punchh and remember it for `validate`."""
    _marketer()
    body = json_body(request)
    try:
        config = adapter.parse_activity_config(body)
    except ValidationError as exc:
        raise field_errors(exc) from exc
    if len(activity_ref) > 200:
        raise InvalidFields("the activity id is too long")
    segment = None if config.audience == RECIPIENTS_AUDIENCE else config.segment
    ids = resolve_or_refuse(segment, config.redeemable, invalid=Unprocessable)
    store = activities()
    if config.draft:
        interaction = config.interaction_key or config.interaction_id
        assert interaction is not None and config.activity_key is not None  # the adapter checked
        store.store_draft(interaction, config.activity_key, config)
        stored = "draft"
    else:
        store.store_config(activity_ref, config)
        stored = "activity"
    log.info(
        "sfmc activity configured",
        extra={
            "activity_id": activity_ref,
            "stored": stored,
            "segment": config.segment,
            "redeemable": config.redeemable,
        },
    )
    answer: dict[str, object] = {"activity": activity_ref, "stored": stored,
                                 "audience": config.audience}
    answer["redeemable"] = {"name": config.redeemable, "redeemable_uuid": ids["redeemable_uuid"]}
    if segment is not None:
        answer["segment"] = {"name": segment, "segment_id": int(ids["segment_id"])}
    return jsonify(answer)
