"""The WSGI layer around the sandbox app: logs each Punchh API request and drops connections."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sandbox.serving import DROP_KEY
from sandbox.state import SandboxState

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

API_PATHS = {
    "/api2/dashboard/segments": "segments",
    "/api2/dashboard/redeemables": "redeemables",
    "/api2/dashboard/campaigns": "campaigns",
    "/api2/dashboard/custom_segments": "custom_segments",
    "/api2/dashboard/custom_segments/members": "custom_segment_member",
    "/api2/dashboard/custom_segments/members/add_users": "add_users",
}
"""Punchh paths and the endpoint names used by faults and the request log."""

API_METHODS = {
    ("POST", "/api2/dashboard/custom_segments"): "create_custom_segment",
    ("DELETE", "/api2/dashboard/custom_segments"): "delete_custom_segment",
}
"""Where one path holds several endpoints, the method names the endpoint."""


def endpoint_name(method: str, path: str) -> str:
    """The endpoint a request is counted under; ``other`` for paths Punchh does not have."""
    return API_METHODS.get((method, path)) or API_PATHS.get(path, "other")


class Wire:
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
            method = str(environ.get("REQUEST_METHOD"))
            self.state.record_request(
                {
                    "method": method,
                    "path": path,
                    "endpoint": endpoint_name(method, path),
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
