"""A stand-in for Marketing Cloud's tokenContext, so the local stack's activity UI can load.

With SFMC_REST_BASE_URL at ``<sandbox>/_sfmc`` the connector's activity UI can load its
pickers locally, where no Marketing Cloud tenant exists.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response, request

from sandbox.serving import reply

MC_TOKEN = "sandbox-mc-token"  # noqa: S105 - a local stand-in's, not a secret
"""The Marketing Cloud token the stand-in vouches for (``SANDBOX_MC_TOKEN`` overrides it); the
local Journey Builder simulator hands it to the activity UI as Journey Builder would."""

marketing_cloud = Blueprint("marketing_cloud", __name__, url_prefix="/_sfmc")


@marketing_cloud.get("/platform/v1/tokenContext")
def token_context() -> Response:
    """Whose token this is: 200 for the stand-in's token, 401 (as Marketing Cloud) otherwise."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if token != (os.environ.get("SANDBOX_MC_TOKEN") or MC_TOKEN):
        return reply({"message": "Not Authorized", "errorcode": 0, "documentation": ""}, 401)
    return reply(
        {
            "enterprise": {"id": 510000001},
            "organization": {"id": 510000001, "enterprise_id": 510000001},
            "user": {"id": 7000001, "culture": "en-US"},
            "application": {"id": "punchh-sandbox", "package": "punchh-offer"},
        }
    )
