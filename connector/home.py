"""`/` and `/docs`: what this service is, and its API rendered from `/openapi.json`.

Both are public and show nothing about sends: the links they offer ask for their own tokens.
`/docs` uses Redoc, vendored and pinned under connector/static/docs/vendor/ (no CDN).
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from wiring.version import __version__

bp = Blueprint(
    "home", __name__, static_folder="static/docs", static_url_path="/docs/assets"
)

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


#: Redoc injects its styles and runs its search in a worker made from a blob: URL.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@bp.get("/docs")
def docs() -> Response:
    """The API documentation: /openapi.json rendered in the browser by the vendored Redoc."""
    response = Response(render_template("docs.html"), mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
