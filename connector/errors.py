"""The one place that turns errors into HTTP responses, with one JSON error shape.

{"error": {"code": "invalid_body", "message": "…", "fields": {"segment": ["…"]}}}
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import redis
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from ledger.lockout import UNLOCK_HINT
from punchh.errors import PunchhAuthError, PunchhLockedOut

log = logging.getLogger("connector.bodies")

#: Seconds a marketing cloud should wait before retrying while Redis is unreachable.
REDIS_DOWN_RETRY_AFTER = 10


class ApiError(Exception):
    """A refusal with a status, a stable code and a message a marketer can act on."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body (see the module docstring)."""
        return error_body(self.code, self.message, fields=self.fields, extra=self.extra)


def error_body(
    code: str,
    message: str,
    *,
    fields: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one error shape: {"error": {"code", "message", "fields"?}, **extra}."""
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    body: dict[str, Any] = {"error": error}
    if extra:
        body.update(extra)
    return body


#: Nothing was accepted: the marketing cloud must retry, and Retry-After slows it down.
STORAGE_UNAVAILABLE = ApiError(
    503,
    "storage_unavailable",
    "the connector cannot reach its storage right now; retry later",
    headers={"Retry-After": str(REDIS_DOWN_RETRY_AFTER)},
)
#: Whatever else went wrong; the traceback goes to the log, never to the caller.
INTERNAL_ERROR = ApiError(500, "internal_error", "the connector failed unexpectedly")


def error_response(error: ApiError) -> Response:
    """The Flask response for a refusal: its JSON body, status and headers."""
    response = jsonify(error.body())
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def punchh_refused(exc: PunchhAuthError) -> ApiError:
    """Punchh refused the connector's key just now (502), or recently, so it was not asked (503)."""
    if isinstance(exc, PunchhLockedOut):
        wait = max(1, math.ceil(exc.until - time.time()))
        return ApiError(503, "punchh_locked_out", exc.message, headers={"Retry-After": str(wait)})
    return ApiError(
        502,
        "punchh_auth",
        f"Punchh refused the connector's API key ({exc.message}); the connector stops calling "
        f"Punchh for a while: {UNLOCK_HINT}",
    )


def storage_unavailable(exc: redis.RedisError) -> ApiError:
    """Log a Redis outage (its class only) and name the refusal that answers it."""
    log.error("redis unavailable", extra={"error": type(exc).__name__})
    return STORAGE_UNAVAILABLE


def internal_error(exc: BaseException) -> ApiError:
    """Log an unexpected failure with its traceback and name the refusal that answers it."""
    log.error("unhandled error", exc_info=exc)
    return INTERNAL_ERROR


def register_error_handlers(app: Flask) -> None:
    """Map ApiError, Redis outages and werkzeug's HTTP errors onto the JSON shape."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc)

    @app.errorhandler(redis.RedisError)
    def _redis_down(exc: redis.RedisError) -> Response:
        return error_response(storage_unavailable(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        messages = {
            413: "the request body is larger than this endpoint accepts",
            404: "no such endpoint",
            405: "this endpoint does not accept that method",
        }
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(
            ApiError(status, code, messages.get(status, exc.description or code))
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        return error_response(internal_error(exc))
