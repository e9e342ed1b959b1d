"""Who may call what: the document's security schemes, and each blueprint's default."""

from __future__ import annotations

from typing import Any

#: Security by blueprint when an operation does not say (alternatives: any one suffices).
BLUEPRINT_SECURITY: dict[str, tuple[str, ...]] = {
    "v1": ("apiToken",),
    "braze": ("brazeToken",),
    "sfmc": ("sfmcJwt",),
    "metrics": ("apiToken", "apiTokenBasic"),
    "status": ("apiToken", "apiTokenBasic"),
    "ops": (),
    "openapi": (),
}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "apiToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "API_TOKEN (any of its comma-separated values)",
    },
    "apiTokenBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "HTTP Basic with any user name and API_TOKEN as the password (browsers)",
    },
    "brazeToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "BRAZE_WEBHOOK_TOKEN, set as a header in the Braze webhook template",
    },
    "sfmcJwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "Journey Builder sends the body as a compact HS256 JWT (Content-Type "
            "application/jwt) signed with SFMC_JWT_SECRET"
        ),
    },
}
