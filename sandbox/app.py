"""The Punchh sandbox as a Flask app: Punchh's endpoints, ``/_sandbox/`` and ``/_sfmc/``.

Settings come from the environment, read once per app: ``SANDBOX_API_KEYS``,
``SANDBOX_MAX_PER_PAGE``, ``SANDBOX_CUSTOM_SEGMENT_ADDRESS`` (and ``SANDBOX_MC_TOKEN``, read
per request by the Marketing Cloud stand-in).
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from sandbox.api.custom_segments import custom_segments
from sandbox.api.offers import offers
from sandbox.control import control
from sandbox.custom_segments import ADDRESS_MODES
from sandbox.listing import MAX_PER_PAGE
from sandbox.marketing_cloud import marketing_cloud
from sandbox.request_log import redact_server_log
from sandbox.seed import JSON, read_seed
from sandbox.serving import reply
from sandbox.state import SandboxState
from sandbox.wire import Wire


def _api_keys_from_env() -> dict[str, str] | None:
    """Admin keys from ``SANDBOX_API_KEYS`` (comma-separated), replacing the seed's keys."""
    raw = os.environ.get("SANDBOX_API_KEYS", "")
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    return dict.fromkeys(keys, "admin") if keys else None


def _max_per_page_from_env() -> int:
    """The silent per_page cap from ``SANDBOX_MAX_PER_PAGE`` (default: Punchh's guessed 50)."""
    raw = os.environ.get("SANDBOX_MAX_PER_PAGE", "").strip()
    if not raw:
        return MAX_PER_PAGE
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"SANDBOX_MAX_PER_PAGE must be an integer >= 1, got {raw!r}")
    return int(raw)


def _address_mode_from_env() -> str:
    """How a commit names a custom segment, from ``SANDBOX_CUSTOM_SEGMENT_ADDRESS``."""
    raw = os.environ.get("SANDBOX_CUSTOM_SEGMENT_ADDRESS", "").strip() or ADDRESS_MODES[0]
    if raw not in ADDRESS_MODES:
        raise ValueError(
            f"SANDBOX_CUSTOM_SEGMENT_ADDRESS must be one of {', '.join(ADDRESS_MODES)}, "
            f"got {raw!r}"
        )
    return raw


def create_app(seed: JSON | str | Path | None = None) -> Flask:
    """Build a sandbox app from a seed dict, a seed file path, or the packaged seed."""
    state = SandboxState(
        read_seed(seed),
        api_keys=_api_keys_from_env(),
        max_per_page=_max_per_page_from_env(),
        address_mode=_address_mode_from_env(),
    )
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Punchh's field order
    app.extensions["sandbox"] = state
    app.register_blueprint(offers)
    app.register_blueprint(custom_segments)
    app.register_blueprint(control)
    app.register_blueprint(marketing_cloud)
    # A membership check names its guest in the query string, which the server logs.
    redact_server_log()

    @app.before_request
    def gift_due_campaigns() -> None:
        """Any request lets due campaigns gift, as Punchh's scheduler would have by now."""
        state.run_due()

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        """404, 405 and friends as JSON, like the rest of the API."""
        return reply({"error": error.description}, error.code or 500)

    app.wsgi_app = Wire(app.wsgi_app, state)  # type: ignore[method-assign]
    return app
