"""Builds the OpenAPI 3 document from the app's url_map and the descriptions beside it.

Every rule of the url_map is described (static files aside), so a route added later appears
at once with a default description, and tests/test_openapi.py holds the document to the real
routes. Schemas become components through apispec's MarshmallowPlugin, each under the name
COMPONENTS gives it.
"""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema

from adapters.common import StartTime
from connector.openapi.operations import JSON, OPERATIONS, Op, Reply
from connector.openapi.schemas import COMPONENTS, ErrorSchema
from connector.openapi.security import BLUEPRINT_SECURITY, SECURITY_SCHEMES
from wiring.version import __version__

OPENAPI_VERSION = "3.0.3"
#: Methods every route has implicitly; not described.
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_CONVERTER = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?(?P<name>\w+)>")
#: The error answers every operation may give, beyond those it lists.
_ERROR_TEXT = {
    "400": "the body or a parameter is invalid",
    "401": "missing or invalid credentials",
    "415": "the body is not JSON",
    "500": "the connector failed unexpectedly",
}
DESCRIPTION = (
    "Turns Braze and SFMC campaign sends (one webhook per recipient) and generic "
    "API requests into exactly one Punchh mass-offer campaign per send."
)


def openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """werkzeug `<path:x>` → OpenAPI `{x}`, with the path parameters it names."""
    params: list[dict[str, Any]] = []

    def replace(match: re.Match[str]) -> str:
        conv = match.group("conv") or "string"
        kind = {"int": "integer", "float": "number"}.get(conv, "string")
        param: dict[str, Any] = {
            "name": match.group("name"),
            "in": "path",
            "required": True,
            "schema": {"type": kind},
        }
        if conv == "path":
            param["description"] = "may contain slashes"
        params.append(param)
        return "{" + match.group("name") + "}"

    return _CONVERTER.sub(replace, rule), params


def _described(endpoint: str) -> bool:
    return endpoint != "static" and not endpoint.endswith(".static")


def routes(app: Flask) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every described route of the app."""
    found: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if not _described(rule.endpoint):
            continue
        path, _ = openapi_path(rule.rule)
        for method in (rule.methods or set()) - IMPLICIT_METHODS:
            found.add((path, method.lower()))
    return found


def _response(reply: Reply) -> dict[str, Any]:
    if reply.schema is not None:
        schema: Any = reply.schema
    elif reply.content_type:
        schema = {"type": "object" if "json" in reply.content_type else "string"}
    else:
        return {"description": reply.description}
    return {"description": reply.description, "content": {reply.content_type: {"schema": schema}}}


def _parameters(op: Op) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "query", "required": False, "schema": {"type": kind},
         "description": text}
        for name, kind, text in op.query
    ]
    for header in op.headers:
        parameter: dict[str, Any] = {
            "name": header.name, "in": "header", "required": True,
            "description": header.description,
            "schema": {"type": "string", "minLength": 1, "maxLength": header.max_length},
        }
        if header.example is not None:
            parameter["example"] = header.example
        parameters.append(parameter)
    return parameters


def _operation(app: Flask, endpoint: str, method: str) -> dict[str, Any]:
    blueprint = endpoint.partition(".")[0] if "." in endpoint else ""
    op = OPERATIONS.get(endpoint) or Op(tag=blueprint or "other")
    view = app.view_functions.get(endpoint)
    doc = (view.__doc__ or "").strip().splitlines() if view is not None else []
    security = op.security if op.security is not None else BLUEPRINT_SECURITY.get(blueprint, ())
    operation: dict[str, Any] = {
        "operationId": f"{endpoint.replace('.', '_')}_{method.lower()}",
        "summary": op.summary or (doc[0] if doc else endpoint),
        "tags": [op.tag or blueprint or "other"],
        "security": [{name: []} for name in security],
        "responses": {},
    }
    parameters = _parameters(op)
    if parameters:
        operation["parameters"] = parameters
    if method in BODY_METHODS:
        media: dict[str, Any] = {"schema": op.body or {"type": "object"}}
        if op.body_example is not None:
            media["example"] = op.body_example
        operation["requestBody"] = {
            "required": op.body_required, "content": {op.body_type: media},
        }
    for status, reply in (op.responses or {"200": Reply("success")}).items():
        operation["responses"][status] = _response(reply)
    error_statuses = ["400", "415"] if method in BODY_METHODS else []
    if security:
        error_statuses.append("401")
    error_statuses.append("500")
    for status in error_statuses:
        operation["responses"].setdefault(
            status, _response(Reply(_ERROR_TEXT[status], ErrorSchema, JSON))
        )
    return operation


def _unregistered(schema: type[Schema] | Schema) -> str:
    """The plugin met a schema nobody registered: say so rather than invent a name."""
    raise LookupError(f"{schema!r} is used by the OpenAPI document but not in COMPONENTS")


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3 document for every route of `app`."""
    plugin = MarshmallowPlugin(schema_name_resolver=_unregistered)
    spec = APISpec(
        title="punchh-connector",
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": DESCRIPTION},
    )
    plugin.map_to_openapi_type(StartTime, "string", "date-time")  # type: ignore[no-untyped-call]
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, schema in COMPONENTS:
        spec.components.schema(name, schema=schema)

    paths: dict[str, dict[str, Any]] = {}
    path_params: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not _described(rule.endpoint):
            continue
        path, params = openapi_path(rule.rule)
        path_params[path] = params
        for method in sorted((rule.methods or set()) - IMPLICIT_METHODS):
            operation = _operation(app, rule.endpoint, method)
            base, n = operation["operationId"], 2
            while operation["operationId"] in seen:  # one view on several rules
                operation["operationId"] = f"{base}_{n}"
                n += 1
            seen.add(operation["operationId"])
            paths.setdefault(path, {})[method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations, parameters=path_params[path] or None)
    return spec.to_dict()
