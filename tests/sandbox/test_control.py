"""The control surface's own refusals and the guest views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from tests.sandbox.support import SEED, sandbox_now


def test_clock_rejects_bad_advances(sb: FlaskClient) -> None:
    for body in ({"advance_seconds": -5}, {"advance_seconds": "60"}, {}, None):
        assert sb.post("/_sandbox/clock", json=body).status_code == 400
    real = datetime.now(UTC)
    assert abs(sandbox_now(sb) - real) < timedelta(seconds=5)


def test_guest_endpoints(sb: FlaskClient) -> None:
    assert len(sb.get("/_sandbox/guests").json) == len(SEED["guests"]) == 40
    assert sb.get("/_sandbox/guests", query_string={"segment_id": "x"}).status_code == 400
    assert sb.get("/_sandbox/guests/1/rewards").status_code == 404
