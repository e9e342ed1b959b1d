"""Request ids, the access log's levels, refusal counters, and logs free of guest data."""

from __future__ import annotations

import json
import logging
import re
import time

import httpx
import pytest
import redis
from flask.testing import FlaskClient

from tests.conftest import SANDBOX_KEY, auth
from tests.procs import Proc, start_gunicorn, start_worker, wait_until
from wiring.services import Services

BODY = {"segment": "Lapsed 90 days", "redeemable": "Free Coffee"}


def post(client: FlaskClient, key: str = "k-1", **headers: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/distributions", json=BODY, headers={**auth(), "Idempotency-Key": key, **headers}
    )


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "connector.access"]


def test_request_id_is_taken_when_sane_and_made_otherwise(
    client: FlaskClient, services: Services
) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "abc-123_x.y"})
    assert kept.headers["X-Request-ID"] == "abc-123_x.y"
    made_ids = []
    for bad in ("guest@example.com", "x" * 65, "a b", ""):
        made = client.get("/healthz", headers={"X-Request-ID": bad})
        assert made.headers["X-Request-ID"] != bad
        assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", made.headers["X-Request-ID"])
        made_ids.append(made.headers["X-Request-ID"])
    assert len(set(made_ids)) == len(made_ids)
    refused = client.post("/v1/distributions", json=BODY)  # 401 from a before_request
    assert refused.status_code == 401 and refused.headers["X-Request-ID"]


def test_access_log_levels_and_fields(
    client: FlaskClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="connector.access")
    first = post(client, **{"X-Request-ID": "req-created"})
    post(client, **{"X-Request-ID": "req-duplicate"})
    client.get("/v1/distributions/nope?email=guest@example.com", headers=auth())
    records = {r.request_id: r for r in access_records(caplog)}  # type: ignore[attr-defined]
    created = records["req-created"]
    assert created.levelno == logging.INFO
    assert created.status == 202 and created.outcome == "created"  # type: ignore[attr-defined]
    assert created.distribution_id == first.json["distribution_id"]  # type: ignore[attr-defined]
    assert created.source == "api" and created.method == "POST"  # type: ignore[attr-defined]
    assert isinstance(created.duration_ms, float)  # type: ignore[attr-defined]
    duplicate = records["req-duplicate"]
    assert duplicate.levelno == logging.DEBUG  # the hot path stays quiet at INFO
    assert duplicate.outcome == "counted"  # type: ignore[attr-defined]
    missing = next(r for r in access_records(caplog) if r.status == 404)  # type: ignore[attr-defined]
    assert missing.levelno == logging.INFO
    assert missing.path == "/v1/distributions/nope"  # type: ignore[attr-defined]  # no query


def test_hot_path_logs_nothing_at_info(
    client: FlaskClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    post(client)
    caplog.clear()
    caplog.set_level(logging.INFO)
    for _ in range(20):
        assert post(client).status_code == 202
    assert caplog.records == []


def test_refused_intake_requests_are_counted_by_status(
    client: FlaskClient, services: Services
) -> None:
    post(client)  # created (counted by the intake script)
    post(client)  # counted
    client.post("/v1/distributions", json=BODY)  # 401
    post(client, key="")  # 400
    post(client, key="k-1")  # counted again
    clash = client.post(
        "/v1/distributions",
        json={**BODY, "redeemable": "Free Dessert"},
        headers={**auth(), "Idempotency-Key": "k-1"},
    )
    assert clash.status_code == 422
    client.get("/v1/distributions/x", headers=auth())  # 404, not an intake endpoint
    counters = {
        k.decode(): int(v) for k, v in services.redis.hgetall(services.ledger.metrics_key).items()
    }
    intake = {k: v for k, v in counters.items() if k.startswith("intake:")}
    assert intake == {
        "intake:api:created": 1,
        "intake:api:counted": 2,
        "intake:api:conflict": 1,  # by the script, not again as a 422
        "intake:api:401": 1,
        "intake:api:400": 1,
    }


PLANTED = {
    "email": "planted.guest.4711@example.com",
    "user_id": "planted-user-0815",
    "braze_token": "braze-token-1",
    "bad_token": "planted-wrong-token-42",
    "api_token": "test-api-token",
    "punchh_key": SANDBOX_KEY,
    "first_name": "Plantedfirstname",
}


@pytest.mark.slow
def test_logs_are_json_lines_without_guest_data_tokens_or_keys(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client
) -> None:
    env["LOG_LEVEL"] = "DEBUG"  # the most the logs ever say
    web = start_gunicorn(env, workers=1, threads=4)
    worker: Proc | None = None
    try:
        worker = start_worker(env)
        braze = {
            "punchh_segment": "Lapsed 90 days",
            "punchh_redeemable": "Free Coffee",
            "campaign_id": "planted-campaign",
            "send_key": "send-1",
            "user_id": PLANTED["user_id"],
            "email": PLANTED["email"],
            "first_name": PLANTED["first_name"],
        }
        with httpx.Client(base_url=web.url, timeout=10) as http:
            good = {"Authorization": f"Bearer {PLANTED['braze_token']}"}
            for _ in range(3):
                http.post(f"/webhooks/braze?email={PLANTED['email']}", json=braze, headers=good)
            http.post(
                "/webhooks/braze",
                json=braze,
                headers={"Authorization": f"Bearer {PLANTED['bad_token']}",
                         "X-Request-ID": PLANTED["email"]},
            )
            http.post("/webhooks/braze", json={**braze, "punchh_segment": ""}, headers=good)
            http.post(
                "/v1/distributions",
                json={**BODY, "email": PLANTED["email"]},
                headers={**auth(), "Idempotency-Key": "k"},
            )
            http.post("/v1/distributions", json=BODY,
                      headers={**auth(), "Idempotency-Key": "planted-send"})
            http.post("/v1/check", headers=auth())

            def committed() -> bool:
                reply = http.get("/v1/distributions/braze:planted-campaign:send-1", headers=auth())
                return reply.status_code == 200 and reply.json()["state"] == "committed"

            assert wait_until(committed, 30)
        time.sleep(0.3)
    finally:
        web.stop()
        if worker is not None:
            worker.stop()
    logs = web.log() + (worker.log() if worker else "")
    for name, value in PLANTED.items():
        assert value not in logs, f"{name} leaked into the logs"
    json_lines = [line for line in logs.splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in json_lines]  # every such line is one JSON object
    created = [r for r in records if r.get("msg") == "distribution created"]
    assert created and all(r.get("request_id") for r in created)
    access = [r for r in records if r.get("logger") == "connector.access"]
    assert {r["status"] for r in access} >= {202, 401, 400}
    assert all("?" not in r["path"] for r in access)
