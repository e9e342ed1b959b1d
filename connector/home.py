"""`/`: a small public page saying what this service is, with links to its other pages.

It shows nothing about sends and needs no token: the links it offers ask for their own.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from connector.version import __version__

bp = Blueprint("home", __name__)

#: The page has no scripts; styles are inline.
POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)


@bp.get("/")
def home() -> Response:
    """What this is and where to go: status, API docs, health, the SFMC activity."""
    response = Response(render_template("home.html", version=__version__), mimetype="text/html")
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
