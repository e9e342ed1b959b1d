"""The `/sfmc` blueprint, and the headers every one of its answers carries."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

#: The package's static files (connector/static), shared with the other blueprints.
STATIC = Path(__file__).resolve().parent.parent / "static"

bp = Blueprint(
    "sfmc",
    __name__,
    url_prefix="/sfmc",
    static_folder=STATIC / "sfmc",
    static_url_path="/assets",
)

#: Marketing Cloud's hosts may frame the UI; nobody else may (see docs/sfmc.md).
FRAME_ANCESTORS = (
    "frame-ancestors 'self' https://*.exacttarget.com https://*.marketingcloudapps.com "
    "https://*.salesforce.com"
)
#: The UI page loads only its own files and calls only the connector.
UI_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; " + FRAME_ANCESTORS
)
#: What every answer other than the UI page carries (the intake lane adds these too).
ANSWER_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", FRAME_ANCESTORS),
    ("X-Content-Type-Options", "nosniff"),
)
#: What the UI page carries.
PAGE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", UI_POLICY),
    ("Cache-Control", "no-cache"),
    ("X-Content-Type-Options", "nosniff"),
)


def answer_headers(mimetype: str | None) -> tuple[tuple[str, str], ...]:
    """The headers an answer of this media type carries."""
    return PAGE_HEADERS if mimetype == "text/html" else ANSWER_HEADERS


@bp.after_request
def frameable(response: Response) -> Response:
    """Journey Builder frames the UI: allow Marketing Cloud, never send X-Frame-Options."""
    response.headers.pop("X-Frame-Options", None)
    for name, value in answer_headers(response.mimetype):
        response.headers[name] = value
    return response
