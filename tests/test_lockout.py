"""A refused Punchh key is left alone by every caller until it expires or an operator clears it.

Punchh blocks an IP after about ten failed logins in ten minutes, so one 401 from any call —
a worker's, a test send's, a picker's — stops every process from calling Punchh for
AUTH_LOCKOUT_SECONDS. Counted on the sandbox's own request log.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from flask.testing import FlaskClient

from ledger.states import State
from tests import summary
from tests.conftest import auth
from tests.helpers import dist_request, fault, request_count, submit
from tests.procs import BIN, start_gunicorn, start_worker, wait_until
from tests.sfmc_sim import GOOD_TOKEN, SimMC, execute_claims, lifecycle_claims, sign, start_mc
from wiring.services import Services
from workers.commit import Committer

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

BRAZE = {"Authorization": "Bearer braze-token-1"}
MARKETER = {"Authorization": f"Bearer {GOOD_TOKEN}"}
OPERATOR = {**auth(), "X-Actor": "alice"}
GAUGE = "punchh_connector_punchh_lockout_remaining_seconds"
JWT = {"Content-Type": "application/jwt"}
#: Braze renders these for test sends and previews: validation only, nothing committed.
TEST_SEND = {
    "punchh_segment": "Lapsed 90 days",
    "punchh_redeemable": "Free Coffee",
    "campaign_id": "cmp-lock",
    "dispatch_id": "dispatch_id_for_unsent_campaign",
    "send_key": "dispatch_id_for_unsent_campaign",
}
VALIDATE = lifecycle_claims(
    arguments={"execute": {"inArguments": [
        {"punchh_segment": "Lapsed 90 days"}, {"punchh_redeemable": "Free Coffee"},
    ]}}
)


def punchh_calls(sandbox: httpx.Client) -> int:
    """Every request that reached the sandbox's Punchh API, whatever its endpoint or status."""
    return sum(int(n) for n in sandbox.get("/_sandbox/requests").json()["totals"].values())


@pytest.fixture
def mc() -> Iterator[SimMC]:
    """The simulated Marketing Cloud that vouches for the marketer's UI token."""
    with start_mc() as sim:
        yield sim


@pytest.mark.slow
def test_every_caller_leaves_a_refused_key_alone(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client, mc: SimMC
) -> None:
    cfg = {**env, "PUNCHH_API_KEY": "revoked-key", "SFMC_REST_BASE_URL": mc.url}
    web = start_gunicorn(cfg)
    worker = start_worker(cfg)
    try:
        with httpx.Client(base_url=web.url, timeout=10) as c:
            sends = [c.post("/webhooks/braze", json=TEST_SEND, headers=BRAZE) for _ in range(12)]
            assert {r.status_code for r in sends} == {200}
            assert all(r.json()["valid"] is False for r in sends)
            assert "punchh-connector punchh-unlock" in str(sends[-1].json()["problems"])

            pickers = [
                c.get("/sfmc/api/segments?query=Lapsed", headers=MARKETER),
                c.get("/sfmc/api/redeemables", headers=MARKETER),
                c.get("/sfmc/api/segments", headers=MARKETER),
            ]
            lists = [c.get(f"/v1/{kind}", headers=auth()) for kind in ("segments", "redeemables")]
            for reply in pickers + lists:
                assert reply.status_code == 503, reply.text
                assert reply.json()["error"]["code"] == "punchh_locked_out"
                assert "punchh-connector punchh-unlock" in reply.json()["error"]["message"]
                assert 0 < int(reply.headers["Retry-After"]) <= 600

            validate = c.post(
                "/sfmc/validate", content=sign(VALIDATE), headers=JWT
            )
            assert validate.status_code == 503
            assert validate.json()["error"]["code"] == "punchh_locked_out"

            check = c.post("/v1/check", headers=auth()).json()
            assert check["ok"] is False and "no calls to Punchh until" in str(check)

            # A real send: the worker fails it without calling Punchh, and `retry` is refused
            # while the lockout stands (it would only fail again at once).
            sent = c.post(
                "/v1/distributions",
                json={"segment": "Lapsed 90 days", "redeemable": "Free Coffee"},
                headers={**auth(), "Idempotency-Key": "locked-1"},
            )
            assert sent.status_code == 202
            dist_id = sent.json()["distribution_id"]
            assert wait_until(
                lambda: c.get(f"/v1/distributions/{dist_id}", headers=auth()).json()["state"]
                == "failed",
                30,
            )
            retry = c.post(f"/v1/distributions/{dist_id}/retry", headers=OPERATOR)
            assert retry.status_code == 409, retry.text
            assert retry.json()["error"]["code"] == "punchh_locked_out"

            assert punchh_calls(sandbox) == 1  # the first test send's segment list: 401
            assert request_count(sandbox, "segments", 401) == 1

            # Only the operator's explicit action lets calls through again.
            unlock = subprocess.run(
                [str(BIN / "punchh-connector"), "punchh-unlock", "--reason", "key rotated"],
                env=cfg, capture_output=True, text=True, timeout=60, check=False,
            )
            assert unlock.returncode == 0, unlock.stderr
            assert "cleared" in unlock.stdout
            again = c.get("/v1/segments", headers=auth())
            assert again.status_code == 502  # the key is still wrong: Punchh says so once
            assert again.json()["error"]["code"] == "punchh_auth"
            assert punchh_calls(sandbox) == 2
            assert c.get("/v1/segments", headers=auth()).status_code == 503
            assert punchh_calls(sandbox) == 2
        asked = len(sends) + len(pickers) + len(lists) + 6  # validate, check, send, retry, 2 lists
        summary.record(
            "Punchh: refused key, every caller (12 test sends, pickers, lists, validate)",
            requests=asked, faults=request_count(sandbox, "segments", 401), expected=0,
            created=request_count(sandbox, "campaigns"), lost=0,
        )
    finally:
        web.stop()
        worker.stop()


