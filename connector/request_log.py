"""Request ids, one cheap access-log line per request, and counting refused intake requests.

The hot path (a duplicate webhook counted: nearly every request of a send) logs at DEBUG
only, so a million-recipient send does not write a million INFO lines. Errors (4xx/5xx) and
requests that created a distribution log at INFO. The path is logged without its query
string, and nothing from headers or bodies is logged: no guest field, token or key.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import os
import re
import time
import uuid

import redis
from flask import Response, g, request

from wiring.services import Services, current_services

log = logging.getLogger("connector.access")

#: A caller's X-Request-ID is kept only when it looks like an id (no room for guest data).
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

#: Intake endpoints whose refusals (4xx/5xx) are counted per source; 2xx outcomes (and
#: conflicts) are counted by the intake Lua script itself. Braze and SFMC endpoints are
#: recognised by blueprint below, so new views there need no entry here.
INTAKE_ENDPOINTS: dict[str, str] = {"v1.create_distribution": "api"}

#: Outcomes the intake script has already counted: the after-request hook must not count
#: the same request again by its status.
_SCRIPT_COUNTED = frozenset({"created", "counted", "replay", "conflict"})


def intake_source(endpoint: str | None, method: str) -> str | None:
    """The source an intake endpoint serves, or None for every other endpoint."""
    if not endpoint:
        return None
    if endpoint in INTAKE_ENDPOINTS:
        return INTAKE_ENDPOINTS[endpoint]
    blueprint, _, name = endpoint.partition(".")
    if method != "POST":
        return None
    if blueprint == "braze" and "webhook" in name:
        return "braze"
    if blueprint == "sfmc" and "execute" in name:
        return "sfmc"
    return None


#: The id of the request this thread is serving: set by Flask's hook or the intake lane.
_CURRENT_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every log record written inside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Never drops a record; only annotates it."""
        if not hasattr(record, "request_id"):
            request_id = _CURRENT_ID.get()
            if request_id:
                record.request_id = request_id
        return True


_FILTER = RequestIdFilter()

#: Request ids: a random per-process prefix and a counter — unique, and cheaper than a uuid4
#: on every webhook. The prefix is drawn again in a forked child (gunicorn forks workers).
_ID_PREFIX = uuid.uuid4().hex[:12] + "-"
_ID_SEQUENCE = itertools.count(1)


def _new_prefix() -> None:
    global _ID_PREFIX, _ID_SEQUENCE
    _ID_PREFIX = uuid.uuid4().hex[:12] + "-"
    _ID_SEQUENCE = itertools.count(1)


os.register_at_fork(after_in_child=_new_prefix)


def install_log_filter() -> None:
    """Put the request-id filter on every root handler (idempotent; handlers may be rebuilt)."""
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def start(given: str | None) -> str:
    """Begin a request: take a sane X-Request-ID or make one, and bind it for log records."""
    request_id = (
        given if given and _SANE_REQUEST_ID.match(given) else f"{_ID_PREFIX}{next(_ID_SEQUENCE):x}"
    )
    _CURRENT_ID.set(request_id)
    return request_id


def finish(
    services: Services,
    *,
    method: str,
    path: str,
    status: int,
    request_id: str | None,
    started: float | None,
    source: str | None = None,
    outcome: str | None = None,
    distribution_id: str | None = None,
) -> tuple[tuple[str, str], ...]:
    """End a request: count a refused intake request, write the access-log line, unbind.

    Returns the headers every answer carries (its request id). Flask's after-request hook and
    the intake lane both end their requests here, so both log and answer alike.
    """
    if status >= 400 and outcome not in _SCRIPT_COUNTED:
        _count_refusal(services, source, status)
    level = logging.INFO if status >= 400 or outcome == "created" else logging.DEBUG
    if log.isEnabledFor(level):  # the duplicate hot path stops here at INFO
        fields: dict[str, object] = {
            "method": method,
            "path": path,  # never the query string
            "request_id": request_id,
            "pid": os.getpid(),  # which gunicorn worker process answered
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2)
            if started is not None
            else None,
        }
        for name, value in (
            ("distribution_id", distribution_id),
            ("source", source),
            ("outcome", outcome),
        ):
            if value is not None:
                fields[name] = value
        log.log(level, "request", extra=fields)
    _CURRENT_ID.set(None)
    return (("X-Request-ID", request_id),) if request_id else ()


def begin_request() -> None:
    """Flask's before-request hook: the request id and the clock."""
    g.request_started = time.perf_counter()
    g.request_id = start(request.headers.get("X-Request-ID"))


def end_request(response: Response) -> Response:
    """Flask's after-request hook: `finish`, and the headers it names."""
    for name, value in finish(
        current_services(),
        method=request.method,
        path=request.path,
        status=response.status_code,
        request_id=g.get("request_id"),
        started=g.get("request_started"),
        source=g.get("source") or intake_source(request.endpoint, request.method),
        outcome=g.get("outcome"),
        distribution_id=g.get("distribution_id"),
    ):
        response.headers[name] = value
    return response


def _count_refusal(services: Services, source: str | None, status: int) -> None:
    """HINCRBY intake:<source>:<status> for a refused webhook or API intake request."""
    if not source or status == 503:
        # 503 on intake means Redis is unreachable: counting it there would only wait on the
        # same outage (and the marketing cloud retries it anyway).
        return
    # A metric must never turn a refusal into a different error.
    with contextlib.suppress(redis.RedisError):
        services.ledger.incr(f"intake:{source}:{status}")

