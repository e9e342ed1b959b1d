"""HS256 verification checked against PyJWT's own tokens, and the claim edge cases."""

from __future__ import annotations

import time

import jwt
import pytest

from connector.sfmc.jwt_body import verify
from wiring.errors import ApiError

SECRET = "a-signing-secret-of-decent-length-000"
NOW = 1_800_000_000.0


def test_tokens_pyjwt_signs_verify_with_any_configured_secret() -> None:
    token = jwt.encode({"journeyId": "j", "n": 1}, SECRET, algorithm="HS256")
    assert verify(token, ["other-secret-xxxxxxxxxxxxxxxxxxxxxxx", SECRET]) == {
        "journeyId": "j",
        "n": 1,
    }


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": NOW - 31}, "the JWT has expired"),
        ({"nbf": NOW + 31}, "the JWT is not valid yet"),
        ({"iat": NOW + 31}, "the JWT is not valid yet"),
        ({"exp": "tomorrow"}, "the JWT's exp claim is not a number"),
        ({"exp": True}, "the JWT's exp claim is not a number"),
    ],
)
def test_time_claims_are_checked_with_leeway(claims: dict[str, object], reason: str) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(ApiError) as info:
        verify(token, [SECRET], now=NOW)
    assert info.value.status == 401 and info.value.message == reason


def test_within_leeway_is_accepted() -> None:
    token = jwt.encode({"exp": NOW - 29, "nbf": NOW + 29}, SECRET, algorithm="HS256")
    assert verify(token, [SECRET], now=NOW)["exp"] == NOW - 29


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "!!!.e30.sig",
        "WzFd.e30." + "A" * 43,  # header is a JSON list
        jwt.encode({"a": 1}, SECRET, algorithm="HS256").rsplit(".", 1)[0] + ".",  # no signature
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(ApiError) as info:
        verify(token, [SECRET], now=time.time())
    assert info.value.status == 401
