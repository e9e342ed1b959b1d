"""punchh-connector: the Flask app factory."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from connector.errors import register_error_handlers
from wiring.logs import configure_logging
from wiring.services import Services
from wiring.settings import Settings


def create_app(
    config: Settings | Mapping[str, str] | None = None,
    *,
    services: Services | None = None,
) -> Flask:
    """Build the web app: settings, one Redis client and queue, blueprints, error handlers."""
    settings = config if isinstance(config, Settings) else Settings.from_env(config)
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.trusted_proxy_count:
        # Only as many X-Forwarded-* hops as the platform's router adds are believed.
        n = settings.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    svc = services or Services.build(settings)
    app.extensions["punchh_connector"] = svc

    from connector import (
        braze,
        health,
        home,
        metrics,
        openapi,
        sfmc,
        status,
        v1,
    )
    from connector.intake_lane import IntakeLane
    from connector.sfmc import execute
    from connector.sfmc import simulator as sfmc_simulator

    for blueprint in (
        v1.bp,
        braze.bp,
        sfmc.bp,
        sfmc_simulator.bp,
        health.bp,
        metrics.bp,
        status.bp,
        openapi.bp,
        home.bp,
    ):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    # Outermost: the per-recipient routes' happy path skips Flask (see connector/intake_lane.py).
    app.wsgi_app = IntakeLane.wrap(app, svc, (braze.ROUTE, execute.ROUTE))  # type: ignore[method-assign]
    return app
