"""The operator pages' credential check: the API token as Bearer, or as HTTP Basic's password.

Its own module because both operator pages (`/status`, `/metrics`) need it and neither should
import the other for it.
"""

from __future__ import annotations

from flask import request

from connector.auth import bearer_token, token_matches
from wiring.errors import Unauthorized
from wiring.services import current_services as services


def require_operator() -> None:
    """API token as Bearer, or as the password of HTTP Basic; a 401 invites Basic."""
    tokens = services().settings.api_tokens
    if not tokens:
        raise Unauthorized("API_TOKEN is not configured on this connector", code="not_configured")
    presented = bearer_token(request.headers.get("Authorization"))
    credentials = request.authorization
    if presented is None and credentials is not None and credentials.type == "basic":
        presented = credentials.password
    if not token_matches(presented, tokens):
        raise Unauthorized(
            "send the API token as a Bearer token, or as the password of HTTP Basic",
            # A browser shows its login box on this challenge, so the page opens there.
            headers={"WWW-Authenticate": 'Basic realm="punchh-connector", charset="UTF-8"'},
        )
