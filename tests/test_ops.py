"""Health checks (/healthz, /readyz) and the operator's status page (/status)."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from flask.testing import FlaskClient

from connector import create_app, status
from tests.conftest import API_TOKEN, auth, base_env
from tests.helpers import dist_request, fault, submit
from tests.procs import free_port, wait_until
from wiring.services import Services
from wiring.settings import Settings
from workers.commit import Committer


def basic(password: str, user: str = "ops") -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


# --- /healthz and /readyz -----------------------------------------------------------------------
def test_healthz_touches_nothing(client: FlaskClient) -> None:
    reply = client.get("/healthz")
    assert reply.status_code == 200 and reply.json == {"status": "ok"}


def test_readyz_ok_with_an_empty_queue(client: FlaskClient, services: Services) -> None:
    reply = client.get("/readyz")
    assert reply.status_code == 200
    assert reply.json["status"] == "ok" and reply.json["oldest_queued_seconds"] is None


def _age_oldest_job(services: Services, seconds: float) -> None:
    job_id = services.queue.get_job_ids(0, 1)[0]
    old = datetime.now(UTC) - timedelta(seconds=seconds)
    services.redis.hset(f"rq:job:{job_id}", "enqueued_at", old.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def test_readyz_503_when_the_queue_is_stuck(client: FlaskClient, services: Services) -> None:
    submit(services, dist_request("stuck"))
    assert client.get("/readyz").status_code == 200  # fresh job: fine, workers or not
    _age_oldest_job(services, 120)  # no worker registered and waiting > 60 s
    reply = client.get("/readyz")
    assert reply.status_code == 503
    assert "no worker is registered" in reply.json["reason"]
    _age_oldest_job(services, 900)
    reply = client.get("/readyz")
    assert reply.status_code == 503 and "queue stuck" in reply.json["reason"]


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A Redis server of this test's own, on a free port (the shared one is never stopped)."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    probe = redis.Redis.from_url(url)

    def up() -> bool:
        try:
            return bool(probe.ping())
        except redis.ConnectionError:
            return False

    assert wait_until(up, 10)
    probe.close()
    yield proc, url
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


def test_readyz_503_when_redis_is_stopped(
    own_redis: tuple[subprocess.Popen[bytes], str], sandbox: httpx.Client
) -> None:
    proc, url = own_redis
    settings = Settings.from_env(base_env(url, str(sandbox.base_url)))
    app = create_app(settings)
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    proc.terminate()
    proc.wait(10)
    started = time.monotonic()
    reply = client.get("/readyz")
    assert reply.status_code == 503
    assert reply.json["status"] == "unavailable"
    assert reply.json["reason"].startswith("redis: ")
    assert time.monotonic() - started < 5  # refused at once, not a hang
    assert client.get("/healthz").status_code == 200  # the process itself is alive


# --- /status --------------------------------------------------------------------------------------
def test_status_page_needs_the_token_and_invites_basic(
    client: FlaskClient, services: Services
) -> None:
    reply = client.get("/status")
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith('Basic realm="punchh-connector"')
    assert client.get("/status", headers=basic("wrong")).status_code == 401
    assert client.get("/status", headers=auth()).status_code == 200
    reply = client.get("/status", headers=basic(API_TOKEN))
    assert reply.status_code == 200
    assert reply.mimetype == "text/html"
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["Cache-Control"] == "no-store"


def test_status_page_shows_sends_and_escapes_everything(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    committed = submit(services, dist_request("good")).distribution_id
    for _ in range(4):
        submit(services, dist_request("good"))
    Committer(services).run(committed)
    fault(sandbox, "campaigns", "504")
    unknown = submit(services, dist_request("<script>alert(1)</script>")).distribution_id
    Committer(services).run(unknown)

    page = client.get("/status", headers=basic(API_TOKEN)).get_data(as_text=True)
    dist = services.ledger.get(committed)
    assert dist is not None
    assert committed in page
    assert f">{dist.fields['campaign_id']}<" in page  # Punchh campaign id
    assert dist.fields["start_time"] in page
    assert ">5<" in page  # recipients counted
    assert 'class="st st-committed"' in page and 'class="st st-unknown"' in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "check before resolving" in page  # the last error of the unknown one

    only = client.get("/status?state=unknown", headers=auth()).get_data(as_text=True)
    assert "api:camp-1:good" not in only and "alert(1)" in only
    bogus = client.get('/status?state="><b>x&limit=-1', headers=auth())
    assert bogus.status_code == 200 and "<b>x" not in bogus.get_data(as_text=True)


def test_send_page_draws_recipients_over_time_and_names_the_next_step(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    """Recipients counted across three minutes become a rising line; failed → retry command."""
    start = (time.time() // 60) * 60 - 600
    req = dist_request("chart")
    for minute, count in ((0, 3), (1, 0), (2, 5)):
        for n in range(count):
            services.ledger.intake(req, now=start + minute * 60 + n)
    dist_id = req.distribution_id
    record = services.ledger.get(dist_id)
    assert record is not None and record.int_field("recipients") == 8
    assert status.recipient_series(record.fields) == [(start, 3), (start + 120, 8)]

    fault(sandbox, "campaigns", "500", count=10)
    Committer(services).run(dist_id)
    page = client.get(f"/status/send/{dist_id}", headers=basic(API_TOKEN))
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'id="recipients-chart"' in html and "8 recipient(s) counted" in html
    assert "punchh-connector show api:camp-1:chart" in html
    assert "<polyline" in html

    missing = client.get("/status/send/api:nope:nope", headers=basic(API_TOKEN))
    assert missing.status_code == 404 and "no distribution" in missing.get_data(as_text=True)
    assert client.get(f"/status/send/{dist_id}").status_code == 401


def test_next_step_per_state() -> None:
    def commands(state: str, **extra: object) -> list[str]:
        return [c for _, c in status.next_actions({"distribution_id": "braze:c:k", "state": state,
                                                   **extra})]

    assert commands("failed")[0] == "punchh-connector retry braze:c:k"
    assert commands("held")[:2] == ["punchh-connector release braze:c:k",
                                    "punchh-connector cancel braze:c:k"]
    assert "punchh-connector resolve braze:c:k --not-created" in commands("unknown")
    assert commands("committed") == ["punchh-connector show braze:c:k"]
    undo = {"action": "release", "by": "carol", "at": "2026-01-01T00:00:00Z"}
    assert "punchh-connector undo braze:c:k" in commands("queued", undoable=undo)
    assert status.next_actions({"distribution_id": "a:b'c", "state": "committed"})[0][1] == (
        "punchh-connector show 'a:b'\"'\"'c'"
    )
    assert status.id_parts("braze:6d8f:dispatch-1") == ["braze:", "6d8f:", "dispatch-1"]


# --- rediss:// with a self-signed certificate (what hosted Redis add-ons hand out) -----------
def test_rediss_with_a_self_signed_certificate(tmp_path: Path, sandbox: httpx.Client) -> None:
    openssl, server = shutil.which("openssl"), shutil.which("redis-server")
    if openssl is None or server is None:
        pytest.skip("openssl or redis-server is not installed")
    cert, key = tmp_path / "redis.crt", tmp_path / "redis.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=redis.invalid", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"rediss://127.0.0.1:{port}/0"
        settings = Settings.from_env(base_env(url, str(sandbox.base_url)))
        services = Services.build(settings)

        def up() -> bool:
            try:
                return bool(services.redis.ping())
            except redis.ConnectionError:
                return False

        assert wait_until(up, 10), "rediss:// with a self-signed certificate did not connect"
        client = create_app(settings, services=services).test_client()
        assert client.get("/readyz").status_code == 200
        reply = client.post(
            "/v1/distributions",
            json={"segment": "Lapsed 90 days", "redeemable": "Free Coffee"},
            headers={**auth(), "Idempotency-Key": "tls"},
        )
        assert reply.status_code == 202
        services.redis.close()
    finally:
        proc.terminate()
        proc.wait(10)
