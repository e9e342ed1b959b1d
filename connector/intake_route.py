"""A per-recipient route's one decision, and the two doors that call it.

Braze's webhook and SFMC's execute are called once per recipient. Each route has one function,
`decide(settings, headers, body)`, that checks the credentials and the media type, parses the
body through the route's adapter, and returns either a `Submit` (count this request on its
send, then answer with `answer`) or the adapter's parsed test send, which Flask answers (it
asks Punchh). A refusal is raised as one of wiring/errors.py's types.

The Flask view calls it with the request's body (`RequestBody`); the intake lane
(connector/intake_lane.py) calls it beneath Flask with the body it read itself. So a check
added to `decide` holds at both doors, and the lane can only answer as the view would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Request, Response, g
from werkzeug.datastructures import Headers

from adapters.types import DistributionRequest, Guest
from connector.bodies import json_response
from ledger.intake import submit
from ledger.states import IntakeResult
from wiring.services import Services, current_services
from wiring.settings import Settings

#: The status and JSON body that answer one counted request.
Answer = Callable[[DistributionRequest, IntakeResult], tuple[int, dict[str, Any]]]


class Body(Protocol):
    """A request body, read only when the decision needs it (after the credentials)."""

    def read(self) -> bytes:
        """The raw body."""

    def form(self) -> dict[str, str]:
        """A form body's fields."""


#: A route's decision: a Submit, or anything else for Flask to answer (a test send).
Decide = Callable[[Settings, Headers, Body], object]


@dataclass(frozen=True, slots=True)
class Submit:
    """Count `request` on its send, then answer with `answer(request, result)`."""

    request: DistributionRequest
    answer: Answer
    #: Audience mode: the recipient's identifier, stored with the count (ledger/audience.py).
    guest: Guest | None = None


@dataclass(frozen=True)
class IntakeRoute:
    """What the intake lane needs to serve one per-recipient route beneath Flask."""

    #: The Flask endpoint; the lane finds its path in the app's URL map.
    endpoint: str
    #: The source named in the access log and the refusal counters.
    source: str
    decide: Decide
    #: What the route's blueprint hooks add to a JSON answer, and those hooks: the lane adds
    #: the headers in the hooks' stead.
    headers: tuple[tuple[str, str], ...] = ()
    hooks: tuple[Callable[..., Any], ...] = ()


class RequestBody:
    """The Flask request's body, read as the view always read it."""

    __slots__ = ("request",)

    def __init__(self, request: Request) -> None:
        self.request = request

    def read(self) -> bytes:
        """The raw body, not kept (the view reads it once); 413 above MAX_CONTENT_LENGTH."""
        return self.request.get_data(cache=False)

    def form(self) -> dict[str, str]:
        """A URL-encoded or multipart form's fields, one value each."""
        return self.request.form.to_dict(flat=True)


def count(svc: Services, decision: Submit) -> IntakeResult:
    """The intake step both doors take: the ledger and queue, with alerts as configured."""
    alerts = bool(svc.settings.alert_webhook_url)
    return submit(svc.ledger, svc.queue, decision.request, alerts=alerts, guest=decision.guest)


def counted(decision: Submit) -> Response:
    """The Flask view's side of a Submit: count it, note it for the access log, answer."""
    result = count(current_services(), decision)
    g.distribution_id = result.distribution_id
    g.outcome = result.outcome
    status, body = decision.answer(decision.request, result)
    return json_response(body, status)