def test_retry_does_not_clear_the_lockout_and_unlock_does(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    right = services.settings
    dist_id = submit(services, dist_request("lock-1")).distribution_id
    services.ledger.transition(dist_id, State.FAILED, fields={"last_error": "gave up"})

    services.settings = right.with_overrides(punchh_api_key="wrong-key")
    services._punchh = None  # rebuilt with the wrong key
    refused = client.post("/webhooks/braze", json=TEST_SEND, headers=BRAZE).json
    assert refused["valid"] is False
    assert punchh_calls(sandbox) == 1

    services.settings = right  # the key is fixed, but nobody has cleared the lockout yet
    services._punchh = None
    still = client.post("/webhooks/braze", json=TEST_SEND, headers=BRAZE).json
    assert still["valid"] is False and "no calls to Punchh until" in str(still["problems"])
    sfmc_test = execute_claims(extra_args={"punchh_test": True})
    tested = client.post("/sfmc/execute", data=sign(sfmc_test), headers=JWT)
    assert tested.json["punchh_status"] == "unavailable"  # the key, not the offer, is at fault
    retry = client.post(f"/v1/distributions/{dist_id}/retry", headers=OPERATOR)
    assert retry.status_code == 409 and retry.json["error"]["code"] == "punchh_locked_out"
    assert services.ledger.get(dist_id).state == State.FAILED  # type: ignore[union-attr]
    assert punchh_calls(sandbox) == 1

    unlock = client.post("/v1/punchh/unlock", json={"reason": "key fixed"}, headers=OPERATOR)
    assert unlock.status_code == 200, unlock.json
    body: dict[str, Any] = unlock.json
    assert body["cleared"] is True and body["by"] == "alice"
    assert "401" in body["lockout"]["reason"]
    assert client.post("/v1/punchh/unlock", headers=OPERATOR).json["cleared"] is False

    assert client.post("/webhooks/braze", json=TEST_SEND, headers=BRAZE).json["valid"] is True
    assert client.post(f"/v1/distributions/{dist_id}/retry", headers=OPERATOR).status_code == 200
    assert Committer(services).run(dist_id) == State.COMMITTED


def test_a_401_from_the_commit_locks_out_the_web_tier(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    wrong = Services.build(services.settings.with_overrides(punchh_api_key="nope"), services.redis)
    dist_id = submit(services, dist_request("lock-2")).distribution_id
    assert Committer(wrong).run(dist_id) == State.FAILED
    assert punchh_calls(sandbox) == 1
    reply = client.get("/v1/segments", headers=auth())  # the good key, but the IP is at risk
    assert reply.status_code == 503 and reply.json["error"]["code"] == "punchh_locked_out"
    assert punchh_calls(sandbox) == 1
    metrics = client.get("/metrics", headers=auth()).get_data(as_text=True)
    (line,) = [x for x in metrics.splitlines() if x.startswith(GAUGE)]
    assert 590 < float(line.split()[-1]) <= 600
    client.post("/v1/punchh/unlock", headers=OPERATOR)
    metrics = client.get("/metrics", headers=auth()).get_data(as_text=True)
    assert f"{GAUGE} 0" in metrics


def test_failed_lookups_are_remembered_briefly_by_the_web_tier(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client
) -> None:
    from connector import create_app
    from wiring.settings import Settings

    settings = Settings.from_env({**env, "LIST_CACHE_SECONDS": "60"})
    web = Services.build(settings)
    client = create_app(settings, services=web).test_client()
    fault(sandbox, "segments", "503", count=50)
    sends = [client.post("/webhooks/braze", json=TEST_SEND, headers=BRAZE) for _ in range(12)]
    assert all(r.json["valid"] is False for r in sends)
    assert "could not ask Punchh" in sends[-1].json["problems"][0]
    pickers = [client.get("/v1/segments?query=Lapsed", headers=auth()) for _ in range(3)]
    assert [r.status_code for r in pickers] == [502, 502, 502]
    assert request_count(sandbox, "segments") == 2  # one per distinct look-up, not per call

    # A name Punchh does not have: the lists behind "not found" are cached, not asked again.
    typo = {**TEST_SEND, "punchh_redeemable": "Free Cofee"}
    first = client.post("/webhooks/braze", json=typo, headers=BRAZE).json
    assert 'no Punchh redeemable is named "Free Cofee"' in str(first["problems"])
    asked = request_count(sandbox, "redeemables")
    for _ in range(5):
        assert client.post("/webhooks/braze", json=typo, headers=BRAZE).json["valid"] is False
    assert request_count(sandbox, "redeemables") == asked

    # The worker has its own backoff and budget: it does not inherit the web tier's memory.
    sandbox.delete("/_sandbox/faults").raise_for_status()
    worker = Services.build(settings, web.redis, remember_failed_lookups=False)
    dist_id = submit(worker, dist_request("lock-3", segment="Lapsed 90 days")).distribution_id
    assert Committer(worker).run(dist_id) == State.COMMITTED
