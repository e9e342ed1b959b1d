"""`GET /openapi.json`: the connector's own HTTP surface as OpenAPI 3, built from the app.

- `operations.py`: what each endpoint is (summary, body, answers, parameters): data.
- `schemas.py`: the answers' schemas, and COMPONENTS, every schema the document names.
- `security.py`: the security schemes, and each blueprint's default.
- `builder.py`: walks the app's url_map and builds the document with apispec.

To describe a new endpoint, add it to OPERATIONS, and any new schema to COMPONENTS.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify

from connector.openapi.builder import build_document, openapi_path, routes
from connector.openapi.operations import OPERATIONS, Op

__all__ = ["OPERATIONS", "Op", "bp", "build_document", "openapi_path", "routes"]

bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The connector's HTTP surface as OpenAPI 3 (no auth: it holds no secrets)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    # Built once per app: the routes cannot change after the first request.
    cache = app.extensions.setdefault("punchh_connector_openapi", {})
    if "document" not in cache:
        cache["document"] = build_document(app)
    return jsonify(cache["document"])
