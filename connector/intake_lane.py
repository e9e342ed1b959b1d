"""The intake lane: the per-recipient routes answered beneath Flask, on their happy path.

A Braze send is one `POST /webhooks/braze` per recipient and an SFMC journey one
`POST /sfmc/execute` per contact, and nearly every one of them is counted with a single Redis
round trip. Flask's own per-request machinery (request and app contexts, routing, `g`, the
response object, the hooks) costs about as much CPU as that round trip (bench/README.md), so
this WSGI layer answers those requests itself when everything about them is in order.

It decides nothing of its own: each route's `decide` (connector/intake_route.py) is the one its
Flask view calls. Whatever `decide` does not turn into a `Submit` — a refusal, a test send, a
body the lane does not read (form, chunked, oversized, no Content-Length) — goes to Flask
untouched, with the body it read handed on, so every refusal is written once, by the app. Once
`submit` has been called the lane answers itself, Redis outages and faults included (through
the app's own `errors.refusal`), so a request is never submitted twice.

The routes' paths come from the app's URL map, the access log and request id from the same
`request_log` functions as the app's hooks, and the blueprint's headers from the route. The
lane refuses to start when the app has a hook or error handler it would skip (`skipped_hooks`).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import HTTP_STATUS_CODES

from connector import errors, request_log
from connector.intake_route import IntakeRoute, Submit, count
from wiring.services import Services

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: The app-wide hooks whose work the lane does itself (request_log.start and .finish).
APP_HOOKS: frozenset[Callable[..., Any]] = frozenset(
    {request_log.begin_request, request_log.end_request}
)


class HandToFlask(Exception):
    """The lane leaves this request to Flask; nothing has been counted."""


class LaneBody:
    """The body as the lane reads it: whole, its length declared and allowed; else Flask's.

    What was read is put back as `wsgi.input`, so Flask sees the same body.
    """

    __slots__ = ("environ", "limit")

    def __init__(self, environ: Environ, limit: int) -> None:
        self.environ = environ
        self.limit = limit

    def read(self) -> bytes:
        """The body, or HandToFlask when Flask must read it (and answer for its size)."""
        environ = self.environ
        if environ.get("HTTP_TRANSFER_ENCODING"):
            raise HandToFlask
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            raise HandToFlask from None
        if not 0 < length <= self.limit:
            raise HandToFlask
        body: bytes = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        if len(body) != length:
            raise HandToFlask
        return body

    def form(self) -> dict[str, str]:
        """Forms are Flask's to parse."""
        raise HandToFlask


class IntakeLane:
    """WSGI middleware in front of the Flask app (see the module docstring)."""

    def __init__(self, app: WSGIApp, services: Services, routes: dict[str, IntakeRoute]) -> None:
        self.app = app
        self.services = services
        self.settings = services.settings
        self.max_body = services.settings.max_body_bytes
        #: Path → route, for POST.
        self.routes = routes

    @classmethod
    def wrap(cls, app: Flask, services: Services, routes: Iterable[IntakeRoute]) -> IntakeLane:
        """The lane in front of `app.wsgi_app`, serving `routes` where app's URL map has them."""
        routes = tuple(routes)
        skipped = skipped_hooks(app, routes)
        if skipped:
            raise RuntimeError(
                "the intake lane would skip these on its routes: " + "; ".join(skipped)
                + " (make the lane do the same work, then list the hook in its route or "
                "APP_HOOKS, in connector/intake_lane.py)"
            )
        return cls(app.wsgi_app, services, route_paths(app, routes))

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            route = self.routes.get(environ.get("PATH_INFO", ""))
            if route is not None:
                return self._serve(route, environ, start_response)
        return self.app(environ, start_response)

    def _serve(
        self, route: IntakeRoute, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        """The route's decision; a Submit is counted and answered here, the rest by Flask."""
        started = time.perf_counter()
        try:
            decision = route.decide(
                self.settings, EnvironHeaders(environ), LaneBody(environ, self.max_body)
            )
        except Exception:  # a refusal, a body the lane does not read, or a fault: Flask's
            return self.app(environ, start_response)
        if not isinstance(decision, Submit):  # a test send
            return self.app(environ, start_response)
        request_id = request_log.start(environ.get("HTTP_X_REQUEST_ID"))
        outcome = distribution_id = None
        error_headers: dict[str, str] = {}
        try:
            result = count(self.services, decision)
        except Exception as exc:  # answered as the app's error handler answers it
            error = errors.refusal(exc)
            status, payload, error_headers = error.status, errors.body_of(error), error.headers
        else:
            outcome, distribution_id = result.outcome, result.distribution_id
            status, payload = decision.answer(decision.request, result)
        data = json.dumps(payload, separators=(",", ":")).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            *error_headers.items(),
            *route.headers,
        ]
        headers += request_log.finish(
            self.services,
            method="POST",
            path=environ.get("PATH_INFO", ""),
            status=status,
            request_id=request_id,
            started=started,
            source=route.source,
            outcome=outcome,
            distribution_id=distribution_id,
        )
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)  # as werkzeug
        return [data]


def route_paths(app: Flask, routes: Iterable[IntakeRoute]) -> dict[str, IntakeRoute]:
    """Each route's path, from the app's URL map (a POST rule without variables)."""
    by_endpoint = {route.endpoint: route for route in routes}
    paths: dict[str, IntakeRoute] = {}
    for rule in app.url_map.iter_rules():
        route = by_endpoint.get(rule.endpoint)
        if route is None:
            continue
        if rule.arguments or "POST" not in (rule.methods or ()):
            raise RuntimeError(f"the intake lane serves fixed POST paths, not {rule.rule}")
        paths[rule.rule] = route
    missing = set(by_endpoint) - {route.endpoint for route in paths.values()}
    if missing:
        raise RuntimeError(f"no route in the app for {', '.join(sorted(missing))}")
    return paths


def skipped_hooks(app: Flask, routes: Iterable[IntakeRoute]) -> list[str]:
    """The app's hooks and error handlers that Flask would run on a lane route, and the lane not.

    The lane mirrors APP_HOOKS, each route's own `hooks`, and the one error handler (through
    `errors.refusal`); anything else registered for the app or a route's blueprint is listed.
    """
    skipped = [f"teardown_appcontext {f.__qualname__}" for f in app.teardown_appcontext_funcs]
    for route in routes:
        mirrored = APP_HOOKS | set(route.hooks)
        for scope in _scopes(route.endpoint):
            where = scope or "app"
            for kind, registry in (
                ("before_request", app.before_request_funcs),
                ("after_request", app.after_request_funcs),
                ("teardown_request", app.teardown_request_funcs),
                ("url_value_preprocessor", app.url_value_preprocessors),
            ):
                skipped += [
                    f"{kind} {func.__qualname__} ({where})"
                    for func in registry.get(scope, ())
                    if func not in mirrored
                ]
            for handlers in app.error_handler_spec.get(scope, {}).values():
                skipped += [
                    f"errorhandler({exc.__name__}) {handler.__qualname__} ({where})"
                    for exc, handler in handlers.items()
                    if handler is not errors.handle_error
                ]
    return list(dict.fromkeys(skipped))  # app-wide ones once, however many routes


def _scopes(endpoint: str) -> list[str | None]:
    """Where Flask looks for an endpoint's hooks: the app, then each enclosing blueprint."""
    scopes: list[str | None] = [None]
    blueprint = endpoint.rpartition(".")[0]
    while blueprint:
        scopes.append(blueprint)
        blueprint = blueprint.rpartition(".")[0]
    return scopes
