"""Journey Builder's lifecycle calls: `POST /sfmc/{save,publish,stop,validate}` (JWT bodies).

Each is noted on the activity's record (activity.py); `validate` refuses activation unless the
configured segment and redeemable resolve in Punchh.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify, request
from marshmallow import ValidationError

from adapters import sfmc_config as adapter
from adapters.sfmc_config import binding_problem
from adapters.types import RECIPIENTS_AUDIENCE, SEGMENT_AUDIENCE
from connector.bodies import field_errors
from connector.errors import punchh_refusal
from connector.sfmc.activity import ActivityStore
from connector.sfmc.blueprint import bp
from connector.sfmc.jwt_body import decode_body
from punchh.errors import PunchhError
from wiring.errors import ApiError, BadRequest, PunchhUnavailable
from wiring.services import current_services as services

log = logging.getLogger("connector.sfmc")


def activities() -> ActivityStore:
    """Activity records in the app's Redis."""
    svc = services()
    return ActivityStore(svc.redis, svc.settings.key_prefix)


def signed_body() -> dict[str, Any]:
    """The verified, decoded body of a Journey Builder call (401 otherwise)."""
    settings = services().settings
    return decode_body(
        request.get_data(cache=False),
        request.mimetype or "",
        settings.sfmc_jwt_secrets,
        allow_plain_json=settings.sfmc_allow_plain_json,
    )


def lifecycle_call(event: str) -> tuple[adapter.Lifecycle, dict[str, str]]:
    """Verify, parse and record one lifecycle call; returns it and the activity's record."""
    claims = signed_body()
    try:
        life = adapter.parse_lifecycle(claims)
    except ValidationError as exc:
        raise field_errors(exc) from exc
    record = activities().record_event(event, life)
    log.info(
        "sfmc lifecycle",
        extra={
            "event": event,
            "activity_id": life.activity_object_id,
            "interaction_id": life.interaction_id,
            "interaction_version": life.interaction_version,
        },
    )
    return life, record


@bp.post("/save")
def save() -> Response:
    """Journey saved: note it (and adopt a draft offer)."""
    lifecycle_call("save")
    return jsonify({})


@bp.post("/publish")
def publish() -> Response:
    """Journey activated: note it."""
    lifecycle_call("publish")
    return jsonify({})


@bp.post("/stop")
def stop() -> Response:
    """Journey version stopped: the activity's record says so (see docs/sfmc.md)."""
    lifecycle_call("stop")
    return jsonify({})


@bp.post("/validate")
def validate_activity() -> Response:
    """Refuse activation unless the configured segment and redeemable resolve in Punchh."""
    life, record = lifecycle_call("validate")
    segment, redeemable = record.get("segment"), record.get("redeemable")
    audience = record.get("audience") or SEGMENT_AUDIENCE
    binding = record.get("guest_binding")
    if life.redeemable and (life.segment or life.audience == RECIPIENTS_AUDIENCE):
        segment, redeemable, audience = life.segment, life.redeemable, life.audience
        binding = life.guest_binding
    recipients = audience == RECIPIENTS_AUDIENCE
    try:
        if recipients and binding_problem(binding):
            raise BadRequest(f"Punchh Offer: {binding_problem(binding)}", code="not_configured")
        if not ((segment or recipients) and redeemable):
            drafts = activities().drafts_count(life)
            hint = (
                f"{drafts} Punchh Offer activities in this journey were set up before it was "
                "first saved: open each one and click Done again"
                if drafts > 1
                else "open the Punchh Offer activity, pick a segment and a redeemable, "
                "and click Done"
            )
            raise BadRequest(f"no Punchh offer is configured yet: {hint}", code="not_configured")
        ids = resolve_or_refuse(None if recipients else segment, redeemable, invalid=BadRequest)
    except ApiError as exc:
        if life.activity_object_id:
            # Kept on the record so an operator can see why activation was refused.
            activities().update(
                life.activity_object_id,
                {"validated": "refused", "validation_error": exc.message[:500]},
            )
        log.info(
            "sfmc validate refused",
            extra={"activity_id": life.activity_object_id, "code": exc.code},
        )
        raise
    if life.activity_object_id:
        activities().update(
            life.activity_object_id,
            {"validated": "ok", "validation_error": "", **ids},
        )
    return jsonify({})


def resolve_or_refuse(
    segment: str | None, redeemable: str, *, invalid: type[ApiError]
) -> dict[str, str]:
    """The Punchh ids of the offer (no segment: the journey's contacts are gifted), or an
    ApiError the marketer can act on (`invalid`: the offer is wrong)."""
    catalog = services().catalog
    try:
        if segment is None:
            item = catalog.resolve("redeemables", redeemable)
            return {"redeemable_uuid": str(item["redeemable_uuid"])}
        resolution = catalog.resolve_pair(segment, redeemable)
    except PunchhError as exc:
        raise punchh_refusal(
            exc,
            rejected=lambda e: invalid(f"Punchh Offer: {e.message}", code="invalid_configuration"),
            unavailable=_offer_unchecked,
        ) from exc
    return {
        "segment_id": str(resolution.segment_id),
        "redeemable_uuid": resolution.redeemable_uuid,
    }


def _offer_unchecked(exc: PunchhError) -> ApiError:
    """Punchh could not be asked about the offer: ask again in a minute."""
    return PunchhUnavailable(
        "Punchh could not be reached to check the offer; try again in a minute",
        headers={"Retry-After": "30"},
    )
