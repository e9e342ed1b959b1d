"""The Punchh sandbox as a Flask app: the three Headless Offers endpoints plus ``/_sandbox/``.

Each API request goes: queued fault (if any) -> User-Agent -> auth -> endpoint logic.
Faults come first because they imitate trouble in front of Punchh's application.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox import punchh
from sandbox.state import (
    COMMIT_FAULTS,
    ENDPOINTS,
    JSON,
    PLAIN_FAULTS,
    Fault,
    SandboxState,
    iso,
    read_seed,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

DROP_KEY = "sandbox.drop_connection"
"""WSGI environ flag a view sets to have the connection closed instead of answered."""

API_PATHS = {
    "/api2/dashboard/segments": "segments",
    "/api2/dashboard/redeemables": "redeemables",
    "/api2/dashboard/campaigns": "campaigns",
}
"""Punchh paths and the endpoint names used by faults and the request log."""

api = Blueprint("punchh", __name__, url_prefix="/api2/dashboard")
control = Blueprint("sandbox", __name__, url_prefix="/_sandbox")
marketing_cloud = Blueprint("marketing_cloud", __name__, url_prefix="/_sfmc")

MC_TOKEN = "sandbox-mc-token"  # noqa: S105 - a local stand-in's, not a secret
"""The Marketing Cloud token the stand-in vouches for (``SANDBOX_MC_TOKEN`` overrides it); the
local Journey Builder simulator hands it to the activity UI as Journey Builder would."""


def _state() -> SandboxState:
    """The current app's sandbox state."""
    return cast(SandboxState, current_app.extensions["sandbox"])


def _json(body: Any, status: int = 200) -> Response:
    """A JSON response with a status."""
    response = jsonify(body)
    response.status_code = status
    return response


def _error(message: str, status: int = 400) -> Response:
    """The control endpoints' error shape."""
    return _json({"error": message}, status)


# --- Punchh endpoints ---------------------------------------------------------------------


def _fault_reply(state: SandboxState, fault: Fault) -> Response | None:
    """Act out a fault before the endpoint runs; None means go on to the endpoint."""
    if fault.mode in {"500", "502", "503", "504"}:
        return _json({"error": f"sandbox fault: HTTP {fault.mode}"}, int(fault.mode))
    if fault.mode == "429":
        response = _json({"error": "Too many requests"}, 429)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = f"{fault.retry_after:g}"
        return response
    if fault.mode == "hang":
        state.hang(fault.seconds)
        return _json({"error": "sandbox fault: hung, then gave up"}, 503)
    if fault.mode == "drop":
        request.environ[DROP_KEY] = True
        return Response(status=204)
    if fault.mode == "hold":
        state.hold(fault.seconds)
    return None  # hold (now released) and the commit_* modes proceed normally


def _after_commit_fault(state: SandboxState, fault: Fault) -> None:
    """Misbehave after the endpoint has acted (commit_* modes)."""
    if fault.mode == "commit_drop":
        request.environ[DROP_KEY] = True
    elif fault.mode == "commit_hang":
        state.hang(fault.seconds)
    elif fault.mode == "commit_hold":
        state.hold(fault.seconds)


def _serve(endpoint: str, action: Callable[[SandboxState], Response]) -> Response:
    """Run one API request through faults, caller checks and the endpoint's action."""
    state = _state()
    fault = state.take_fault(endpoint)
    if fault is not None:
        early = _fault_reply(state, fault)
        if early is not None:
            return early
    try:
        punchh.check_caller(
            request.headers.get("User-Agent", ""),
            request.headers.get("Authorization", ""),
            state.seed.api_keys,
        )
        response = action(state)
    except punchh.ApiError as error:
        response = _json(error.body, error.status)
    if fault is not None:
        _after_commit_fault(state, fault)
    return response


def _list_params() -> tuple[str, int, int]:
    """Paging and search parameters from the query string or a JSON body on the GET."""
    body = request.get_json(force=True, silent=True) if request.get_data().strip() else None
    return punchh.list_params(request.args, body, _state().max_per_page)


@api.get("/segments")
def segments() -> Response:
    """Get Segment List: a bare array, searched on name."""

    def action(state: SandboxState) -> Response:
        query, page, per_page = _list_params()
        found = punchh.search(state.seed.segments, query, "name")
        return _json([s.public() for s in punchh.page_of(found, page, per_page)])

    return _serve("segments", action)


@api.get("/redeemables")
def redeemables() -> Response:
    """Get Redeemable List: a bare array, searched on name and description."""

    def action(state: SandboxState) -> Response:
        if not state.seed.external_distribution_enabled:
            raise punchh.ApiError(422, punchh.FEATURE_DISABLED)
        query, page, per_page = _list_params()
        # Every redeemable is listed whatever its state: the commit is where state matters.
        found = punchh.search(state.seed.redeemables, query, "name", "description")
        return _json([r.public() for r in punchh.page_of(found, page, per_page)])

    return _serve("redeemables", action)


