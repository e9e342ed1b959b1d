"""Reading request bodies strictly: JSON objects only, no duplicate keys, clear refusals."""

from __future__ import annotations

import json
from typing import Any

from flask import Request, Response
from marshmallow import ValidationError

from wiring.errors import InvalidBody, InvalidFields, UnsupportedMediaType


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse an object that names a key twice: which value wins differs between parsers."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


class JsonError(ValueError):
    """Text that is not strict JSON; the message says why, without echoing values."""


def loads(raw: bytes | str, *, unique_keys: bool = True) -> Any:
    """The one JSON decoder for what callers send us: bodies, wrappers, JWT parts.

    UTF-8, no duplicate keys (unless `unique_keys` is off: a signed JWT's parts, where RFC 7515
    allows the last one to win and the check would cost the per-contact path), and every way
    it can fail is a JsonError: a body nested deeper than Python's recursion limit (one byte a
    level, so far under MAX_BODY_BYTES) raises RecursionError inside `json`, which would
    otherwise escape every caller as a 500.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise JsonError("the body is not valid UTF-8") from exc
    try:
        if not unique_keys:
            return json.loads(text)
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError as exc:
        raise JsonError("the JSON body is nested too deeply") from exc
    except ValueError as exc:
        raise JsonError(f"the body is not valid JSON: {exc}") from exc


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body or raise InvalidBody saying what is wrong with it."""
    if not raw:
        raise InvalidBody("the body is empty; send a JSON object")
    try:
        return loads(raw)
    except JsonError as exc:
        raise InvalidBody(str(exc)) from exc


def is_json_type(mimetype: str) -> bool:
    """application/json or any +json type (`mimetype` lower-case, without parameters)."""
    return mimetype == "application/json" or mimetype.endswith("+json")


def is_json(request: Request) -> bool:
    """application/json or any +json type."""
    return is_json_type(request.mimetype or "")


def mimetype_of(content_type: str) -> str:
    """The media type of a Content-Type header, lower-case, without its parameters."""
    return content_type.partition(";")[0].strip().lower()


def json_body(request: Request) -> Any:
    """The request's JSON body; 415 for another content type."""
    if not is_json(request):
        raise UnsupportedMediaType(
            f"send Content-Type: application/json (got {request.mimetype or 'none'})"
        )
    return parse_json(request.get_data(cache=False))


def field_errors(exc: ValidationError) -> InvalidFields:
    """A 400 naming each field that is wrong and why."""
    messages: dict[str, Any] = exc.normalized_messages()  # type: ignore[no-untyped-call]
    parts = []
    for name, problem in sorted(messages.items()):
        text = "; ".join(map(str, problem)) if isinstance(problem, list) else str(problem)
        parts.append(f"{name}: {text}")
    return InvalidFields("invalid request: " + ", ".join(parts), fields=messages)


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    """A small JSON answer without Flask's provider machinery (what `jsonify` costs on the
    per-recipient path is measured in bench/profile_intake.py)."""
    return Response(
        json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json"
    )
