"""`POST /sfmc/execute`: Journey Builder calls it once per contact; each is counted on its run."""

from __future__ import annotations

import logging

from flask import Response, g, jsonify
from marshmallow import ValidationError

from adapters import sfmc as adapter
from adapters.types import DistributionRequest
from connector.bodies import field_errors, json_response
from connector.sfmc.blueprint import bp
from connector.sfmc.lifecycle import signed_body
from ledger.intake import submit
from ledger.states import IntakeResult, State
from punchh.errors import PunchhAuthError, PunchhError, PunchhRejected
from wiring.services import current_services as services

log = logging.getLogger("connector.sfmc")

#: Ledger states worth reporting to the journey as they are (others read accepted/counted).
_REPORTED_STATES = frozenset(
    {State.HELD, State.REJECTED, State.FAILED, State.UNKNOWN, State.CANCELLED}
)


@bp.post("/execute")
def execute() -> Response:
    """One contact reached the activity: count it into its run's distribution."""
    g.source = adapter.SOURCE  # for the access log and the refusal counters
    claims = signed_body()
    try:
        parsed = adapter.parse_execute(claims)
    except ValidationError as exc:
        error = field_errors(exc)
        # Field names only: the values may be contact data bound by the marketer.
        log.warning("sfmc execute refused", extra={"fields": sorted(error.fields or {})})
        raise error from exc
    req = parsed.request
    if parsed.test:
        g.outcome = "test"
        return jsonify(
            {"punchh_distribution_id": req.distribution_id, "punchh_status": test_status(req)}
        )
    result = submit(services(), req)
    g.distribution_id = result.distribution_id
    g.outcome = result.outcome
    return json_response(execute_answer(result))


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
