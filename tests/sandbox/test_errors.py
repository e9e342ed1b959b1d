"""The caller checks every Punchh endpoint runs first: User-Agent, then the key."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from sandbox.app import create_app
from tests.sandbox.support import ADMIN, CAMPAIGNS, REDEEMABLES, SEGMENTS, commit_body, sandbox_now


@pytest.mark.parametrize("path", [SEGMENTS, REDEEMABLES])
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", "sandbox-admin-key", "Basic sandbox-admin-key", "Bearer "],
)
def test_bad_or_missing_key_is_401(sb: FlaskClient, path: str, authorization: str | None) -> None:
    headers = {"User-Agent": "Tests/Sandbox/1.0"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = sb.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json == {"error": "You need to sign in or sign up before continuing."}


def test_no_permission_key_is_403_on_every_endpoint(sb: FlaskClient) -> None:
    headers = {"Authorization": "Bearer sandbox-readonly-key", "User-Agent": "T/S/1"}
    expected = {"no_permission_error": "Insufficient Privileges to access this resource"}
    for response in (
        sb.get(SEGMENTS, headers=headers),
        sb.get(REDEEMABLES, headers=headers),
        sb.post(CAMPAIGNS, json=commit_body(sandbox_now(sb)), headers=headers),
    ):
        assert (response.status_code, response.json) == (403, expected)
    assert sb.get("/_sandbox/campaigns").json == []


def test_missing_user_agent_is_400_and_checked_before_the_key(sb: FlaskClient) -> None:
    for headers in ({"Authorization": ADMIN["Authorization"]}, {"Authorization": "Bearer no"}):
        # Werkzeug's test client adds its own User-Agent unless told otherwise.
        response = sb.get(SEGMENTS, headers={**headers, "User-Agent": ""})
        assert response.status_code == 400
        assert "User-Agent" in response.json["error"]


def test_env_keys_replace_the_seed_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_API_KEYS", "env-key-1, env-key-2")
    sb = create_app().test_client()
    ua = {"User-Agent": "T/S/1"}
    for key in ("env-key-1", "env-key-2"):
        assert sb.get(SEGMENTS, headers={**ua, "Authorization": f"Bearer {key}"}).status_code == 200
    assert sb.get(SEGMENTS, headers=ADMIN).status_code == 401
