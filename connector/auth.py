"""Bearer-token checks, in constant time, against any of several tokens (for rotation)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from wiring.errors import Unauthorized


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def bearer_refused(message: str, code: str) -> Unauthorized:
    """A 401 that asks for a bearer token (`WWW-Authenticate: Bearer`)."""
    return Unauthorized(message, code=code, headers={"WWW-Authenticate": "Bearer"})


def token_matches(presented: str | None, accepted: Iterable[str]) -> bool:
    """True when `presented` equals one of `accepted`; compares every one in constant time."""
    if presented is None:
        return False
    given = presented.encode()
    found = False
    for token in accepted:
        found |= hmac.compare_digest(given, token.encode())
    return found


def require_bearer(
    header: str | None,
    accepted: Iterable[str],
    *,
    what: str,
    others: Mapping[str, Iterable[str]] | None = None,
) -> None:
    """Raise Unauthorized unless the header carries an accepted token.

    `others` are the connector's other tokens by name: a caller who pasted one of those is
    told which it is and which this route wants (it already holds it, so nothing leaks).
    """
    tokens = tuple(accepted)
    if not tokens:
        raise Unauthorized(f"{what} is not configured on this connector", code="not_configured")
    presented = bearer_token(header)
    if presented is None:
        raise bearer_refused("send Authorization: Bearer <token>", "missing_token")
    if not token_matches(presented, tokens):
        message = f"the bearer token is not a valid {what}"
        for name, values in (others or {}).items():
            if token_matches(presented, values):
                message = f"the bearer token is the {name}; this route wants the {what}"
        raise bearer_refused(message, "invalid_token")


def require_api_token() -> None:
    """before_request for the operator surfaces: the connector's own API_TOKEN."""
    from flask import request

    from wiring.services import current_services

    settings = current_services().settings
    require_bearer(
        request.headers.get("Authorization"),
        settings.api_tokens,
        what="API_TOKEN",
        others={"BRAZE_WEBHOOK_TOKEN": settings.braze_webhook_tokens},
    )
