"""The one place that turns errors into HTTP answers, with one JSON error shape.

{"error": {"code": "invalid_body", "message": "…", "fields": {"segment": ["…"]}}}

The refusals themselves are the tree in wiring/errors.py. `refusal` picks the ApiError that
answers any exception; the app's one registered handler and the intake lane both call it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from ledger.lockout import UNLOCK_HINT
from punchh.errors import PunchhAuthError, PunchhError, PunchhLockedOut, PunchhRejected
from wiring.errors import (
    ApiError,
    BadGateway,
    BadRequest,
    HttpError,
    InternalError,
    NotFound,
    PayloadTooLarge,
    PunchhUnavailable,
    StorageUnavailable,
    UnsupportedMediaType,
)

log = logging.getLogger("connector.bodies")

#: Seconds a marketing cloud should wait before retrying while Redis is unreachable.
REDIS_DOWN_RETRY_AFTER = 10

#: Nothing was accepted: the marketing cloud must retry, and Retry-After slows it down.
STORAGE_UNAVAILABLE = StorageUnavailable(
    "the connector cannot reach its storage right now; retry later",
    headers={"Retry-After": str(REDIS_DOWN_RETRY_AFTER)},
)
#: Whatever else went wrong; the traceback goes to the log, never to the caller.
INTERNAL_ERROR = InternalError("the connector failed unexpectedly")

#: werkzeug's HTTP errors that have a type of their own in the tree.
_HTTP_TYPES: dict[int, type[ApiError]] = {
    400: BadRequest,
    404: NotFound,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}
#: Plainer words than werkzeug's for the HTTP errors a caller meets most.
_HTTP_MESSAGES = {
    413: "the request body is larger than this endpoint accepts",
    404: "no such endpoint",
    405: "this endpoint does not accept that method",
}


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


def body_of(error: ApiError) -> dict[str, Any]:
    """A refusal's JSON body."""
    return error_body(error.code, error.message, fields=error.fields, extra=error.extra)


def error_response(error: ApiError) -> Response:
    """The Flask response for a refusal: its JSON body, status and headers."""
    response = jsonify(body_of(error))
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def storage_unavailable(exc: redis.RedisError) -> ApiError:
    """Log a Redis outage (its class only) and name the refusal that answers it."""
    log.error("redis unavailable", extra={"error": type(exc).__name__})
    return STORAGE_UNAVAILABLE


def internal_error(exc: BaseException) -> ApiError:
    """Log an unexpected failure with its traceback and name the refusal that answers it."""
    log.error("unhandled error", exc_info=exc)
    return INTERNAL_ERROR


def http_error(exc: HTTPException) -> ApiError:
    """werkzeug's own HTTP error (routing, size, method) in the tree's terms."""
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    message = _HTTP_MESSAGES.get(status, exc.description or code)
    kind = _HTTP_TYPES.get(status)
    return kind(message, code=code) if kind else HttpError(status, message, code=code)


def refusal(exc: BaseException) -> ApiError:
    """The refusal that answers `exc`: the app's error handler and the intake lane agree here."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, redis.RedisError):
        return storage_unavailable(exc)
    if isinstance(exc, HTTPException):
        return http_error(exc)
    return internal_error(exc)


def punchh_refusal(
    exc: PunchhError,
    *,
    unavailable: Callable[[PunchhError], ApiError],
    rejected: Callable[[PunchhRejected], ApiError] | None = None,
) -> ApiError:
    """Punchh's refusal as this connector's answer.

    A refused key reads the same everywhere: refused just now (502), or recently, so Punchh
    was not asked (503 until the lockout ends). What a rejected name or an outage means
    depends on what was being asked, so the caller says: `rejected` (else it counts as
    `unavailable`) and `unavailable`.
    """
    if isinstance(exc, PunchhLockedOut):
        wait = max(1, math.ceil(exc.until - time.time()))
        return PunchhUnavailable(
            exc.message, code="punchh_locked_out", headers={"Retry-After": str(wait)}
        )
    if isinstance(exc, PunchhAuthError):
        return BadGateway(
            f"Punchh refused the connector's API key ({exc.message}); the connector stops "
            f"calling Punchh for a while: {UNLOCK_HINT}",
            code="punchh_auth",
        )
    if rejected is not None and isinstance(exc, PunchhRejected):
        return rejected(exc)
    return unavailable(exc)


def handle_error(exc: Exception) -> Response:
    """The app's one error handler: every family below answers through `refusal`."""
    return error_response(refusal(exc))


#: The exception families the app answers (the intake lane relies on `refusal` for the same).
ANSWERED: tuple[type[Exception], ...] = (ApiError, redis.RedisError, HTTPException, Exception)


def register_error_handlers(app: Flask) -> None:
    """Answer each family in ANSWERED with the one JSON shape."""
    for family in ANSWERED:
        app.register_error_handler(family, handle_error)
