"""The `/v1` blueprint: every route on it needs the API token."""

from __future__ import annotations

from flask import Blueprint

from connector.auth import require_api_token

bp = Blueprint("v1", __name__, url_prefix="/v1")
bp.before_request(require_api_token)
