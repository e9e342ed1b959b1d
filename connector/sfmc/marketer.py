"""The configuration UI's calls are authorised by the marketer's own Marketing Cloud token.

The page gets the token from Journey Builder (Postmonger `requestTokens`) and sends it as a
bearer token; we ask Marketing Cloud's `GET /platform/v1/tokenContext` on the tenant's REST
base URL (configured, never taken from the request) whether it is good. A positive answer is
cached under a hash of the token, so the token itself is never stored or logged.
"""

from __future__ import annotations

import hashlib
import logging

import httpx
import redis

from connector.auth import bearer_refused, bearer_token
from wiring.errors import BadGateway, Unavailable
from wiring.settings import Settings

log = logging.getLogger("connector.sfmc")

#: tokenContext is a quick read; a slow Marketing Cloud must not hang the picker.
TOKEN_CHECK_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
#: Marketing Cloud's endpoint that says whose token the UI sent (a URL path, not a secret).
CONTEXT_ENDPOINT = "/platform/v1/tokenContext"


def cache_key(settings: Settings, token: str) -> str:
    """Where a checked token's positive result is cached (a hash: never the token)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    return f"{settings.key_prefix}sfmc:tok:{digest}"


def require_marketer(
    settings: Settings,
    cache: redis.Redis,
    header: str | None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """Return when Marketing Cloud vouches for the header's token; refuse (401, 502, 503) else."""
    token = bearer_token(header)
    if token is None:
        raise bearer_refused(
            "send the Marketing Cloud token as Authorization: Bearer <token>", "missing_token"
        )
    if not settings.sfmc_rest_base_url:
        raise Unavailable("SFMC_REST_BASE_URL is not configured", code="not_configured")
    key = cache_key(settings, token)
    if settings.sfmc_token_cache_seconds > 0 and cache.exists(key):
        return
    url = settings.sfmc_rest_base_url + CONTEXT_ENDPOINT
    try:
        with httpx.Client(timeout=TOKEN_CHECK_TIMEOUT, transport=transport) as client:
            reply = client.get(url, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        log.warning("tokenContext unreachable", extra={"error": type(exc).__name__})
        raise BadGateway(
            "Marketing Cloud could not be reached to check the token", code="sfmc_unavailable"
        ) from exc
    if reply.status_code in (401, 403):
        raise bearer_refused(
            "Marketing Cloud did not accept the token; reopen the activity", "invalid_token"
        )
    if reply.status_code != 200:
        log.warning("tokenContext refused", extra={"status": reply.status_code})
        raise BadGateway(
            f"Marketing Cloud answered {reply.status_code} when checking the token",
            code="sfmc_unavailable",
        )
    if settings.sfmc_token_cache_seconds > 0:
        cache.set(key, "1", ex=settings.sfmc_token_cache_seconds)
