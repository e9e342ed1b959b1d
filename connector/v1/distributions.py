"""`/v1/distributions`: request one (the generic intake), list them, show one with its events."""

from __future__ import annotations

from flask import Response, g, jsonify, request
from marshmallow import ValidationError

from adapters import generic
from connector.bodies import field_errors, json_body
from connector.v1.blueprint import bp
from ledger import queries
from ledger.intake import submit
from wiring.errors import InvalidQuery, Unprocessable
from wiring.services import current_services as services

#: Largest page of GET /v1/distributions.
MAX_LIST_LIMIT = 1000
DEFAULT_LIST_LIMIT = 100


@bp.post("/distributions")
def create_distribution() -> tuple[Response, int]:
    """Accept one distribution request; the same Idempotency-Key maps to the same send."""
    body = json_body(request)
    try:
        req = generic.to_request(body, request.headers.get("Idempotency-Key"))
    except ValidationError as exc:
        raise field_errors(exc) from exc
    g.source = req.source
    svc = services()
    alerts = bool(svc.settings.alert_webhook_url)
    # An audience send is opened here; its guests come through .../recipients.
    result = submit(svc.ledger, svc.queue, req, alerts=alerts, recipient=False)
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
    """The distribution record, its events, and the admin action undo would reverse."""
    return jsonify(queries.show(services().ledger, distribution_id))


def parse_time(name: str, value: str | None) -> float | None:
    """A time filter from the query string, or a 400."""
    try:
        return queries.parse_time(value)
    except ValueError as exc:
        raise InvalidQuery(f"{name}: {exc}") from exc


@bp.get("/distributions")
def list_distributions() -> Response:
    """Recent distributions, newest first; filter by state, source and creation time."""
    args = request.args
    states = [s.strip() for value in args.getlist("state") for s in value.split(",")]
    raw_limit = args.get("limit", str(DEFAULT_LIST_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST_LIMIT:
        raise InvalidQuery(f"limit must be 1 to {MAX_LIST_LIMIT}")
    found = queries.list_distributions(
        services().ledger,
        states=states,
        source=args.get("source") or None,
        since=parse_time("since", args.get("since")),
        until=parse_time("until", args.get("until")),
        limit=int(raw_limit),
    )
    items = [dist.as_dict() for dist in found]
    return jsonify({"items": items, "count": len(items)})
