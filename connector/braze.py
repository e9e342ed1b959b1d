"""`POST /webhooks/braze`: one request per Braze recipient, one Punchh campaign per send."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from marshmallow import ValidationError
from werkzeug.datastructures import Headers

from adapters import braze
from adapters.types import DistributionRequest
from connector.auth import require_bearer
from connector.bodies import field_errors, is_json_type, mimetype_of, parse_json
from connector.errors import error_body
from connector.intake_route import Body, IntakeRoute, RequestBody, Submit, counted
from ledger.states import IntakeResult
from punchh.errors import NameAmbiguous, NameNotFound, PunchhError
from wiring.errors import UnsupportedMediaType
from wiring.services import Services
from wiring.services import current_services as services
from wiring.settings import Settings

bp = Blueprint("braze", __name__)

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
#: What an accepted webhook cannot say yet: Punchh judges the names when the send is committed,
#: after this answer, so the answer (shown in Braze's message activity log) says where to look.
NEXT = (
    "accepted: Punchh checks the segment and redeemable names when the send is committed, "
    "seconds from now; if no Punchh campaign appears, see 'If something goes wrong' in "
    "docs/braze.md (a test send reports the names at once)"
)


def decide(settings: Settings, headers: Headers, body: Body) -> Submit | braze.BrazeCall:
    """One webhook: a Submit, or the parsed test send for Flask to answer; refusals raise.

    The intake lane calls this too (connector/intake_route.py), so every check is here.
    """
    require_bearer(
        headers.get("Authorization"),
        settings.braze_webhook_tokens,
        what="BRAZE_WEBHOOK_TOKEN",
        others={"API_TOKEN": settings.api_tokens},
    )
    try:
        call = braze.parse(_payload(headers, body))
    except ValidationError as exc:
        raise field_errors(exc) from exc
    if call.test_send:
        return call
    return Submit(call.request, intake_answer, call.guest)


def _payload(headers: Headers, body: Body) -> Any:
    """The webhook body as a dict: JSON, or a URL-encoded form (Braze offers both)."""
    mimetype = mimetype_of(headers.get("Content-Type", ""))
    if is_json_type(mimetype):
        return parse_json(body.read())
    if mimetype in FORM_TYPES:
        return body.form()
    raise UnsupportedMediaType(
        "send Content-Type: application/json (or application/x-www-form-urlencoded); "
        f"got {mimetype or 'none'}",
    )


@bp.post("/webhooks/braze")
def braze_webhook() -> Response | tuple[Response, int]:
    """Count this recipient on its send; the first of a send queues the Punchh commit."""
    svc = services()
    g.source = braze.SOURCE
    decision = decide(svc.settings, request.headers, RequestBody(request))
    if isinstance(decision, Submit):
        return counted(decision)
    g.outcome = "test"
    return jsonify(validate_only(svc, decision)), 200


#: The webhook as the intake lane serves it (connector/intake_lane.py).
ROUTE = IntakeRoute(
    endpoint=f"{bp.name}.{braze_webhook.__name__}", source=braze.SOURCE, decide=decide
)


def intake_answer(req: DistributionRequest, result: IntakeResult) -> tuple[int, dict[str, Any]]:
    """The status and body for one counted webhook (the view and the intake lane share it)."""
    if result.conflict:
        return 409, error_body(
            "conflict",
            f"send {result.distribution_id} is already gifting "
            f"{result.existing_redeemable!r} to {result.existing_segment!r}; this request "
            f"asked for {req.redeemable!r} to {req.segment!r}. Give the new offer its own "
            "send_key or campaign",
            extra={"distribution_id": result.distribution_id, "state": result.state},
        )
    return 202, {"distribution_id": result.distribution_id, "state": result.state, "next": NEXT}


def validate_only(svc: Services, call: braze.BrazeCall) -> dict[str, Any]:
    """A test send: say whether both names resolve in Punchh; queue nothing."""
    segment, redeemable = call.request.segment, call.request.redeemable
    lookups = [("redeemables", redeemable)]
    if not call.request.gifts_recipients:
        lookups.insert(0, ("segments", segment))
    report: dict[str, Any] = {
        "test_send": True,
        "committed": False,
        "reason": "placeholder ids in "
        + ", ".join(call.placeholder_fields)
        + ": Braze renders these for test sends and previews, so nothing is committed",
        "would_be_distribution": call.request.distribution_id,
        "key_rule": call.request.key_rule,
    }
    problems: list[str] = []
    if call.request.gifts_recipients:
        # The send's own recipients are gifted: no segment to find, but each body must name
        # its guest (the value itself is never echoed).
        report["audience"] = {
            "gifts": "this send's recipients (a Punchh custom segment made for the send)",
            "guest_identifier": call.guest.kind if call.guest else None,
        }
        if call.guest_problem:
            problems.append(call.guest_problem)
    for kind, name in lookups:
        noun = kind[:-1]
        try:
            item = svc.catalog.resolve(kind, name)  # type: ignore[arg-type]
        except (NameNotFound, NameAmbiguous) as exc:
            report[noun] = {"name": name, "found": False}
            problems.append(exc.message)
        except PunchhError as exc:
            report[noun] = {"name": name, "found": None}
            problems.append(f"could not ask Punchh: {exc.message}")
        else:
            ident = "segment_id" if kind == "segments" else "redeemable_uuid"
            report[noun] = {"name": item.get("name"), "found": True, ident: item.get(ident)}
    report["valid"] = not problems
    if problems:
        report["problems"] = problems
    return report