@api.post("/campaigns")
def campaigns() -> Response:
    """Commit Redeemable Distribution: validate, create a campaign, no idempotency at all."""

    def action(state: SandboxState) -> Response:
        body: Any = {}
        if request.get_data().strip():
            body = request.get_json(force=True, silent=True)
            if body is None:
                # Rails answers an unparseable JSON body with a 400 before any check.
                return _json({"error": "Invalid JSON body"}, 400)
        if not isinstance(body, dict):
            body = {}  # a JSON array or scalar has none of the fields
        valid = punchh.validate_campaign(body, state.seed, state.now())
        campaign = state.add_campaign(body, valid.start_time, valid.segment_id, valid.redeemable)
        return _json(punchh.commit_reply(campaign.campaign_id, valid, body, state.seed))

    return _serve("campaigns", action)


# --- control endpoints (no auth: sandbox only) ----------------------------------------------


@control.get("/health")
def health() -> Response:
    """Liveness probe for scripts that start the sandbox."""
    return _json({"ok": True})


@control.get("/campaigns")
def list_campaigns() -> Response:
    """Every campaign created since the last reset, with the body received."""
    return _json(_state().campaigns())


@control.get("/clock")
def get_clock() -> Response:
    """The sandbox's now, and how far it is ahead of real time."""
    state = _state()
    return _json({"now": iso(state.now()), "offset_seconds": state.offset_seconds()})


@control.post("/clock")
def advance_clock() -> Response:
    """Advance the clock by ``advance_seconds``, or put it at ``offset_seconds`` ahead of real
    time (to restore what GET read); either way gift what became due."""
    body = request.get_json(force=True, silent=True)
    body = body if isinstance(body, dict) else {}
    given = [name for name in ("advance_seconds", "offset_seconds") if name in body]
    seconds = body.get(given[0]) if len(given) == 1 else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        # advance: gifts cannot be taken back. offset: a clock behind real time means nothing.
        return _error("give one of advance_seconds or offset_seconds, a number >= 0")
    state = _state()
    if given == ["advance_seconds"]:
        now = state.advance(float(seconds))
    else:
        now = state.set_offset(float(seconds))
    return _json({"now": iso(now), "offset_seconds": state.offset_seconds()})


@control.get("/guests")
def list_guests() -> Response:
    """Seeded guests, optionally only those in ``segment_id``."""
    guests = _state().seed.guests
    raw = request.args.get("segment_id")
    if raw is not None:
        if not raw.isdigit():
            return _error("segment_id must be an integer")
        guests = tuple(g for g in guests if int(raw) in g.segments)
    return _json([g.public() for g in guests])


@control.get("/guests/<int:guest_id>/rewards")
def guest_rewards(guest_id: int) -> Response:
    """The rewards gifted to one guest."""
    state = _state()
    if not any(g.guest_id == guest_id for g in state.seed.guests):
        return _error("unknown guest", 404)
    return _json(state.rewards(guest_id))


@control.get("/requests")
def list_requests() -> Response:
    """Counts per endpoint and status plus the last requests (no Authorization header)."""
    return _json(_state().requests())


@control.get("/faults")
def list_faults() -> Response:
    """Faults still queued, per endpoint."""
    return _json(_state().faults())


