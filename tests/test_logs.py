"""Every line a web process writes is one JSON object with the app's fields, gunicorn's too."""

from __future__ import annotations

import json

import httpx
import redis

from tests.procs import start_gunicorn

#: The fields every line of the app's own logs carries (wiring/logs.py).
FIELDS = {"ts", "level", "logger", "msg"}


def json_lines(text: str) -> list[dict[str, object]]:
    """Each non-empty line parsed; a line that is not a JSON object fails the test."""
    lines = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(parsed, dict) and set(parsed) >= FIELDS, line
        lines.append(parsed)
    return lines


def test_gunicorn_lines_are_json_like_the_apps(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client
) -> None:
    proc = start_gunicorn({**env, "GUNICORN_ACCESS_LOG": "1"}, workers=1, threads=2)
    try:
        assert httpx.get(proc.url + "/healthz?probe=1", timeout=5).status_code == 200
        assert httpx.get(proc.url + "/no-such-page", timeout=5).status_code == 404
    finally:
        proc.stop()
    lines = json_lines(proc.log())
    by_logger = {line["logger"] for line in lines}
    assert "gunicorn.error" in by_logger, lines  # "Starting gunicorn", "Booting worker", …
    assert any("Shutting down" in str(line["msg"]) for line in lines), lines
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    # (start_gunicorn's readiness probes come first)
    assert [(a["method"], a["path"], a["status"]) for a in access[-2:]] == [
        ("GET", "/healthz", 200), ("GET", "/no-such-page", 404)
    ], access
    # The query string can carry anything a caller typed: it is not logged.
    assert "probe=1" not in proc.log()


def test_no_access_log_unless_asked(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client
) -> None:
    """The platform's router logs every request already; gunicorn's access log stays off."""
    proc = start_gunicorn(env, workers=1, threads=2)
    try:
        assert httpx.get(proc.url + "/healthz", timeout=5).status_code == 200
    finally:
        proc.stop()
    lines = json_lines(proc.log())
    assert not [line for line in lines if line["logger"] == "gunicorn.access"]
