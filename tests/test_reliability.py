"""Faults real deployments see, over real processes: each scenario proves the invariants.

One send, one campaign; nothing accepted is lost; automatic retry only when Punchh provably
did nothing; no guest data kept. Every scenario adds a row to the summary table printed at the
end of the run.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests import summary
from tests.conftest import auth, base_env
from tests.helpers import campaigns, fault, leaked, redis_dump, request_count
from tests.procs import (
    Proc,
    free_port,
    restart_under_load,
    start_gunicorn,
    start_sandbox,
    start_worker,
    wait_until,
)

pytestmark = pytest.mark.slow

BRAZE = {"Authorization": "Bearer braze-token-1"}
SETTLED = {"committed", "rejected", "failed", "unknown", "held", "cancelled"}


def show(web: Proc, dist_id: str) -> dict[str, Any]:
    reply = httpx.get(f"{web.url}/v1/distributions/{dist_id}", headers=auth(), timeout=10)
    return reply.json() if reply.status_code == 200 else {"state": None}


def wait_state(web: Proc, dist_id: str, states: set[str], timeout: float = 40) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.clear()
        seen.update(show(web, dist_id))
        return seen.get("state") in states

    assert wait_until(done, timeout, 0.1), seen
    return seen


def api_post(web: Proc, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(
        f"{web.url}/v1/distributions",
        json=body or {"segment": "Lapsed 90 days", "redeemable": "Free Coffee"},
        headers={**auth(), "Idempotency-Key": key},
        timeout=10,
    )


# --- 1. concurrency --------------------------------------------------------------------------
def test_1000_concurrent_first_requests_make_one_job_and_one_campaign(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client
) -> None:
    web = start_gunicorn(env, workers=2, threads=16)
    workers = [start_worker(env), start_worker(env)]
    try:
        gate = threading.Barrier(100)
        local = threading.local()
        body = {
            "punchh_segment": "Lapsed 90 days",
            "punchh_redeemable": "Free Coffee",
            "campaign_id": "race",
            "send_key": "d-1",
        }

        def send(i: int) -> int:
            if not hasattr(local, "c"):
                local.c = httpx.Client(base_url=web.url, timeout=30)
                local.c.get("/healthz")  # connect first, so the barrier releases real requests
                gate.wait()
            payload = {**body, "user_id": f"racer-{i}"}
            return int(local.c.post("/webhooks/braze", json=payload, headers=BRAZE).status_code)

        with ThreadPoolExecutor(100) as pool:
            statuses = list(pool.map(send, range(1000)))
        assert statuses.count(202) == 1000
        dist = wait_state(web, "braze:race:d-1", {"committed"})
        assert dist["recipients"] == 1000
        # RQ deletes a job when it succeeds: once it is gone, nothing else may be queued,
        # started or scheduled, and Punchh must have seen exactly one commit.
        assert wait_until(lambda: not list(rdb.scan_iter("rq:job:*")), 10)
        time.sleep(1.0)
        made = campaigns(sandbox)
        assert len(made) == 1
        assert request_count(sandbox, "campaigns") == 1
        assert not list(rdb.scan_iter("rq:job:*")) and rdb.llen("rq:queue:punchh") == 0
        assert rdb.zcard("rq:wip:punchh") == rdb.zcard("rq:scheduled:punchh") == 0
        summary.record(
            "1,000 concurrent first requests, 2 web procs, 2 workers",
            requests=1000, faults=0, expected=1, created=len(made), lost=1000 - dist["recipients"],
        )
    finally:
        web.stop()
        for w in workers:
            w.stop()


# --- 2. worker crash -------------------------------------------------------------------------
#: 2 x (1 s connect + 2 s read) + 5 s margin: the minimum for crash_env's timeouts
#: (wiring/settings.py).
CRASH_LOCK_SECONDS = 11


@pytest.fixture
def crash_env(env: dict[str, str]) -> dict[str, str]:
    """Short lock and staleness so a dead worker's distribution is picked up in seconds.

    Production keeps COMMIT_LOCK_SECONDS=120 and SWEEP_STALE_SECONDS=60 (docs/operations.md).
    The lock is the shortest the configuration check accepts for these Punchh timeouts.
    """
    return {
        **env,
        "PUNCHH_CONNECT_TIMEOUT": "1",
        "PUNCHH_READ_TIMEOUT": "2",
        "COMMIT_LOCK_SECONDS": str(CRASH_LOCK_SECONDS),
        "SWEEP_STALE_SECONDS": "1",
    }


@pytest.mark.parametrize("when", ["before_post", "after_post"])
def test_worker_killed_mid_commit(
    crash_env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client, when: str
) -> None:
    web = start_gunicorn(crash_env)
    first = start_worker(crash_env)
    second: Proc | None = None
    try:
        if when == "before_post":
            fault(sandbox, "segments", "hold", seconds=60)  # the worker blocks while resolving
        else:
            fault(sandbox, "campaigns", "commit_hold", seconds=60)  # created, answer held
        assert api_post(web, f"crash-{when}").status_code == 202
        assert wait_until(lambda: sandbox.get("/_sandbox/held").json()["held"] == 1, 20)
        first.kill()  # SIGKILL worker and work horse: no clean-up of any kind
        sandbox.post("/_sandbox/release")
        second = start_worker(crash_env)
        expected = "committed" if when == "before_post" else "unknown"
        dist = wait_state(web, f"api:default:crash-{when}", SETTLED, timeout=40)
        assert dist["state"] == expected, dist
        time.sleep(CRASH_LOCK_SECONDS + 1)  # longer than the lock: nothing may post again
        made = campaigns(sandbox)
        assert len(made) == 1
        assert show(web, dist["distribution_id"])["state"] == expected
        if when == "after_post":
            assert "check Punchh" in dist["last_error"]
            assert request_count(sandbox, "campaigns") == 1
        summary.record(
            f"worker SIGKILL {when.replace('_', ' ')}",
            requests=1, faults=1, expected=1, created=len(made), lost=0,
        )
    finally:
        web.stop()
        first.stop()
        if second is not None:
            second.stop()


# --- 3. Redis restart ------------------------------------------------------------------------
def test_redis_restart_loses_no_accepted_request(
    private_redis: tuple[Proc, int, Path], sandbox_proc: Proc, sandbox: httpx.Client
) -> None:
    redis_proc, port, data_dir = private_redis
    env = base_env(
        f"redis://127.0.0.1:{port}/0",
        sandbox_proc.url,
        SWEEP_STALE_SECONDS="2",
        PUNCHH_CONNECT_TIMEOUT="1",
        PUNCHH_READ_TIMEOUT="2",
        # A run cut off by the outage frees its send within seconds (the shortest lock the
        # configuration check accepts for these timeouts).
        COMMIT_LOCK_SECONDS=str(CRASH_LOCK_SECONDS),
    )
    web = start_gunicorn(env)
    worker = start_worker(env)
    restarted: list[Proc] = []
    outcomes: dict[str, str] = {}
    try:

        def stream(stop: threading.Event) -> None:
            with httpx.Client(base_url=web.url, timeout=10) as c:
                i = 0
                while not stop.is_set():
                    key = f"stream-{i:04d}"
                    try:
                        status = c.post(
                            "/v1/distributions",
                            json={"segment": "Lapsed 90 days", "redeemable": "Free Coffee"},
                            headers={**auth(), "Idempotency-Key": key},
                        ).status_code
                        outcomes[key] = str(status)
                    except httpx.HTTPError as exc:
                        outcomes[key] = type(exc).__name__
                    i += 1
                    time.sleep(0.01)

        restarted.append(restart_under_load(redis_proc, port, data_dir, stream))

        accepted = sorted(k for k, s in outcomes.items() if s == "202")
        refused = [k for k, s in outcomes.items() if s != "202"]
        assert len(accepted) > 50 and refused, (len(accepted), len(refused))
        assert {outcomes[k] for k in refused} <= {"503"}, {outcomes[k] for k in refused}
        client = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")

        def all_committed() -> bool:
            pipe = client.pipeline()
            for key in accepted:
                pipe.hget(f"pc:d:api:default:{key}", "state")
            return all(s == b"committed" for s in pipe.execute())

        if not wait_until(all_committed, 90, 0.5):
            pipe = client.pipeline()
            for key in accepted:
                pipe.hget(f"pc:d:api:default:{key}", "state")
            states = Counter(s.decode() if s else "missing" for s in pipe.execute())
            raise AssertionError(
                f"accepted requests did not all commit: {dict(states)}\n{worker.log()[-3000:]}"
            )
        made = campaigns(sandbox)
        ids = [c["body"]["external_campaign_id"] for c in made]
        assert len(ids) == len(set(ids)), "a send was committed twice"
        lost = [k for k in accepted if f"api:default:{k}" not in set(ids)]
        assert lost == []
        summary.record(
            "Redis restart under a webhook stream",
            requests=len(outcomes), faults=1, expected=len(set(ids)), created=len(made),
            lost=len(lost),
        )
        assert web.alive() and worker.alive()
        client.close()
    finally:
        web.stop()
        worker.stop()
        for proc in restarted:
            proc.stop()


# --- 4. Punchh faults ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "faults", "final", "posts"),
    [
        ("429 storm with Retry-After", [("campaigns", "429", 3, {"retry_after": 1})],
         "committed", 4),
        ("500/502/503 burst", [("campaigns", "500", 1, {}), ("campaigns", "502", 1, {}),
                               ("campaigns", "503", 1, {})], "committed", 4),
        ("list hangs past the client timeout", [("segments", "hang", 1, {"seconds": 4})],
         "committed", 1),
        ("commit then drop the connection", [("campaigns", "commit_drop", 1, {})],
         "unknown", 1),
        ("Punchh down past the retry budget", [("campaigns", "503", 10, {})], "failed", 4),
    ],
)
def test_punchh_faults(
    web: Proc,
    worker: Proc,
    sandbox: httpx.Client,
    name: str,
    faults: list[tuple[str, str, int, dict[str, Any]]],
    final: str,
    posts: int,
) -> None:
    for endpoint, mode, count, extra in faults:
        fault(sandbox, endpoint, mode, count=count, **extra)
    key = name.replace(" ", "-").replace("/", "-")
    assert api_post(web, key).status_code == 202
    dist = wait_state(web, f"api:default:{key}", SETTLED, timeout=60)
    assert dist["state"] == final, dist
    assert wait_until(lambda: request_count(sandbox, "campaigns") == posts, 10)
    made = campaigns(sandbox)
    expected = 0 if final == "failed" else 1
    assert len(made) == expected
    summary.record(
        f"Punchh: {name}", requests=1, faults=sum(f[2] for f in faults),
        expected=expected, created=len(made), lost=0,
    )


def test_punchh_connection_refused_then_back(
    env: dict[str, str], rdb: redis.Redis
) -> None:
    port = free_port()
    punchh = start_sandbox(port=port)
    cfg = {**env, "PUNCHH_BASE_URL": punchh.url, "RETRY_BASE_SECONDS": "1",
           "COMMIT_MAX_ATTEMPTS": "8"}
    web = start_gunicorn(cfg)
    worker = start_worker(cfg)
    revived: list[Proc] = []
    try:
        punchh.stop()
        assert api_post(web, "refused").status_code == 202
        assert wait_until(lambda: show(web, "api:default:refused").get("attempts", 0) >= 2, 30)
        assert "could not connect" in show(web, "api:default:refused")["last_error"]
        revived.append(start_sandbox(port=port))
        dist = wait_state(web, "api:default:refused", SETTLED, timeout=60)
        assert dist["state"] == "committed"
        with httpx.Client(base_url=punchh.url) as c:
            made = campaigns(c)
        assert len(made) == 1
        summary.record(
            "Punchh: connection refused, then back", requests=1, faults=dist["attempts"] - 1,
            expected=1, created=len(made), lost=0,
        )
    finally:
        web.stop()
        worker.stop()
        for proc in revived:
            proc.stop()


def test_wrong_api_key_is_not_retried_in_a_loop(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client
) -> None:
    cfg = {**env, "PUNCHH_API_KEY": "revoked-key"}
    web = start_gunicorn(cfg)
    worker = start_worker(cfg)
    try:
        for i in range(5):
            assert api_post(web, f"badkey-{i}").status_code == 202
        for i in range(5):
            dist = wait_state(web, f"api:default:badkey-{i}", SETTLED)
            assert dist["state"] == "failed"
            assert "PUNCHH_API_KEY" in dist["last_error"]
        unauthorised = request_count(sandbox, "segments", 401)
        assert unauthorised == 1  # one refusal stops every worker for AUTH_LOCKOUT_SECONDS
        assert request_count(sandbox, "campaigns") == 0
        summary.record(
            "Punchh: wrong API key (5 sends)", requests=5, faults=unauthorised,
            expected=0, created=len(campaigns(sandbox)), lost=0,
        )
    finally:
        web.stop()
        worker.stop()


# --- 7. guest data ---------------------------------------------------------------------------
def test_no_guest_data_after_a_mixed_run(
    web: Proc, worker: Proc, sandbox: httpx.Client, rdb: redis.Redis
) -> None:
    planted = ["planted-user-8812", "planted.guest@example.net", "+15555550123", "Jane Q. Guest"]
    body = {
        "punchh_segment": "Lapsed 90 days",
        "punchh_redeemable": "Free Coffee",
        "campaign_id": "gd-1",
        "send_key": "gd-send",
        "user_id": planted[0],
        "email": planted[1],
        "phone": planted[2],
        "first_name": planted[3],
    }
    with httpx.Client(base_url=web.url, timeout=10) as c:
        assert c.post("/webhooks/braze", json=body, headers=BRAZE).status_code == 202
        bad = c.post("/webhooks/braze", json={**body, "punchh_segment": ""}, headers=BRAZE)
        assert bad.status_code == 400
        assert c.post("/webhooks/braze", data=body, headers=BRAZE).status_code == 202
        wrong = c.post("/webhooks/braze", json=body, headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401
        for reply in (bad, wrong):
            assert leaked(reply.text, planted) == []
    wait_state(web, "braze:gd-1:gd-send", {"committed"})
    assert leaked(redis_dump(rdb), planted) == []
    assert leaked(web.log() + worker.log(), planted) == []
