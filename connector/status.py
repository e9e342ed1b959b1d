"""`/status`: a read-only HTML page of recent sends, behind the API token.

A browser can open it: the API token is accepted as a Bearer token or as the password of
HTTP Basic (any user name), and a 401 asks for Basic credentials. Everything shown is
escaped by Jinja's autoescaping; the page has no scripts and a CSP that forbids them.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, render_template, request

from connector.auth import bearer_token, token_matches
from connector.errors import ApiError
from connector.models import State
from connector.services import current_services as services

bp = Blueprint("status", __name__)

#: Rows shown by default, and at most.
DEFAULT_ROWS = 100
MAX_ROWS = 500
#: CSS class per state (only known states ever reach the class attribute).
STATE_CLASSES = {state.value: f"st-{state.value}" for state in State}
#: Seconds between the page's own refreshes.
REFRESH_SECONDS = 30



def require_operator() -> None:
    """API token as Bearer, or as the password of HTTP Basic; a 401 invites Basic."""
    tokens = services().settings.api_tokens
    if not tokens:
        raise ApiError(401, "not_configured", "API_TOKEN is not configured on this connector")
    presented = bearer_token(request.headers.get("Authorization"))
    credentials = request.authorization
    if presented is None and credentials is not None and credentials.type == "basic":
        presented = credentials.password
    if not token_matches(presented, tokens):
        raise ApiError(
            401,
            "unauthorized",
            "send the API token as a Bearer token, or as the password of HTTP Basic",
            headers={"WWW-Authenticate": 'Basic realm="punchh-connector", charset="UTF-8"'},
        )


def _row(dist: dict[str, Any]) -> dict[str, Any]:
    dist["state_class"] = STATE_CLASSES.get(dist["state"], "st-other")
    return dist


@bp.get("/status")
def status_page() -> Response:
    """Recent distributions with state, recipients, Punchh campaign, start time, last error."""
    require_operator()
    svc = services()
    known = {s.value for s in State}
    wanted = [
        s.strip()
        for value in request.args.getlist("state")
        for s in value.split(",")
        if s.strip() in known
    ]
    source = request.args.get("source", "").strip() or None
    raw_limit = request.args.get("limit", "")
    limit = DEFAULT_ROWS
    if raw_limit.isdigit() and int(raw_limit) > 0:
        limit = min(int(raw_limit), MAX_ROWS)
    rows = [
        _row(dist.as_dict())
        for dist in svc.ledger.recent(states=wanted, source=source, limit=limit)
    ]
    from connector.metrics import count_states  # metrics imports this module's auth check

    html = render_template(
        "status.html",
        rows=rows,
        counts=count_states(svc),
        state_classes=STATE_CLASSES,
        filter_states=wanted,
        source=source,
        limit=limit,
        queued_jobs=svc.queue.count,
        refresh=REFRESH_SECONDS,
        generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    )
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
