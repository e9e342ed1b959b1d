"""What can go wrong talking to Punchh, sorted by what the caller may safely do next.

PunchhError
├── PunchhNotActed          Punchh provably did not act: retrying is safe
│   ├── PunchhConnectError  the connection was never made
│   ├── PunchhRateLimited   429 (carries Retry-After when Punchh sent one)
│   └── PunchhServerError   500, 502, 503
├── PunchhRejected          permanent: retrying the same request cannot help
│   ├── PunchhAuthError     401/403: the API key is wrong or lacks permission
│   │   └── PunchhLockedOut Punchh refused the key recently: nothing was sent at all
│   ├── CustomSegmentNameTaken  422 to a create: the name exists; find it, never create again
│   └── CustomSegmentNotFound   404: no custom segment has that id (deleted, or never made)
├── PunchhAmbiguous         the request may have been acted on: read timeout, reset
│                           after sending, 504, an unreadable success body
└── PunchhUnexpected        any other status (3xx, a 2xx the call does not expect, unlisted 4xx)
"""

from __future__ import annotations


class PunchhError(Exception):
    """Base of every error the Punchh client raises."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class PunchhNotActed(PunchhError):
    """Punchh provably did not act on the request: it is safe to send it again."""

    retry_after: float | None = None


class PunchhConnectError(PunchhNotActed):
    """No connection was made (refused, DNS, TLS or connect timeout)."""


class PunchhRateLimited(PunchhNotActed):
    """429 Too Many Requests."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class PunchhServerError(PunchhNotActed):
    """500, 502 or 503: the request was refused before anything was created."""


class PunchhRejected(PunchhError):
    """A permanent refusal (400, 401, 403, 404, 422) with Punchh's own words."""

    def __init__(self, message: str, *, status: int | None, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message, status=status)
        self.codes = codes


class PunchhAuthError(PunchhRejected):
    """The API key was refused; never retried in a loop (Punchh locks out the IP)."""


class PunchhLockedOut(PunchhAuthError):
    """Punchh refused the key recently, so this call was never made (see punchh.lockout)."""

    def __init__(self, message: str, *, refused_at: float, until: float) -> None:
        super().__init__(message, status=None, codes=("locked_out",))
        self.refused_at = refused_at
        self.until = until


class CustomSegmentNameTaken(PunchhRejected):
    """A custom segment already has that name: a create that lost its answer may have made it."""


class CustomSegmentNotFound(PunchhRejected):
    """No custom segment has that id."""


class PunchhAmbiguous(PunchhError):
    """The request may have reached Punchh and been acted on; nobody can say."""


class PunchhUnexpected(PunchhError):
    """A status the API does not document; treated as ambiguous for a commit."""


class NameNotFound(PunchhRejected):
    """No segment or redeemable has exactly that name."""


class NameAmbiguous(PunchhRejected):
    """More than one segment or redeemable has that name."""

    def __init__(self, message: str, *, candidates: tuple[str, ...]) -> None:
        super().__init__(message, status=None, codes=("ambiguous_name",))
        self.candidates = candidates
