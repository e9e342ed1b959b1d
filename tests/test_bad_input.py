"""Bad input, generated: every refusal is a readable 4xx and changes nothing; never a 5xx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import auth
from tests.procs import Proc
from tests.sfmc_sim import SECRETS, execute_claims
from wiring.settings import Settings

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


# --- deep nesting and bodies up to the size limit ----------------------------------------------
BRAZE_AUTH = {"Authorization": "Bearer braze-token-1"}
JWT_TYPE = {"Content-Type": "application/jwt"}
#: Deeper than Python's recursion limit, far below MAX_BODY_BYTES.
DEPTH = 5_000


def nested(depth: int, kind: str = "list") -> bytes:
    """JSON nested `depth` levels: [[[…]]] or {"a":{"a":…}}."""
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def b64(raw: bytes) -> bytes:
    """base64url without padding, as in a compact JWT."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def compact_jwt(
    payload: bytes, header: bytes = b'{"alg":"HS256","typ":"JWT"}', secret: str = SECRETS[0]
) -> bytes:
    """A compact HS256 JWT of raw header and payload bytes, signed with a configured secret."""
    signing_input = b64(header) + b"." + b64(payload)
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return signing_input + b"." + b64(signature)


def _execute_with(value: bytes) -> bytes:
    """A real execute body with `value` spliced in as one inArgument."""
    claims = execute_claims(extra_args={"note": "__HERE__"})
    return json.dumps(claims).encode().replace(b'"__HERE__"', value)


#: (name, path, headers, body): every parser a caller can reach, given a body nested too deep.
DEEP_CASES = [
    ("braze json", "/webhooks/braze", {**BRAZE_AUTH, "Content-Type": "application/json"},
     nested(DEPTH)),
    ("braze json object", "/webhooks/braze", {**BRAZE_AUTH, "Content-Type": "application/json"},
     nested(DEPTH, "object")),
    ("braze form", "/webhooks/braze",
     {**BRAZE_AUTH, "Content-Type": "application/x-www-form-urlencoded"},
     b"punchh_segment=" + nested(DEPTH)),
    ("sfmc jwt header", "/sfmc/execute", JWT_TYPE,
     compact_jwt(b"{}", header=b'{"alg":"HS256","x":' + nested(DEPTH) + b"}")),
    ("sfmc signed claims", "/sfmc/execute", JWT_TYPE, compact_jwt(_execute_with(nested(DEPTH)))),
    ("sfmc json wrapper", "/sfmc/execute", {"Content-Type": "application/json"},
     b'{"jwt":' + nested(DEPTH) + b"}"),
    ("sfmc save jwt header", "/sfmc/save", JWT_TYPE,
     compact_jwt(b"{}", header=b'{"alg":"HS256","x":' + nested(DEPTH, "object") + b"}")),
    ("v1 json", "/v1/distributions",
     {**auth(), "Idempotency-Key": "deep", "Content-Type": "application/json"}, nested(DEPTH)),
]


def _assert_json_refusal(reply: httpx.Response, name: str) -> None:
    assert 400 <= reply.status_code < 500, (name, reply.status_code, reply.text[:200])
    assert reply.headers["content-type"].startswith("application/json"), (name, reply.text[:200])
    error = reply.json()["error"]
    assert error["code"] and error["message"], (name, error)


@pytest.mark.slow
def test_deep_nesting_is_a_json_4xx_from_gunicorn(web: Proc, rdb: redis.Redis) -> None:
    """Through the intake lane and the Flask views of the real server: never a raw 500."""
    with httpx.Client(base_url=web.url, timeout=10) as c:
        for name, path, headers, body in DEEP_CASES:
            assert len(body) < Settings.max_body_bytes, name
            _assert_json_refusal(c.post(path, content=body, headers=headers), name)
    assert rdb.keys("pc:d:*") == []


#: Every route that parses a body a caller sends, with the headers that get it past auth.
PARSING_ROUTES: dict[str, dict[str, str]] = {
    "/webhooks/braze": BRAZE_AUTH,
    "/v1/distributions": {**auth(), "Idempotency-Key": "fuzz-big"},
    "/sfmc/execute": {},
    "/sfmc/save": {},
    "/sfmc/validate": {},
}


@st.composite
def big_bodies(draw: st.DrawFn, limit: int) -> tuple[str, str, bytes]:
    """(path, content type, body): plausible fields, a value nested up to thousands of levels,
    padding up to the body limit, sent as JSON, a form, a signed or unsigned JWT, or a wrapper.
    """
    path = draw(st.sampled_from(sorted(PARSING_ROUTES)))
    fields = draw(st.dictionaries(st.sampled_from(KEYS + BRAZE_KEYS), JSONISH, max_size=6))
    depth = draw(st.integers(0, limit // 6))
    value = nested(depth, draw(st.sampled_from(["list", "object"]))) if depth else b"1"
    core = json.dumps({**fields, "deep": "__DEEP__"}).encode().replace(b'"__DEEP__"', value)
    room = max(limit - len(core) - 16, 0)
    core = core[:-1] + b',"pad":"' + b"x" * draw(st.integers(0, room)) + b'"}'
    wrap = draw(st.sampled_from(["json", "form", "jwt", "jwt-header", "unsigned", "wrapper"]))
    ctype = "application/json"
    if wrap == "form":
        body, ctype = b"punchh_segment=" + core, "application/x-www-form-urlencoded"
    elif wrap == "jwt":
        body, ctype = compact_jwt(core), "application/jwt"
    elif wrap == "jwt-header":
        body, ctype = compact_jwt(b"{}", header=core), "application/jwt"
    elif wrap == "unsigned":
        body, ctype = compact_jwt(core, secret="not-a-configured-secret"), "application/jwt"
    elif wrap == "wrapper":
        body = b'{"jwt":' + core + b"}"
    else:
        body = core
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]  # cut short: truncated uploads too
    return path, ctype, body


def test_generated_bodies_up_to_the_limit_are_4xx_json(
    fuzz_client: FlaskClient, rdb: redis.Redis
) -> None:
    """Through the intake lane and the Flask views: a 2xx or a JSON 4xx, never a 5xx."""
    limit = fuzz_client.application.config["MAX_CONTENT_LENGTH"]

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(big_bodies(limit))
    def run(case: tuple[str, str, bytes]) -> None:
        path, ctype, body = case
        headers = {**PARSING_ROUTES[path], "Content-Type": ctype}
        before = len(rdb.keys("pc:d:*"))
        reply = fuzz_client.post(path, data=body, headers=headers)
        _assert_refusal_or_accept(reply, rdb, before)
        assert reply.mimetype == "application/json", (path, reply.status_code)
        if reply.status_code >= 400:
            assert reply.get_json()["error"]["code"]

    run()
