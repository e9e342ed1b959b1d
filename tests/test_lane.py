"""The intake lane answers exactly as the Flask views would, and hands everything else on."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Blueprint, Flask, Response
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.test import Client, TestResponse

from connector import braze as braze_view
from connector import create_app, request_log
from connector import intake_lane as lane
from connector.intake_lane import IntakeLane, route_paths, skipped_hooks
from connector.sfmc import execute as execute_view
from tests.sfmc_sim import execute_claims, sign
from wiring.services import Services
from wiring.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

BRAZE_TOKEN = {"Authorization": "Bearer braze-token-1"}
JWT_TYPE = {"Content-Type": "application/jwt"}


def braze_body(campaign: str, **changes: Any) -> dict[str, Any]:
    """A rendered Braze webhook body, with guest fields the connector must drop."""
    body = {
        "punchh_segment": "Lapsed 90 days",
        "punchh_redeemable": "Free Coffee",
        "campaign_id": campaign,
        "campaign_name": "Winback",
        "send_key": "disp-1",
        "dispatch_id": "disp-1",
        "user_id": "guest-1",
        "email": "guest1@example.com",
    }
    body.update(changes)
    return body


class Paths:
    """The same app reached two ways: through the lane, and straight into Flask."""

    def __init__(self, app: Flask) -> None:
        assert isinstance(app.wsgi_app, IntakeLane)
        self.flask_calls = 0

        def count(environ: dict[str, Any], start_response: Any) -> Any:
            self.flask_calls += 1
            return flask_wsgi(environ, start_response)

        flask_wsgi = app.wsgi_app.app
        app.wsgi_app.app = count
        self.lane = Client(app)
        self.flask = Client(flask_wsgi)


@pytest.fixture
def paths(app: Flask) -> Paths:
    return Paths(app)


def comparable(
    response: TestResponse, *renames: tuple[str, str]
) -> tuple[str, Any, dict[str, str]]:
    """Status line, JSON body and headers, the per-request id and run-specific names masked."""
    text = response.get_data(as_text=True)
    for old, new in renames:
        text = text.replace(old, new)
    headers = {k: v for k, v in response.headers.items() if k != "X-Request-ID"}
    assert response.headers.get("X-Request-ID")
    return response.status, json.loads(text), headers


def braze(client: Client, body: Any, **headers: str) -> TestResponse:
    return client.post("/webhooks/braze", json=body, headers={**BRAZE_TOKEN, **headers})


def test_braze_answers_match_the_view_and_skip_flask(paths: Paths, services: Services) -> None:
    seen = []
    for client, campaign in ((paths.flask, "cmp-flsk"), (paths.lane, "cmp-lane")):
        seen.append(
            [
                comparable(braze(client, braze_body(campaign)), (campaign, "C")),  # created
                comparable(braze(client, braze_body(campaign)), (campaign, "C")),  # counted
                comparable(  # same send, another offer: 409
                    braze(client, braze_body(campaign, punchh_redeemable="Free Dessert")),
                    (campaign, "C"),
                ),
            ]
        )
    assert seen[0] == seen[1]
    assert [s for s, _, _ in seen[1]] == ["202 ACCEPTED", "202 ACCEPTED", "409 CONFLICT"]
    assert paths.flask_calls == 0  # every one of them was answered by the lane
    record = services.ledger.get("braze:cmp-lane:disp-1")
    assert record is not None and record.int_field("recipients") == 2
    assert record.int_field("conflicts") == 1


def test_sfmc_execute_answers_match_the_view_and_skip_flask(
    paths: Paths, services: Services
) -> None:
    seen = []
    for client, journey in ((paths.flask, "j-flsk"), (paths.lane, "j-lane")):
        first = execute_claims(journey_id=journey)
        answers = [
            client.post("/sfmc/execute", data=sign(first), headers=JWT_TYPE),  # accepted
            client.post("/sfmc/execute", data=sign(first), headers=JWT_TYPE),  # a retry
            client.post(  # another contact
                "/sfmc/execute", data=sign(execute_claims(journey_id=journey)), headers=JWT_TYPE
            ),
        ]
        seen.append([comparable(a, (journey, "J")) for a in answers])
    assert seen[0] == seen[1]
    assert [b["punchh_status"] for _, b, _ in seen[1]] == ["accepted", "counted", "counted"]
    headers = seen[1][0][2]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors" in headers["Content-Security-Policy"]
    assert paths.flask_calls == 0
    ids = [b["punchh_distribution_id"] for _, b, _ in seen[1]]
    record = services.ledger.get(ids[0].replace("J", "j-lane"))
    assert record is not None and record.int_field("recipients") == 2  # the retry counted once


# Every request the lane must not answer itself: Flask answers, exactly as without the lane.
HANDED_ON: dict[str, Callable[[Client], TestResponse]] = {
    "no token": lambda c: c.post("/webhooks/braze", json=braze_body("cmp-1")),
    "wrong token": lambda c: braze(c, braze_body("cmp-1"), Authorization="Bearer nope"),
    "form body": lambda c: c.post("/webhooks/braze", data=braze_body("cmp-1"), headers=BRAZE_TOKEN),
    "text/plain": lambda c: c.post(
        "/webhooks/braze", data=json.dumps(braze_body("cmp-1")), headers={
            **BRAZE_TOKEN, "Content-Type": "text/plain"}
    ),
    "not JSON": lambda c: c.post(
        "/webhooks/braze",
        data=b"{nope",
        headers={**BRAZE_TOKEN, "Content-Type": "application/json"},
    ),
    "duplicate key": lambda c: c.post(
        "/webhooks/braze",
        data=b'{"campaign_id":"a","campaign_id":"b"}',
        headers={**BRAZE_TOKEN, "Content-Type": "application/json"},
    ),
    "missing field": lambda c: braze(c, {"campaign_id": "cmp-1"}),
    "test send": lambda c: braze(c, braze_body("cmp-1", dispatch_id="{{campaign.${dispatch_id}}}")),
    "empty body": lambda c: c.post("/webhooks/braze", data=b"", headers=BRAZE_TOKEN),
    "too large": lambda c: braze(c, braze_body("cmp-1", pad="x" * 300_000)),
    "chunked": lambda c: c.post(
        "/webhooks/braze",
        input_stream=io.BytesIO(json.dumps(braze_body("cmp-1")).encode()),
        headers={**BRAZE_TOKEN, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    ),
    "GET": lambda c: c.get("/webhooks/braze", headers=BRAZE_TOKEN),
    "trailing slash": lambda c: c.post(
        "/webhooks/braze/", json=braze_body("cmp-1"), headers=BRAZE_TOKEN
    ),
    "sfmc bad signature": lambda c: c.post(
        "/sfmc/execute", data=sign(execute_claims(), secret="not-it"), headers=JWT_TYPE
    ),
    "sfmc plain JSON": lambda c: c.post("/sfmc/execute", json=execute_claims()),
    "sfmc no offer": lambda c: c.post(
        "/sfmc/execute", data=sign(execute_claims(segment="")), headers=JWT_TYPE
    ),
    "sfmc test": lambda c: c.post(
        "/sfmc/execute",
        data=sign(execute_claims(extra_args={"punchh_test": True})),
        headers=JWT_TYPE,
    ),
}


@pytest.mark.parametrize("case", sorted(HANDED_ON))
def test_everything_else_is_handed_to_flask_unchanged(
    case: str, paths: Paths, services: Services, rdb: redis.Redis
) -> None:
    send = HANDED_ON[case]
    direct = send(paths.flask)
    assert paths.flask_calls == 0
    through = send(paths.lane)
    assert paths.flask_calls == 1, "the lane answered a request that Flask must answer"
    assert through.status_code == direct.status_code
    assert through.get_data() == direct.get_data()


def test_body_is_handed_on_intact(paths: Paths, services: Services) -> None:
    """A refused body the lane read is still what Flask reads: same field errors."""
    body = braze_body("cmp-1", punchh_segment="   ")
    answer = braze(paths.lane, body)
    assert paths.flask_calls == 1
    assert answer.status_code == 400
    assert "punchh_segment" in answer.json["error"]["fields"]  # type: ignore[index]


@pytest.fixture
def dead_redis_app(settings: Settings) -> Iterator[Flask]:
    """The app with a Redis client pointed at a port nothing listens on."""
    client = redis.Redis(port=1, retry=Retry(NoBackoff(), 0))  # refused at once, no retries
    app = create_app(settings, services=Services.build(settings, client=client))
    yield app
    client.close()


def test_redis_outage_is_503_with_retry_after(dead_redis_app: Flask) -> None:
    paths = Paths(dead_redis_app)
    for send in (
        lambda c: braze(c, braze_body("cmp-1")),
        lambda c: c.post("/sfmc/execute", data=sign(execute_claims()), headers=JWT_TYPE),
    ):
        direct, through = send(paths.flask), send(paths.lane)
        assert through.status_code == direct.status_code == 503
        assert through.json == direct.json
        assert through.json["error"]["code"] == "storage_unavailable"  # type: ignore[index]
        assert through.headers["Retry-After"] == direct.headers["Retry-After"]
    assert paths.flask_calls == 0


def test_unexpected_failure_is_500_and_logged(
    paths: Paths, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(lane, "count", broken)  # a fault nothing real here can produce
    answer = braze(paths.lane, braze_body("cmp-1"))
    assert answer.status_code == 500
    assert answer.json == {
        "error": {"code": "internal_error", "message": "the connector failed unexpectedly"}
    }
    assert "boom" not in answer.get_data(as_text=True)
    assert any(r.exc_info and r.msg == "unhandled error" for r in caplog.records)
    counters = paths.lane.application.extensions["punchh_connector"].ledger  # type: ignore[attr-defined]
    assert counters.redis.hget(counters.metrics_key, "intake:braze:500") == b"1"


def test_access_log_and_request_ids(
    paths: Paths, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request_log.install_log_filter()  # on caplog's handler too, as on every real handler
    braze(paths.lane, braze_body("cmp-1"), **{"X-Request-ID": "req-first"})
    second = braze(paths.lane, braze_body("cmp-1"), **{"X-Request-ID": "guest@example.com"})
    assert second.headers["X-Request-ID"] != "guest@example.com"
    access = [r for r in caplog.records if r.name == "connector.access"]
    first, dup = access
    assert (first.levelno, first.status, first.outcome, first.source) == (  # type: ignore[attr-defined]
        logging.INFO, 202, "created", "braze"
    )
    assert first.request_id == "req-first"  # type: ignore[attr-defined]
    assert first.distribution_id == "braze:cmp-1:disp-1"  # type: ignore[attr-defined]
    assert isinstance(first.duration_ms, float)  # type: ignore[attr-defined]
    assert (dup.levelno, dup.outcome) == (logging.DEBUG, "counted")  # type: ignore[attr-defined]
    created = [r for r in caplog.records if r.getMessage() == "distribution created"]
    assert [r.request_id for r in created] == ["req-first"]  # type: ignore[attr-defined]
    # Outside a request nothing carries a stale id.
    logging.getLogger("connector.test").warning("after")
    assert not hasattr(caplog.records[-1], "request_id")
    assert paths.flask_calls == 0


def test_the_lane_serves_the_paths_the_url_map_gives(app: Flask) -> None:
    assert isinstance(app.wsgi_app, IntakeLane)
    assert app.wsgi_app.routes == {
        "/webhooks/braze": braze_view.ROUTE,
        "/sfmc/execute": execute_view.ROUTE,
    }
    moved = Flask("moved")
    moved.add_url_rule(
        "/hooks/v2/braze", "braze.braze_webhook", lambda: "", methods=["POST"]
    )
    moved.add_url_rule("/sfmc/execute", "sfmc.execute", lambda: "", methods=["POST"])
    assert route_paths(moved, (braze_view.ROUTE, execute_view.ROUTE)) == {
        "/hooks/v2/braze": braze_view.ROUTE,
        "/sfmc/execute": execute_view.ROUTE,
    }
    with pytest.raises(RuntimeError, match=r"no route in the app for sfmc\.execute"):
        route_paths(Flask("bare"), (execute_view.ROUTE,))


def test_a_hook_the_lane_would_skip_stops_the_app(app: Flask, services: Services) -> None:
    """A new app-wide or route-blueprint hook (or error handler) runs in Flask, not the lane."""
    assert isinstance(app.wsgi_app, IntakeLane)
    routes = tuple(app.wsgi_app.routes.values())
    assert skipped_hooks(app, routes) == []

    other = Blueprint("other", __name__)

    @other.after_request
    def elsewhere(response: Response) -> Response:  # not on a lane route: no concern
        return response

    app.register_blueprint(other)
    assert skipped_hooks(app, routes) == []

    @app.before_request
    def audit() -> None:
        return None

    def stamp(response: Response) -> Response:
        return response

    app.after_request_funcs.setdefault("sfmc", []).append(stamp)
    app.teardown_request_funcs.setdefault("braze", []).append(lambda exc: None)
    app.register_error_handler(KeyError, lambda exc: ("", 500))
    found = skipped_hooks(app, routes)
    assert any(s.startswith("before_request") and "audit" in s and "(app)" in s for s in found)
    assert any(s.startswith("after_request") and "stamp" in s and "(sfmc)" in s for s in found)
    assert any(s.startswith("teardown_request") and "(braze)" in s for s in found)
    assert any(s.startswith("errorhandler(KeyError)") for s in found)
    assert not any("elsewhere" in s for s in found)
    with pytest.raises(RuntimeError, match="the intake lane would skip these"):
        IntakeLane.wrap(app, services, routes)
