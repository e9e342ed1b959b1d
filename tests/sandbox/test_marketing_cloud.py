"""The Marketing Cloud tokenContext stand-in."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_marketing_cloud_stand_in_vouches_only_for_its_token(sb: FlaskClient) -> None:
    path = "/_sfmc/platform/v1/tokenContext"
    ok = sb.get(path, headers={"Authorization": "Bearer sandbox-mc-token"})
    assert ok.status_code == 200 and "organization" in ok.json
    for headers in ({}, {"Authorization": "Bearer other"}, {"Authorization": "sandbox-mc-token"}):
        assert sb.get(path, headers=headers).status_code == 401
