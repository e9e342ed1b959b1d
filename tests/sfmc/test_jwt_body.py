"""Journey Builder's signed bodies: which JWTs are accepted (connector/sfmc/jwt_body.py)."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import redis
from flask.testing import FlaskClient

from connector import create_app
from tests.sfmc.support import JWT_TYPE, b64, keys, post_jwt
from tests.sfmc_sim import (
    SECRETS,
    execute_claims,
    lifecycle_claims,
    sign,
)
from wiring.services import Services
from wiring.settings import Settings

# The fixture secrets are short; Journey Builder's real signing secrets are long.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


# --- JWT ----------------------------------------------------------------------------------


def test_jwt_signed_with_either_secret_is_accepted(client: FlaskClient) -> None:
    for secret in SECRETS:
        body = lifecycle_claims(activity_id=f"act-{secret}")
        reply = post_jwt(client, "save", body, secret=secret)
        assert reply.status_code == 200, reply.json
        assert reply.json == {}


def test_jwt_in_a_json_wrapper_or_text_plain_is_accepted(client: FlaskClient) -> None:
    token = sign(lifecycle_claims())
    assert client.post("/sfmc/save", data=token, content_type="text/plain").status_code == 200
    wrapped = client.post("/sfmc/save", json={"jwt": token})
    assert wrapped.status_code == 200


def _bad_tokens() -> dict[str, bytes | str]:
    claims = execute_claims()
    good = sign(claims)
    head, payload, sig = good.split(".")
    tampered_claims = {**claims, "inArguments": [{"punchh_segment": "VIP Guests",
                                                   "punchh_redeemable": "Free Coffee"}]}
    tampered = f"{head}.{b64(json.dumps(tampered_claims).encode())}.{sig}"
    none_header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    rs_header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return {
        "tampered": tampered,
        "wrong key": sign(claims, secret="not-the-secret"),
        "alg none": f"{none_header}.{payload}.",
        "HS512": jwt.encode(claims, SECRETS[0], algorithm="HS512"),
        "RS256-shaped": f"{rs_header}.{payload}.{sig}",
        "expired": sign({**claims, "exp": int(time.time()) - 3600}),
        "not yet valid": sign({**claims, "nbf": int(time.time()) + 3600}),
        "not a JWT": "hello there",
        "two parts": f"{head}.{payload}",
        "garbage parts": "abc.def.ghi",
        "empty": "",
    }


BAD_CASES = ["tampered", "wrong key", "alg none", "HS512", "RS256-shaped", "expired",
             "not yet valid", "not a JWT", "two parts", "garbage parts", "empty"]


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("path", ["execute", "save", "validate", "publish", "stop"])
def test_bad_jwts_get_401_and_change_nothing(
    client: FlaskClient, rdb: redis.Redis, case: str, path: str
) -> None:
    before = keys(rdb)
    token = _bad_tokens()[case]
    reply = client.post(f"/sfmc/{path}", data=token, headers=JWT_TYPE)
    assert reply.status_code == 401, (case, reply.json)
    assert reply.json["error"]["code"] == "invalid_jwt"
    assert reply.json["error"]["message"]
    assert keys(rdb) == before


def test_401_reasons_are_short_and_specific(client: FlaskClient) -> None:
    bad = _bad_tokens()
    assert sorted(bad) == sorted(BAD_CASES)
    reasons = {
        case: client.post("/sfmc/execute", data=bad[case], headers=JWT_TYPE).json["error"][
            "message"
        ]
        for case in ("expired", "wrong key", "alg none", "HS512")
    }
    assert reasons["expired"] == "the JWT has expired"
    assert "does not match" in reasons["wrong key"]
    assert "'none'" in reasons["alg none"]
    assert "'HS512'" in reasons["HS512"]
    assert all(len(r) < 80 for r in reasons.values())


def test_valid_exp_is_accepted(client: FlaskClient) -> None:
    claims = {**execute_claims(), "exp": int(time.time()) + 300, "iat": int(time.time())}
    assert post_jwt(client, "execute", claims).status_code == 200


def test_plain_json_is_refused_unless_allowed(
    client: FlaskClient, settings: Settings, rdb: redis.Redis
) -> None:
    body = execute_claims()
    refused = client.post("/sfmc/execute", json=body)
    assert refused.status_code == 401
    assert "plain JSON" in refused.json["error"]["message"]
    assert keys(rdb) == []
    dev = create_app(
        settings.with_overrides(sfmc_allow_plain_json=True),
        services=Services.build(settings.with_overrides(sfmc_allow_plain_json=True)),
    ).test_client()
    accepted = dev.post("/sfmc/execute", json=body)
    assert accepted.status_code == 200
    assert accepted.json["punchh_status"] == "accepted"
    # Even then a JWT is still verified, and a bad one still refused.
    assert dev.post(
        "/sfmc/execute", data=sign(body, secret="wrong"), headers=JWT_TYPE
    ).status_code == 401


def test_no_secret_configured_is_401(settings: Settings, rdb: redis.Redis) -> None:
    bare = settings.with_overrides(sfmc_jwt_secrets=())
    app = create_app(bare, services=Services.build(bare))
    reply = app.test_client().post(
        "/sfmc/execute", data=sign(execute_claims()), headers=JWT_TYPE
    )
    assert reply.status_code == 401
    assert "SFMC_JWT_SECRET" in reply.json["error"]["message"]
