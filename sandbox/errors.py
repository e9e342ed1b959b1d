"""Punchh's error replies: the exception that carries one, its shapes, and the caller check."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sandbox.seed import JSON

UNAUTHORIZED: JSON = {"error": "You need to sign in or sign up before continuing."}
NO_PERMISSION: JSON = {"no_permission_error": "Insufficient Privileges to access this resource"}
USER_AGENT_REQUIRED: JSON = {
    "error": "User-Agent header is required (IntegratorName/IntegrationType/Version)."
}
# Punchh's docs cut this message short with "..."; the key (with its space) is what matters.
FEATURE_DISABLED: JSON = {
    "errors": {
        "disabled _feature": "Your current loyalty program configuration does not support "
        "this feature. ..."
    }
}


class ApiError(Exception):
    """A Punchh error reply: status and JSON body."""

    def __init__(self, status: int, body: JSON) -> None:
        """Keep the status and the exact body Punchh would send."""
        super().__init__(status, body)
        self.status = status
        self.body = body


def check_caller(user_agent: str, authorization: str, api_keys: Mapping[str, str]) -> None:
    """Raise the reply for a missing User-Agent, a bad key, or a key without permission.

    The User-Agent is checked first: Punchh rejects such requests before looking at the key.
    """
    if not user_agent.strip():
        raise ApiError(400, USER_AGENT_REQUIRED)
    scheme, _, key = authorization.strip().partition(" ")
    role = api_keys.get(key.strip()) if scheme.lower() == "bearer" else None
    if role is None:
        raise ApiError(401, UNAUTHORIZED)
    if role != "admin":
        # The status is undocumented; 403 is the natural reading of the message.
        raise ApiError(403, NO_PERMISSION)


def is_empty(value: object) -> bool:
    """Absent or empty, as Punchh's "missing or the value is empty" check sees it.

    A whitespace-only name is not empty here: it gets "Name can't be blank" later.
    """
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def require(params: Mapping[str, Any], names: Iterable[str]) -> None:
    """Raise the 400 Punchh answers for the first required parameter missing or empty."""
    for name in names:
        if is_empty(params.get(name)):
            raise ApiError(
                400, {"error": f"Required parameter missing or the value is empty: {name}"}
            )


def invalid(key: str, message: str) -> ApiError:
    """A 422 with the object form of ``errors``."""
    return ApiError(422, {"errors": {key: message}})


def not_found(message: str) -> ApiError:
    """A 404 in the shape the custom-segment endpoints use."""
    return ApiError(404, {"errors": {"not_found": message}})

