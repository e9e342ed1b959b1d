"""The request log: counts per endpoint and status, what it never keeps."""

from __future__ import annotations

import json
import logging

from flask.testing import FlaskClient

from sandbox.app import create_app
from sandbox.request_log import RedactIdentifiers, redact
from tests.sandbox.support import ADMIN, SEGMENTS, post_campaign


def test_request_log_counts_and_never_keeps_the_key(sb: FlaskClient) -> None:
    sb.get(SEGMENTS, query_string={"query": "vip"}, headers=ADMIN)
    sb.get(SEGMENTS, headers={"User-Agent": "T/S/1", "Authorization": "Bearer bad"})
    post_campaign(sb)
    post_campaign(sb, name=" ")
    sb.get("/_sandbox/campaigns")  # control requests are not logged
    log = sb.get("/_sandbox/requests").json
    assert log["counts"] == {
        "segments": {"200": 1, "401": 1},
        "campaigns": {"200": 1, "422": 1},
    }
    assert log["totals"] == {"segments": 2, "campaigns": 2}
    first = log["requests"][0]
    assert {k: first[k] for k in ("method", "path", "endpoint", "status", "query")} == {
        "method": "GET",
        "path": SEGMENTS,
        "endpoint": "segments",
        "status": 200,
        "query": "query=vip",
    }
    assert first["user_agent"] == ADMIN["User-Agent"] and "time" in first
    text = json.dumps(log)
    assert "sandbox-admin-key" not in text and "Bearer" not in text


def test_request_log_keeps_the_last_1000(sb: FlaskClient) -> None:
    for page in range(1, 1006):
        sb.get(SEGMENTS, query_string={"page": page}, headers=ADMIN)
    log = sb.get("/_sandbox/requests").json
    assert len(log["requests"]) == 1000
    assert log["requests"][0]["query"] == "page=6"
    assert log["totals"]["segments"] == 1005


def test_unknown_paths_are_json_404(sb: FlaskClient) -> None:
    response = sb.get("/api2/dashboard/users", headers=ADMIN)
    assert response.status_code == 404 and "error" in response.json
    assert sb.get("/_sandbox/requests").json["counts"] == {"other": {"404": 1}}


def test_redaction_keeps_ids_that_name_no_guest() -> None:
    assert redact("custom_segment_id=5&email=a%40b.example&user_id=7") == (
        "custom_segment_id=5&email=[redacted]&user_id=[redacted]"
    )
    assert redact("GET /x?user_id=880001 HTTP/1.1") == "GET /x?user_id=[redacted] HTTP/1.1"
    assert redact("query=vip&page=2&not_email=kept") == "query=vip&page=2&not_email=kept"


def test_the_server_log_is_redacted_once_however_many_apps() -> None:
    create_app(), create_app()
    filters = logging.getLogger("werkzeug").filters
    assert len([f for f in filters if isinstance(f, RedactIdentifiers)]) == 1
    line = "GET /m?custom_segment_id=1&email=guest1@example.com HTTP/1.1"
    args = (line, "200", "-")
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s %s', args, None)
    assert RedactIdentifiers().filter(record)
    assert "guest1@example.com" not in record.getMessage()
