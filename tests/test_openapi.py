"""The OpenAPI document describes exactly the app's routes, and is valid OpenAPI 3."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema, fields

from connector.openapi import OPERATIONS, Op, build_document, openapi_path, routes


def document_routes(doc: dict) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    methods = {"get", "post", "put", "patch", "delete"}
    return {(path, m) for path, item in doc["paths"].items() for m in item if m in methods}


def url_map_routes(app: Flask) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<path:{arg}>", f"{{{arg}}}").replace(f"<{arg}>", f"{{{arg}}}")
            path = path.replace(f"<int:{arg}>", f"{{{arg}}}")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            found.add((path, method.lower()))
    return found


def test_served_without_auth_and_matches_the_routes(client: FlaskClient, app: Flask) -> None:
    reply = client.get("/openapi.json")
    assert reply.status_code == 200
    doc = reply.json
    assert doc["openapi"].startswith("3.")
    assert document_routes(doc) == url_map_routes(app) == routes(app)
    assert ("/v1/distributions/{distribution_id}/retry", "post") in document_routes(doc)
    assert not any("<" in path for path in doc["paths"])


def test_every_listed_endpoint_exists(app: Flask) -> None:
    """A renamed view must not leave a stale description behind."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(OPERATIONS) <= endpoints


def test_operations_carry_auth_bodies_and_errors(app: Flask) -> None:
    doc = build_document(app)
    schemes = doc["components"]["securitySchemes"]
    assert {"apiToken", "apiTokenBasic", "brazeToken", "sfmcJwt"} <= set(schemes)
    paths = doc["paths"]
    create = paths["/v1/distributions"]["post"]
    assert create["security"] == [{"apiToken": []}]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Distribution"}
    generic = doc["components"]["schemas"]["Distribution"]
    # A segment, or `audience: recipients` (audience mode): neither alone is required.
    assert generic["required"] == ["redeemable"]
    assert {"segment", "audience"} <= set(generic["properties"])
    assert generic["properties"]["start_time"]["format"] == "date-time"
    assert create["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    resolve = paths["/v1/distributions/{distribution_id}/resolve"]
    assert resolve["parameters"][0]["name"] == "distribution_id"
    assert "campaign_id" in doc["components"]["schemas"]["Resolve"]["properties"]
    assert paths["/healthz"]["get"]["security"] == []
    assert paths["/status"]["get"]["security"] == [{"apiToken": []}, {"apiTokenBasic": []}]
    braze = paths["/webhooks/braze"]["post"]
    assert braze["security"] == [{"brazeToken": []}]
    assert braze["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BrazeWebhook"
    }
    assert "punchh_segment" in doc["components"]["schemas"]["BrazeWebhook"]["properties"]
    for event in ("save", "publish", "stop", "validate"):
        body = paths[f"/sfmc/{event}"]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": "#/components/schemas/Lifecycle"}, event
    ids = [op["operationId"] for item in paths.values() for op in item.values()
           if isinstance(op, dict) and "operationId" in op]
    assert len(ids) == len(set(ids))


def test_a_new_route_appears_with_defaults(app: Flask) -> None:
    @app.post("/v1/experimental/<int:n>")
    def experimental(n: int) -> str:
        """Something added later, not yet in OPERATIONS."""
        return str(n)

    doc = build_document(app)
    op = doc["paths"]["/v1/experimental/{n}"]["post"]
    assert op["summary"] == "Something added later, not yet in OPERATIONS."
    assert doc["paths"]["/v1/experimental/{n}"]["parameters"][0]["schema"] == {"type": "integer"}
    assert document_routes(doc) == url_map_routes(app)


def test_a_schema_must_be_registered_by_name(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No name is made up for a schema: one missing from COMPONENTS stops the build."""

    class StraySchema(Schema):
        n = fields.Integer()

    @app.post("/v1/stray")
    def stray() -> str:
        """Takes a body nobody registered."""
        return ""

    monkeypatch.setitem(OPERATIONS, "stray", Op(body=StraySchema))
    with pytest.raises(LookupError, match="StraySchema"):
        build_document(app)


def test_path_conversion() -> None:
    assert openapi_path("/v1/distributions/<path:distribution_id>/retry")[0] == (
        "/v1/distributions/{distribution_id}/retry"
    )
    path, params = openapi_path("/a/<int:n>/<name>")
    assert path == "/a/{n}/{name}"
    assert [p["schema"]["type"] for p in params] == ["integer", "string"]


def test_document_is_valid_openapi_3(app: Flask) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(build_document(app))


def test_public_pages_are_described_as_public_html(client: FlaskClient, app: Flask) -> None:
    """/, /sfmc/ and /sfmc/index.html are pages anyone may open, not JWT-secured JSON."""
    doc = build_document(app)
    for path in ("/", "/docs", "/sfmc/", "/sfmc/index.html"):
        operation = doc["paths"][path]["get"]
        assert operation["security"] == [], path
        assert list(operation["responses"]["200"]["content"]) == ["text/html"], path
        assert "401" not in operation["responses"], path
        served = client.get(path)
        assert served.status_code == 200 and served.mimetype == "text/html", path
