"""The connector's own refusals, sorted by what the caller may do next.

ApiError                        a refusal: an HTTP status, a stable code, a message to act on
├── BadRequest             400  fix the request: sent again unchanged, it fails again
│   ├── InvalidBody        400  the body is not one strict JSON object
│   ├── InvalidFields      400  named fields are wrong (`fields` says which and why)
│   └── InvalidQuery       400  a query parameter or filter is wrong
├── Unauthorized           401  send credentials this route accepts (WWW-Authenticate says how)
├── NotFound               404  nothing by that path or id: check it, do not retry
├── Conflict               409  the record's state forbids it now: look at it, then act
├── PayloadTooLarge        413  send a smaller body
├── UnsupportedMediaType   415  send another Content-Type
├── Unprocessable          422  well-formed, but it contradicts what is already known
├── BadGateway             502  a partner (Punchh, Marketing Cloud) failed or refused the
│                               connector: an operator may have to look; retrying may help later
├── Unavailable            503  nothing was done: retry later (Retry-After when known)
│   ├── StorageUnavailable 503  Redis is unreachable, so nothing was accepted
│   └── PunchhUnavailable  503  Punchh cannot be asked now (unreachable, or its key locked out)
├── HttpError              any  one of werkzeug's own HTTP errors (405 …) in the same shape
└── InternalError          500  the connector's own fault: the log has the traceback

Each type carries its status; `code` defaults to the type's and may be more precise (one
type, several codes: a 401 `missing_token` and a 401 `invalid_jwt` ask for the same thing).
The web tier turns every one of them into the one JSON error shape (connector/errors.py); the
ledger's operator actions raise them too, so the CLI and the API refuse in the same words.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refusal with a status, a stable code and a message a marketer or operator can act on."""

    status: int = 500
    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = fields
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(ApiError):
    """400: the request itself is wrong; the message says what to change."""

    status = 400
    code = "invalid_request"


class InvalidBody(BadRequest):
    """400: the body is empty, not JSON, or not one JSON object."""

    code = "invalid_body"


class InvalidFields(BadRequest):
    """400: the body parsed, but named fields are missing or wrong (see `fields`)."""

    code = "invalid_fields"


class InvalidQuery(BadRequest):
    """400: a query parameter (or a CLI filter) is wrong."""

    code = "invalid_query"


class Unauthorized(ApiError):
    """401: no credentials, the wrong ones, or none configured for this route."""

    status = 401
    code = "unauthorized"


class NotFound(ApiError):
    """404: no such route, distribution or send."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """409: the record is in a state that forbids this now (or Punchh access is locked out)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    """413: the body is larger than this endpoint accepts."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    """415: a Content-Type this endpoint does not read."""

    status = 415
    code = "unsupported_media_type"


class Unprocessable(ApiError):
    """422: well-formed, but it contradicts what the connector or Punchh already holds."""

    status = 422
    code = "unprocessable"


class BadGateway(ApiError):
    """502: Punchh or Marketing Cloud failed, or refused the connector's own credentials."""

    status = 502
    code = "bad_gateway"


class Unavailable(ApiError):
    """503: nothing was done; the same request may succeed later."""

    status = 503
    code = "unavailable"


class StorageUnavailable(Unavailable):
    """503: Redis is unreachable, so nothing was accepted (the marketing cloud retries)."""

    code = "storage_unavailable"


class PunchhUnavailable(Unavailable):
    """503: Punchh cannot be asked right now (unreachable, or the key is locked out)."""

    code = "punchh_unavailable"


class HttpError(ApiError):
    """One of werkzeug's own HTTP errors (a 405, say), answered in the one shape."""

    def __init__(self, status: int, message: str, *, code: str) -> None:
        super().__init__(message, code=code)
        self.status = status


class InternalError(ApiError):
    """500: the connector failed unexpectedly; the traceback is logged, never answered."""

    status = 500
    code = "internal_error"
