"""How one request is served: the app's state, JSON replies, and the faults around an API
call. Each API request goes: queued fault (if any) -> User-Agent -> auth -> endpoint logic;
faults come first because they imitate trouble in front of Punchh's application."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from flask import Response, current_app, jsonify, request

from sandbox.errors import ApiError, check_caller
from sandbox.faults import Fault
from sandbox.state import SandboxState

DROP_KEY = "sandbox.drop_connection"
"""WSGI environ flag a view sets to have the connection closed instead of answered."""


def current_state() -> SandboxState:
    """The current app's sandbox state."""
    return cast(SandboxState, current_app.extensions["sandbox"])


def reply(body: Any, status: int = 200) -> Response:
    """A JSON response with a status."""
    response = jsonify(body)
    response.status_code = status
    return response


def control_error(message: str, status: int = 400) -> Response:
    """The control endpoints' error shape."""
    return reply({"error": message}, status)


def params() -> dict[str, Any]:
    """Query string and JSON body merged as Rails' params are: the query string wins."""
    body = request.get_json(force=True, silent=True) if request.get_data().strip() else None
    merged: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    merged.update(request.args)
    return merged


def _fault_reply(state: SandboxState, fault: Fault) -> Response | None:
    """Act out a fault before the endpoint runs; None means go on to the endpoint."""
    if fault.mode in {"500", "502", "503", "504"}:
        return reply({"error": f"sandbox fault: HTTP {fault.mode}"}, int(fault.mode))
    if fault.mode == "429":
        response = reply({"error": "Too many requests"}, 429)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = f"{fault.retry_after:g}"
        return response
    if fault.mode == "hang":
        state.gate.hang(fault.seconds)
        return reply({"error": "sandbox fault: hung, then gave up"}, 503)
    if fault.mode == "drop":
        request.environ[DROP_KEY] = True
        return Response(status=204)
    if fault.mode == "hold":
        state.gate.hold(fault.seconds)
    return None  # hold (now released) and the commit_* modes proceed normally


def _after_acting_fault(state: SandboxState, fault: Fault) -> None:
    """Misbehave after the endpoint has acted (commit_* modes)."""
    if fault.mode == "commit_drop":
        request.environ[DROP_KEY] = True
    elif fault.mode == "commit_hang":
        state.gate.hang(fault.seconds)
    elif fault.mode == "commit_hold":
        state.gate.hold(fault.seconds)


def serve(endpoint: str, action: Callable[[SandboxState], Response]) -> Response:
    """Run one API request through faults, caller checks and the endpoint's action."""
    state = current_state()
    fault = state.take_fault(endpoint)
    if fault is not None:
        early = _fault_reply(state, fault)
        if early is not None:
            return early
    try:
        check_caller(
            request.headers.get("User-Agent", ""),
            request.headers.get("Authorization", ""),
            state.seed.api_keys,
        )
        response = action(state)
    except ApiError as error:
        response = reply(error.body, error.status)
    if fault is not None:
        _after_acting_fault(state, fault)
    return response