@control.post("/faults")
def add_faults() -> Response:
    """Queue a fault for the next ``count`` requests to one endpoint."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return _error("body must be a JSON object")
    endpoint = body.get("endpoint")
    mode = str(body.get("mode", ""))  # 500 and "500" both name the 500 fault
    count = body.get("count", 1)
    seconds = body.get("seconds", 30)
    retry_after = body.get("retry_after")
    if endpoint not in ENDPOINTS:
        return _error(f"endpoint must be one of {', '.join(ENDPOINTS)}")
    if mode in COMMIT_FAULTS and endpoint != "campaigns":
        return _error(f"{mode} only applies to campaigns")
    if mode not in PLAIN_FAULTS | COMMIT_FAULTS:
        return _error(f"mode must be one of {', '.join(sorted(PLAIN_FAULTS | COMMIT_FAULTS))}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return _error("count must be an integer >= 1")
    for label, value in (("seconds", seconds), ("retry_after", retry_after)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            return _error(f"{label} must be a number >= 0")
    fault = Fault(
        mode=mode,
        retry_after=None if retry_after is None else float(retry_after),
        seconds=float(seconds if seconds is not None else 30),
    )
    queued = _state().add_faults(str(endpoint), fault, count)
    return _json({"endpoint": endpoint, "queued": queued})


@control.delete("/faults")
def clear_faults() -> Response:
    """Forget every queued fault."""
    _state().clear_faults()
    return _json({"cleared": True})


@control.get("/paging")
def get_paging() -> Response:
    """The silent per_page cap the list endpoints apply now."""
    return _json({"max_per_page": _state().max_per_page})


@control.post("/paging")
def set_paging() -> Response:
    """Cap every page at ``max_per_page`` items without saying so, until the next reset.

    Punchh documents no maximum ``per_page``; a real one that cuts pages short hides every
    later page from a client that stops at the first short page.
    """
    body = request.get_json(force=True, silent=True)
    size = body.get("max_per_page") if isinstance(body, dict) else None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        return _error("max_per_page must be an integer >= 1")
    return _json({"max_per_page": _state().cap_per_page(size)})


@control.get("/held")
def held() -> Response:
    """How many requests are blocked by a hold fault right now."""
    return _json({"held": _state().held()})


@control.post("/release")
def release() -> Response:
    """Let every held request go on."""
    return _json({"released": _state().release()})


@control.post("/reset")
def reset() -> Response:
    """Back to the seed: campaigns, rewards, faults, clock offset, page cap and request log
    cleared (campaign ids keep counting)."""
    _state().reset()
    return _json({"reset": True})


# --- WSGI layer -------------------------------------------------------------------------


class _Wire:
    """WSGI middleware: logs each Punchh API request and drops connections on demand.

    It sits outside Flask because a dropped connection has no response for Flask to log,
    and because raising ConnectionError inside a view would become a 500.
    """

    def __init__(self, app: WSGIApplication, state: SandboxState) -> None:
        """Wrap the Flask WSGI app."""
        self.app = app
        self.state = state

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Call the app, record the request, and drop the connection if a fault asked to."""
        statuses: list[int] = []

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, exc_info)

        result = self.app(environ, recording_start_response)
        path = environ.get("PATH_INFO", "")
        dropped = bool(environ.get(DROP_KEY))
        if path.startswith("/api2/"):
            self.state.record_request(
                {
                    "method": environ.get("REQUEST_METHOD"),
                    "path": path,
                    "endpoint": API_PATHS.get(path, "other"),
                    "status": "dropped" if dropped else (statuses[-1] if statuses else None),
                    "user_agent": environ.get("HTTP_USER_AGENT"),
                    "query": environ.get("QUERY_STRING", ""),
                }
            )
        if not dropped:
            return result
        close = getattr(result, "close", None)
        if close is not None:
            close()
        sock = environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            # FIN both ways: the client reads EOF where a status line should be. The client
            # may already be gone, which is fine.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        # werkzeug treats ConnectionError as "client went away": no response, no traceback.
        # Under Flask's test client (no socket) this exception is the signal instead.
        raise ConnectionAbortedError("sandbox fault: connection dropped")


# --- a stand-in for Marketing Cloud's tokenContext, for the local stack -----------------------


@marketing_cloud.get("/platform/v1/tokenContext")
def token_context() -> Response:
    """Whose token this is: 200 for the stand-in's token, 401 (as Marketing Cloud) otherwise.

    With SFMC_REST_BASE_URL at ``<sandbox>/_sfmc`` the connector's activity UI can load its
    pickers locally, where no Marketing Cloud tenant exists.
    """
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if token != (os.environ.get("SANDBOX_MC_TOKEN") or MC_TOKEN):
        return _json({"message": "Not Authorized", "errorcode": 0, "documentation": ""}, 401)
    return _json(
        {
            "enterprise": {"id": 510000001},
            "organization": {"id": 510000001, "enterprise_id": 510000001},
            "user": {"id": 7000001, "culture": "en-US"},
            "application": {"id": "punchh-sandbox", "package": "punchh-offer"},
        }
    )


def _api_keys_from_env() -> dict[str, str] | None:
    """Admin keys from ``SANDBOX_API_KEYS`` (comma-separated), replacing the seed's keys."""
    raw = os.environ.get("SANDBOX_API_KEYS", "")
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    return dict.fromkeys(keys, "admin") if keys else None


def _max_per_page_from_env() -> int:
    """The silent per_page cap from ``SANDBOX_MAX_PER_PAGE`` (default: Punchh's guessed 50)."""
    raw = os.environ.get("SANDBOX_MAX_PER_PAGE", "").strip()
    if not raw:
        return punchh.MAX_PER_PAGE
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"SANDBOX_MAX_PER_PAGE must be an integer >= 1, got {raw!r}")
    return int(raw)


def create_app(seed: JSON | str | Path | None = None) -> Flask:
    """Build a sandbox app from a seed dict, a seed file path, or the packaged seed."""
    state = SandboxState(
        read_seed(seed), api_keys=_api_keys_from_env(), max_per_page=_max_per_page_from_env()
    )
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Punchh's field order
    app.extensions["sandbox"] = state
    app.register_blueprint(api)
    app.register_blueprint(control)
    app.register_blueprint(marketing_cloud)

    @app.before_request
    def gift_due_campaigns() -> None:
        """Any request lets due campaigns gift, as Punchh's scheduler would have by now."""
        state.run_due()

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        """404, 405 and friends as JSON, like the rest of the API."""
        return _json({"error": error.description}, error.code or 500)

    app.wsgi_app = _Wire(app.wsgi_app, state)  # type: ignore[method-assign]
    return app
