"""`POST /sfmc/execute`: Journey Builder calls it once per contact; each is counted on its run."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, g, jsonify, request
from marshmallow import ValidationError
from werkzeug.datastructures import Headers

from adapters import sfmc as adapter
from adapters.types import DistributionRequest
from connector.bodies import field_errors, mimetype_of
from connector.intake_route import Body, IntakeRoute, RequestBody, Submit, counted
from connector.sfmc.blueprint import ANSWER_HEADERS, bp, frameable
from connector.sfmc.jwt_body import decode_body
from ledger.states import IntakeResult, State
from punchh.errors import PunchhAuthError, PunchhError, PunchhRejected
from wiring.errors import InvalidFields
from wiring.services import current_services as services
from wiring.settings import Settings

log = logging.getLogger("connector.sfmc")

#: Ledger states worth reporting to the journey as they are (others read accepted/counted).
_REPORTED_STATES = frozenset(
    {State.HELD, State.REJECTED, State.FAILED, State.UNKNOWN, State.CANCELLED}
)


def decide(settings: Settings, headers: Headers, body: Body) -> Submit | adapter.Execute:
    """One execute call: a Submit, or the parsed test call for Flask to answer; refusals raise.

    The intake lane calls this too (connector/intake_route.py), so every check is here.
    """
    claims = decode_body(
        body.read(),
        mimetype_of(headers.get("Content-Type", "")),
        settings.sfmc_jwt_secrets,
        allow_plain_json=settings.sfmc_allow_plain_json,
    )
    try:
        parsed = adapter.parse_execute(claims)
    except ValidationError as exc:
        raise field_errors(exc) from exc
    if parsed.test:
        return parsed
    if parsed.request.gifts_recipients and parsed.guest is None:
        # Counted as missing on its send (the send page says how many), answered 200 so the
        # contact stays in the journey; the answer names the inArgument to bind.
        return Submit(parsed.request, _answer_missing)
    return Submit(parsed.request, _answer, parsed.guest)


@bp.post("/execute")
def execute() -> Response:
    """One contact reached the activity: count it into its run's distribution."""
    g.source = adapter.SOURCE  # for the access log and the refusal counters
    try:
        decision = decide(services().settings, request.headers, RequestBody(request))
    except InvalidFields as exc:
        # Field names only: the values may be contact data bound by the marketer.
        log.warning("sfmc execute refused", extra={"fields": sorted(exc.fields or {})})
        raise
    if isinstance(decision, Submit):
        return counted(decision)
    req = decision.request
    g.outcome = "test"
    status = "invalid" if decision.guest_problem else test_status(req)
    return jsonify({"punchh_distribution_id": req.distribution_id, "punchh_status": status})


#: Execute as the intake lane serves it (connector/intake_lane.py): its answers carry the
#: headers the blueprint's `frameable` hook adds.
ROUTE = IntakeRoute(
    endpoint=f"{bp.name}.{execute.__name__}",
    source=adapter.SOURCE,
    decide=decide,
    headers=ANSWER_HEADERS,
    hooks=(frameable,),
)


def _answer(req: DistributionRequest, result: IntakeResult) -> tuple[int, dict[str, Any]]:
    """A counted contact is always a 200: any other status ejects it from the journey."""
    return 200, execute_answer(result)


def _answer_missing(req: DistributionRequest, result: IntakeResult) -> tuple[int, dict[str, Any]]:
    """A contact of an audience send with no usable identifier: counted, never gifted."""
    status, body = _answer(req, result)
    if not result.conflict:
        body["punchh_status"] = "no_identifier"
    return status, body


def execute_answer(result: IntakeResult) -> dict[str, str]:
    """The outArguments for one counted contact (the view and the intake lane share it)."""
    if result.outcome in ("counted", "replay"):
        log.debug(
            "sfmc execute duplicate",
            extra={"distribution_id": result.distribution_id, "outcome": result.outcome},
        )
    return {"punchh_distribution_id": result.distribution_id, "punchh_status": status_of(result)}


def status_of(result: IntakeResult) -> str:
    """The punchh_status outArgument for one intake result."""
    if result.conflict:
        return "conflict"
    if result.state in _REPORTED_STATES:
        return result.state
    return "accepted" if result.outcome == "created" else "counted"


def test_status(req: DistributionRequest) -> str:
    """Validation only (punchh_test): resolve the names, queue nothing."""
    try:
        if req.gifts_recipients:  # the journey's contacts: only the offer is Punchh's
            services().catalog.resolve("redeemables", req.redeemable)
        else:
            services().catalog.resolve_pair(req.segment, req.redeemable)
    except PunchhAuthError as exc:
        # The key, not the offer, is wrong (and a lockout may have kept Punchh from being asked).
        log.warning(
            "sfmc test execute: Punchh refused the key",
            extra={"distribution_id": req.distribution_id, "error": type(exc).__name__},
        )
        return "unavailable"
    except PunchhRejected as exc:
        log.info(
            "sfmc test execute: invalid",
            extra={"distribution_id": req.distribution_id, "reason": exc.message},
        )
        return "invalid"
    except PunchhError as exc:
        log.warning(
            "sfmc test execute: Punchh unavailable",
            extra={"distribution_id": req.distribution_id, "error": type(exc).__name__},
        )
        return "unavailable"
    return "valid"
