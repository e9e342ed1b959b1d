"""`POST /webhooks/braze`: one request per Braze recipient, one Punchh campaign per send."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from marshmallow import ValidationError

from adapters import braze
from adapters.types import DistributionRequest
from connector.auth import require_bearer
from connector.bodies import field_errors, is_json, json_response, parse_json
from connector.errors import error_body
from ledger.intake import submit
from ledger.states import IntakeResult
from punchh.errors import NameAmbiguous, NameNotFound, PunchhError
from wiring.errors import UnsupportedMediaType
from wiring.services import Services
from wiring.services import current_services as services

bp = Blueprint("braze", __name__)

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
#: What an accepted webhook cannot say yet: Punchh judges the names when the send is committed,
#: after this answer, so the answer (shown in Braze's message activity log) says where to look.
NEXT = (
    "accepted: Punchh checks the segment and redeemable names when the send is committed, "
    "seconds from now; if no Punchh campaign appears, see 'If something goes wrong' in "
    "docs/braze.md (a test send reports the names at once)"
)


def _body() -> Any:
    """The webhook body as a dict: JSON, or a URL-encoded form (Braze offers both)."""
    if is_json(request):
        return parse_json(request.get_data(cache=False))
    if request.mimetype in FORM_TYPES:
        return request.form.to_dict(flat=True)
    raise UnsupportedMediaType(
        "send Content-Type: application/json (or application/x-www-form-urlencoded); "
        f"got {request.mimetype or 'none'}",
    )


@bp.post("/webhooks/braze")
def braze_webhook() -> Response | tuple[Response, int]:
    """Count this recipient on its send; the first of a send queues the Punchh commit."""
    svc = services()
    g.source = braze.SOURCE
    require_bearer(
        request.headers.get("Authorization"),
        svc.settings.braze_webhook_tokens,
        what="BRAZE_WEBHOOK_TOKEN",
        others={"API_TOKEN": svc.settings.api_tokens},
    )
    try:
        call = braze.parse(_body())
    except ValidationError as exc:
        raise field_errors(exc) from exc
    req = call.request
    if call.test_send:
        g.outcome = "test"
        return jsonify(validate_only(svc, req.segment, req.redeemable, call)), 200

    result = submit(svc, req)
    g.distribution_id = result.distribution_id
    g.outcome = result.outcome
    status, answer = intake_answer(req, result)
    return json_response(answer, status)


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


def validate_only(
    svc: Services, segment: str, redeemable: str, call: braze.BrazeCall
) -> dict[str, Any]:
    """A test send: say whether both names resolve in Punchh; queue nothing."""
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
    for kind, name in (("segments", segment), ("redeemables", redeemable)):
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
