"""Bad input, generated: every refusal is a readable 4xx and changes nothing; never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from adapters import generic
from tests.conftest import auth
from tests.procs import Proc

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=12,
)
KEYS = ["segment", "redeemable", "start_time", "campaign_name", "campaign_ref"]
BRAZE_KEYS = [
    "punchh_segment", "punchh_redeemable", "campaign_id", "canvas_id", "send_key",
    "dispatch_id", "start_time", "punchh_campaign_name", "user_id", "email",
]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from([*KEYS, "extra"]), JSONISH, max_size=6) | JSONISH,
    st.one_of(st.none(), st.text(max_size=250)),
)
def test_generic_adapter_maps_or_names_the_problem(body: Any, key: str | None) -> None:
    try:
        req = generic.to_request(body, key)
    except ValidationError as exc:
        assert exc.messages
        return
    assert req.segment and req.redeemable and req.send_key
    assert req.distribution_id.startswith("api:")


def _assert_refusal_or_accept(reply: Any, rdb: redis.Redis, before: int) -> None:
    assert reply.status_code < 500, reply.get_data(as_text=True)
    body = reply.get_json()
    if reply.status_code >= 400:
        assert body["error"]["message"], body
        assert len(rdb.keys("pc:d:*")) == before


@pytest.fixture
def fuzz_client(client: FlaskClient, rdb: redis.Redis) -> FlaskClient:
    return client


def test_live_endpoints_never_5xx_on_generated_bodies(
    fuzz_client: FlaskClient, rdb: redis.Redis
) -> None:
    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        path=st.sampled_from(["/v1/distributions", "/webhooks/braze"]),
        body=st.dictionaries(st.sampled_from(KEYS + BRAZE_KEYS), JSONISH, max_size=8) | JSONISH,
        raw=st.one_of(st.none(), st.binary(max_size=200)),
        ctype=st.sampled_from(
            ["application/json", "application/x-www-form-urlencoded", "text/plain", ""]
        ),
    )
    def run(path: str, body: Any, raw: bytes | None, ctype: str) -> None:
        headers = {"Idempotency-Key": "fuzz"}
        headers.update(
            auth() if path.startswith("/v1") else {"Authorization": "Bearer braze-token-1"}
        )
        data = raw if raw is not None else json.dumps(body).encode()
        if ctype:
            headers["Content-Type"] = ctype
        before = len(rdb.keys("pc:d:*"))
        reply = fuzz_client.post(path, data=data, headers=headers)
        _assert_refusal_or_accept(reply, rdb, before)

    run()


@pytest.mark.slow
def test_huge_headers_and_bodies_against_gunicorn(web: Proc, rdb: redis.Redis) -> None:
    body = {"segment": "Lapsed 90 days", "redeemable": "Free Coffee"}
    with httpx.Client(base_url=web.url, timeout=10) as c:
        huge_header = c.post(
            "/v1/distributions",
            json=body,
            headers={**auth(), "Idempotency-Key": "h", "X-Padding": "a" * 100_000},
        )
        assert 400 <= huge_header.status_code < 500
        many_headers = c.post(
            "/v1/distributions",
            json=body,
            headers={**auth(), "Idempotency-Key": "h", **{f"X-H{i}": "v" for i in range(200)}},
        )
        assert 400 <= many_headers.status_code < 500
        # A fresh connection: gunicorn answers 413 without reading the body, and cannot
        # reuse a connection whose unread body is still in flight.
        big_body = httpx.post(
            f"{web.url}/webhooks/braze",
            content=b'{"a":"' + b"x" * 2_000_000 + b'"}',
            headers={"Authorization": "Bearer braze-token-1", "Content-Type": "application/json"},
        )
        assert big_body.status_code == 413
        assert big_body.json()["error"]["message"]
        deep = c.post(
            "/v1/distributions",
            content=b"[" * 20_000 + b"]" * 20_000,
            headers={**auth(), "Idempotency-Key": "d", "Content-Type": "application/json"},
        )
        assert deep.status_code == 400
        assert "nested too deeply" in deep.json()["error"]["message"]
    assert rdb.keys("pc:d:*") == []
