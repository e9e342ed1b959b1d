"""Alerts: one Slack-compatible message per distribution and state, to a local receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import redis

from ledger import actions as admin_ops
from ledger.jobs import enqueue_alert
from ledger.states import State
from tests.conftest import auth
from tests.helpers import dist_request, fault, submit
from tests.procs import start_gunicorn, start_worker, wait_until
from wiring.services import Services
from workers import alerts
from workers.commit import Committer


class Receiver:
    """A local Slack-style incoming webhook that records what it was sent."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.fail_next = 0
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if received.fail_next:
                    received.fail_next -= 1
                    self.send_response(500)
                else:
                    received.messages.append(body)
                    received.paths.append(self.path)
                    self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/secretpath"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recv = Receiver()
    yield recv
    recv.close()


@pytest.fixture
def env(env: dict[str, str], receiver: Receiver) -> dict[str, str]:
    env["ALERT_WEBHOOK_URL"] = receiver.url
    return env


def test_message_names_the_send_reason_and_command(
    services: Services, sandbox: httpx.Client, receiver: Receiver
) -> None:
    fault(sandbox, "campaigns", "504")
    req = dist_request("<send & 1>", source="braze")
    dist_id = submit(services, req).distribution_id
    assert Committer(services).run(dist_id) == State.UNKNOWN
    assert alerts.deliver(services, dist_id, "unknown") == "sent"
    assert len(receiver.messages) == 1
    text = receiver.messages[0]["text"]
    assert set(receiver.messages[0]) == {"text"}
    assert "*unknown*" in text and "Lapsed 90 days" in text and "Free Coffee" in text
    assert "braze" in text and "&lt;send &amp; 1&gt;" in text  # Slack escaping
    assert "504" in text  # the reason
    assert f"punchh-connector resolve {alerts.escape(dist_id)} --campaign-id N" in text
    # Once per distribution and state, whoever enqueues it again.
    assert alerts.deliver(services, dist_id, "unknown") == "duplicate"
    assert len(receiver.messages) == 1


def test_each_alert_state_has_its_instructions(services: Services, receiver: Receiver) -> None:
    for n, (state, needle) in enumerate(
        [("failed", "retry"), ("rejected", "retry"), ("held", "release")]
    ):
        dist_id = submit(services, dist_request(f"s-{n}")).distribution_id
        services.ledger.transition(dist_id, State(state), fields={"last_error": "because"})
        assert alerts.deliver(services, dist_id, state) == "sent"
        assert f"punchh-connector {needle} {dist_id}" in receiver.messages[-1]["text"]
        assert "Reason: because" in receiver.messages[-1]["text"]


def test_no_alert_when_the_state_moved_on_or_no_url(
    services: Services, receiver: Receiver
) -> None:
    dist_id = submit(services, dist_request("moved")).distribution_id
    assert alerts.deliver(services, dist_id, "unknown") == "moved_on"  # it is queued
    assert alerts.deliver(services, "api:none:x", "unknown") == "missing"
    services.settings = services.settings.with_overrides(alert_webhook_url="")
    assert alerts.deliver(services, dist_id, "queued") == "disabled"
    assert receiver.messages == []


def test_a_failed_post_raises_and_can_be_retried(
    services: Services, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    dist_id = submit(services, dist_request("retry-me")).distribution_id
    services.ledger.transition(dist_id, State.FAILED, fields={"last_error": "x"})
    receiver.fail_next = 1
    with pytest.raises(alerts.AlertFailed) as caught:
        alerts.deliver(services, dist_id, "failed")
    assert "secretpath" not in str(caught.value)
    assert alerts.deliver(services, dist_id, "failed") == "sent"  # the dedupe key was freed
    assert len(receiver.messages) == 1
    assert all("secretpath" not in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_unknown_alert_reaches_a_local_receiver_once(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client, receiver: Receiver
) -> None:
    """Web, worker and sandbox as real processes; 50 recipients; Punchh times out (504)."""
    fault(sandbox, "campaigns", "504")
    web = start_gunicorn(env, workers=1, threads=4)
    worker = None
    try:
        worker = start_worker(env)
        body = {"segment": "Lapsed 90 days", "redeemable": "Free Coffee",
                "campaign_name": "Spring win-back"}
        headers = {**auth(), "Idempotency-Key": "alerted"}
        with httpx.Client(base_url=web.url, timeout=10) as http:
            for _ in range(50):
                assert http.post("/v1/distributions", json=body, headers=headers).status_code == 202
        assert wait_until(lambda: receiver.messages, 30)
        wait_until(lambda: False, 1.5)  # would a second message come?
    finally:
        web.stop()
        if worker is not None:
            worker.stop()
    assert len(receiver.messages) == 1, receiver.messages
    text = receiver.messages[0]["text"]
    assert "api:default:alerted" in text and "*unknown*" in text
    assert "Spring win-back" in text and "Recipients so far: " in text
    assert "secretpath" not in worker.log()  # the webhook URL is a secret


@pytest.mark.slow
def test_each_entry_into_a_waiting_state_alerts_once(
    env: dict[str, str], services: Services, sandbox: httpx.Client, receiver: Receiver
) -> None:
    """Real worker, real receiver: failed → retry → failed and unknown → resolve → unknown
    each alert twice, once per entry; a re-run alert job (RQ is at-least-once) adds nothing."""
    worker = start_worker({**env, "COMMIT_MAX_ATTEMPTS": "1"})
    try:
        fault(sandbox, "campaigns", "500", count=10)
        failing = submit(services, dist_request("fails-twice")).distribution_id
        assert wait_until(lambda: len(receiver.messages) == 1, 20)
        on = (services.ledger, services.queue, services.lockout)
        admin_ops.retry(*on, failing, actor="carol", reason="Punchh is back")
        assert wait_until(lambda: len(receiver.messages) == 2, 20), receiver.messages
        assert all("*failed*" in m["text"] for m in receiver.messages)
        assert "Again, after retry by carol" in receiver.messages[1]["text"]

        sandbox.delete("/_sandbox/faults").raise_for_status()
        fault(sandbox, "campaigns", "504", count=10)
        lost = submit(services, dist_request("unknown-twice")).distribution_id
        assert wait_until(lambda: len(receiver.messages) == 3, 20)
        admin_ops.resolve(*on, lost, actor="dan", not_created=True)
        assert wait_until(lambda: len(receiver.messages) == 4, 20), receiver.messages
        assert ["*unknown*" in m["text"] for m in receiver.messages[2:]] == [True, True]

        # The same entries' alert jobs run again, as RQ may: nothing more is sent.
        enqueue_alert(services.queue, failing, "failed")
        enqueue_alert(services.queue, lost, "unknown")
        assert wait_until(lambda: services.queue.count == 0, 10)
        wait_until(lambda: False, 1.5)  # would a fifth message come?
    finally:
        worker.stop()
    assert len(receiver.messages) == 4, receiver.messages
    assert state_of(services, failing) == State.FAILED
    assert state_of(services, lost) == State.UNKNOWN


def state_of(services: Services, dist_id: str) -> str:
    dist = services.ledger.get(dist_id)
    assert dist is not None
    return dist.state
