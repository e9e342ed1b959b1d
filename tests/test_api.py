"""The generic API: auth, validation, idempotency, conflicts, limits, status and lists."""

from __future__ import annotations

import json

import httpx
import pytest
import redis
from flask.testing import FlaskClient

from tests.conftest import auth
from wiring.services import Services

BODY = {"segment": "Lapsed 90 days", "redeemable": "Free Coffee"}


def post(  # type: ignore[no-untyped-def]
    client: FlaskClient, body: object, key: str | None = "key-1", **headers: str
):
    all_headers = {**auth(), **headers}
    if key is not None:
        all_headers["Idempotency-Key"] = key
    return client.post("/v1/distributions", json=body, headers=all_headers)


def queued_jobs(services: Services) -> int:
    return len(services.queue.get_job_ids())


def test_accepts_once_and_counts_duplicates(client: FlaskClient, services: Services) -> None:
    first = post(client, BODY)
    assert first.status_code == 202
    assert first.json == {
        "distribution_id": "api:default:key-1",
        "state": "queued",
        "created": True,
    }
    assert first.headers["Location"] == "/v1/distributions/api:default:key-1"
    for _ in range(3):
        again = post(client, BODY)
        assert again.status_code == 202
        assert again.json["created"] is False
    assert queued_jobs(services) == 1
    shown = client.get("/v1/distributions/api:default:key-1", headers=auth())
    assert shown.status_code == 200
    assert shown.json["recipients"] == 4
    assert shown.json["segment"] == "Lapsed 90 days"
    assert shown.json["state"] == "queued"


def test_same_key_different_offer_is_a_conflict(client: FlaskClient, services: Services) -> None:
    post(client, BODY)
    clash = post(client, {**BODY, "redeemable": "Free Dessert"})
    assert clash.status_code == 422
    assert clash.json["error"]["code"] == "conflict"
    assert "Free Coffee" in clash.json["error"]["message"]
    assert queued_jobs(services) == 1


@pytest.mark.parametrize(
    ("body", "key", "status", "code", "needle"),
    [
        (BODY, None, 400, "invalid_fields", "Idempotency-Key"),
        (BODY, "   ", 400, "invalid_fields", "Idempotency-Key"),
        (BODY, "x" * 201, 400, "invalid_fields", "Idempotency-Key"),
        ({"segment": "Lapsed 90 days"}, "k", 400, "invalid_fields", "redeemable"),
        ({**BODY, "segment": "  "}, "k", 400, "invalid_fields", "segment"),
        ({**BODY, "segment": 7}, "k", 400, "invalid_fields", "segment"),
        ({**BODY, "start_time": "tomorrow"}, "k", 400, "invalid_fields", "start_time"),
        ({**BODY, "start_time": "2026-11-25"}, "k", 400, "invalid_fields", "start_time"),
        ({**BODY, "segmnt": "typo"}, "k", 400, "invalid_fields", "segmnt"),
        ([BODY], "k", 400, "invalid_fields", "JSON object"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    client: FlaskClient,
    rdb: redis.Redis,
    body: object,
    key: str | None,
    status: int,
    code: str,
    needle: str,
) -> None:
    reply = post(client, body, key)
    assert reply.status_code == status
    assert reply.json["error"]["code"] == code
    assert needle in reply.json["error"]["message"]
    assert rdb.keys("pc:d:*") == []


def test_malformed_json_and_content_types(client: FlaskClient, rdb: redis.Redis) -> None:
    headers = {**auth(), "Idempotency-Key": "k"}
    cases = [
        (b"{", "application/json", 400, "not valid JSON"),
        (b'{"segment":"a","segment":"b","redeemable":"c"}', "application/json", 400, "duplicate"),
        (b"\xff\xfe{}", "application/json", 400, "UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "application/json", 413, "larger"),
        (b"segment=a", "text/plain", 415, "application/json"),
        (b"", "application/json", 400, "empty"),
    ]
    for raw, ctype, status, needle in cases:
        reply = client.post(
            "/v1/distributions", data=raw, headers={**headers, "Content-Type": ctype}
        )
        assert reply.status_code == status, (raw[:20], reply.json)
        assert needle in reply.json["error"]["message"]
    deep = b"[" * 5000 + b"]" * 5000
    reply = client.post(
        "/v1/distributions", data=deep, headers={**headers, "Content-Type": "application/json"}
    )
    assert reply.status_code == 400
    assert rdb.keys("pc:d:*") == []


def test_bad_tokens_get_401(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dGVzdA=="}):
        reply = client.post("/v1/distributions", json=BODY, headers=headers)
        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/v1/segments").status_code == 401


def test_oversized_body_is_413(client: FlaskClient, rdb: redis.Redis) -> None:
    big = {**BODY, "campaign_name": "x" * 70_000}
    reply = post(client, big)
    assert reply.status_code == 413
    assert reply.json["error"]["code"] == "request_entity_too_large"
    assert rdb.keys("pc:d:*") == []


def test_redis_down_is_503_with_retry_after(
    settings: object, sandbox: httpx.Client
) -> None:
    from connector import create_app
    from wiring.settings import Settings

    assert isinstance(settings, Settings)
    down = settings.with_overrides(redis_url="redis://127.0.0.1:1/0")
    app = create_app(down)
    reply = app.test_client().post(
        "/v1/distributions", json=BODY, headers={**auth(), "Idempotency-Key": "k"}
    )
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "10"
    assert reply.json["error"]["code"] == "storage_unavailable"


def test_unknown_distribution_is_404(client: FlaskClient) -> None:
    reply = client.get("/v1/distributions/api:default:nope", headers=auth())
    assert reply.status_code == 404


def test_lists_come_from_punchh_through_the_cache(
    client: FlaskClient, sandbox: httpx.Client
) -> None:
    reply = client.get("/v1/segments?query=lapsed", headers=auth())
    assert reply.status_code == 200
    names = [s["name"] for s in reply.json["items"]]
    assert "Lapsed 90 days" in names and "Loyalty Members" not in names
    reds = client.get("/v1/redeemables?query=coffee", headers=auth()).json["items"]
    assert any(r["name"] == "Free Coffee" and r["redeemable_uuid"] for r in reds)


def test_start_time_is_kept_in_utc(client: FlaskClient, services: Services) -> None:
    reply = post(client, {**BODY, "start_time": "2030-01-02T10:00:00+05:30"}, "tz")
    assert reply.status_code == 202
    dist = services.ledger.get("api:default:tz")
    assert dist is not None
    assert dist.fields["start_time_requested"] == "2030-01-02T04:30:00Z"
    assert json.loads(json.dumps(dist.as_dict()))["start_time_requested"] == "2030-01-02T04:30:00Z"
