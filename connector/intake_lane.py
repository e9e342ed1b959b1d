"""The intake lane: the two per-recipient routes answered beneath Flask, on their happy path.

A Braze send is one `POST /webhooks/braze` per recipient and an SFMC journey one
`POST /sfmc/execute` per contact, and nearly every one of them is counted with a single Redis
round trip. Flask's own per-request machinery (request and app contexts, routing, `g`, the
response object, the hooks) cost about as much CPU as that round trip (bench/README.md), so
this WSGI layer answers those requests itself when everything about them is in order. It uses
the same pieces as the Flask views: the adapters, the bearer and JWT checks, `submit`, the
views' own answer builders, the error shapes and the access log.

Anything else goes to Flask untouched, with the body it read handed on: other routes and
methods, a missing or oversized Content-Length, a form body, a bad token or JWT, a body that
does not parse, a test send. So every refusal is still written once, in its Flask view, and
the lane can only ever answer the way the view would. Once `submit` has been called the lane
answers itself, Redis outages (503) and unexpected failures (500) included, so a request is
never submitted twice.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis
from marshmallow import ValidationError
from werkzeug.http import HTTP_STATUS_CODES

from adapters import braze as braze_adapter
from adapters import sfmc as sfmc_adapter
from adapters.types import DistributionRequest
from connector import request_log
from connector.auth import bearer_token, token_matches
from connector.bodies import is_json_type, mimetype_of, parse_json
from connector.braze import intake_answer
from connector.errors import body_of, internal_error, storage_unavailable
from connector.sfmc.blueprint import FRAME_ANCESTORS
from connector.sfmc.execute import execute_answer
from connector.sfmc.jwt_body import decode_body
from ledger.intake import submit
from ledger.states import IntakeResult
from wiring.errors import ApiError
from wiring.services import Services

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
#: What a route needs to answer one counted request: the status and the JSON body.
Answer = Callable[[DistributionRequest, IntakeResult], tuple[int, dict[str, Any]]]

BRAZE_PATH = "/webhooks/braze"
SFMC_EXECUTE_PATH = "/sfmc/execute"

#: The headers the sfmc blueprint puts on every non-HTML answer.
_SFMC_HEADERS = (
    ("Content-Security-Policy", FRAME_ANCESTORS),
    ("X-Content-Type-Options", "nosniff"),
)


def _execute_answer(req: DistributionRequest, result: IntakeResult) -> tuple[int, dict[str, Any]]:
    return 200, execute_answer(result)


class IntakeLane:
    """WSGI middleware in front of the Flask app (see the module docstring)."""

    def __init__(self, app: WSGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        self.max_body = services.settings.max_body_bytes
        self.routes: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
            BRAZE_PATH: self._braze,
            SFMC_EXECUTE_PATH: self._sfmc_execute,
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            route = self.routes.get(environ.get("PATH_INFO", ""))
            if route is not None:
                environ["connector.started"] = time.perf_counter()
                return route(environ, start_response)
        return self.app(environ, start_response)

    # --- the routes ----------------------------------------------------------------------

    def _braze(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        settings = self.services.settings
        if not (
            token_matches(
                bearer_token(environ.get("HTTP_AUTHORIZATION")), settings.braze_webhook_tokens
            )
            and is_json_type(mimetype_of(environ.get("CONTENT_TYPE", "")))
        ):
            return self.app(environ, start_response)  # the body is not even read here
        body = self._read(environ)
        if body is None:
            return self.app(environ, start_response)
        try:
            call = braze_adapter.parse(parse_json(body))
        except (ApiError, ValidationError):
            return self.app(environ, start_response)
        if call.test_send:
            return self.app(environ, start_response)
        return self._submit(environ, start_response, call.request, intake_answer, "braze", ())

    def _sfmc_execute(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        body = self._read(environ)
        if body is None:
            return self.app(environ, start_response)
        settings = self.services.settings
        try:
            claims = decode_body(
                body,
                mimetype_of(environ.get("CONTENT_TYPE", "")),
                settings.sfmc_jwt_secrets,
                allow_plain_json=settings.sfmc_allow_plain_json,
            )
            parsed = sfmc_adapter.parse_execute(claims)
        except (ApiError, ValidationError):
            return self.app(environ, start_response)
        if parsed.test:
            return self.app(environ, start_response)
        return self._submit(
            environ, start_response, parsed.request, _execute_answer, "sfmc", _SFMC_HEADERS
        )

    # --- the shared parts ----------------------------------------------------------------

    def _read(self, environ: Environ) -> bytes | None:
        """The whole body when its length is declared and allowed, else None (Flask decides).

        What was read is put back as `wsgi.input`, so Flask sees the same body.
        """
        if environ.get("HTTP_TRANSFER_ENCODING"):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 < length <= self.max_body:
            return None
        body: bytes = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        return body if len(body) == length else None

    def _submit(
        self,
        environ: Environ,
        start_response: StartResponse,
        req: DistributionRequest,
        answer: Answer,
        source: str,
        extra_headers: tuple[tuple[str, str], ...],
    ) -> Iterable[bytes]:
        """Count the request, answer it, and write the access-log line."""
        request_id = request_log.start(environ.get("HTTP_X_REQUEST_ID"))
        outcome = distribution_id = None
        headers: dict[str, str] = {}
        try:
            result = submit(self.services, req)
        except redis.RedisError as exc:
            status, payload, headers = _refusal(storage_unavailable(exc))
        except Exception as exc:  # the Flask app's last-resort handler, here
            status, payload, headers = _refusal(internal_error(exc))
        else:
            outcome, distribution_id = result.outcome, result.distribution_id
            status, payload = answer(req, result)
        data = json.dumps(payload, separators=(",", ":")).encode()
        start_response(
            f"{status} {HTTP_STATUS_CODES[status].upper()}",  # as werkzeug writes it
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                *headers.items(),
                *extra_headers,
                ("X-Request-ID", request_id),
            ],
        )
        request_log.finish(
            self.services,
            method="POST",
            path=environ.get("PATH_INFO", ""),
            status=status,
            request_id=request_id,
            started=environ.get("connector.started"),
            source=source,
            outcome=outcome,
            distribution_id=distribution_id,
        )
        return [data]


def _refusal(error: ApiError) -> tuple[int, dict[str, Any], dict[str, str]]:
    return error.status, body_of(error), error.headers
