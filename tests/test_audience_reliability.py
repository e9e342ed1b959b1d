"""Audience mode under the faults real deployments see, over real processes.

gunicorn, RQ workers, the Punchh sandbox over HTTP, a real Redis. Each scenario checks the
audience invariants: one custom segment and one campaign per send, every accepted recipient
added (counted once, members exactly the known guests among them), and no identifier left
in Redis or the logs once the send is delivered. Each adds a row to the summary table.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests import summary
from tests.conftest import base_env
from tests.helpers import campaigns, fault, redis_dump, request_count
from tests.procs import Proc, restart_under_load, start_gunicorn, start_worker, wait_until

pytestmark = pytest.mark.slow

BRAZE = {"Authorization": "Bearer braze-token-1"}
#: 2 x (1 s connect + 2 s read) + 5 s margin: the shortest lock the configuration accepts.
LOCK_SECONDS = 11
KNOWN = [880000 + n for n in range(1, 41)]  # the sandbox's seeded guests
#: Half the seeded guests are sent by email (guestN@example.com), as a Braze email would be.
BY_EMAIL = set(KNOWN[20:])


def email_of(uid: int) -> str:
    return f"guest{uid - 880000}@example.com"


def audience_env(env: dict[str, str]) -> dict[str, str]:
    """A quiet gap of two seconds, a short lock and sweep, so faults settle in seconds."""
    return {
        **env,
        "AUDIENCE_QUIET_SECONDS": "2",
        "PUNCHH_CONNECT_TIMEOUT": "1",
        "PUNCHH_READ_TIMEOUT": "2",
        "COMMIT_LOCK_SECONDS": str(LOCK_SECONDS),
        "SWEEP_STALE_SECONDS": "1",
    }


def recipients(n: int) -> list[int]:
    """n distinct Punchh user ids: the 40 seeded guests first, then guests Punchh lacks."""
    return (KNOWN + [700000 + i for i in range(max(n - len(KNOWN), 0))])[:n]


def send(web: Proc, ids: list[int], campaign: str = "aud-cmp") -> dict[int, int]:
    """One Braze audience send (a run key, as a scheduled campaign would have): status by id."""
    body = {"punchh_audience": "recipients", "punchh_redeemable": "Free Coffee",
            "campaign_id": campaign, "send_key": "run-1"}

    def one(client: httpx.Client, uid: int) -> int:
        try:
            guest = {"email": email_of(uid)} if uid in BY_EMAIL else {"punchh_user_id": str(uid)}
            return client.post("/webhooks/braze", json={**body, **guest}, headers=BRAZE).status_code
        except httpx.HTTPError:
            return 0

    with httpx.Client(base_url=web.url, timeout=10) as client, ThreadPoolExecutor(8) as pool:
        return dict(zip(ids, pool.map(lambda uid: one(client, uid), ids), strict=True))


def record(rdb: redis.Redis, dist_id: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in rdb.hgetall(f"pc:d:{dist_id}").items()}


def delivered(rdb: redis.Redis, dist_id: str, accepted: int) -> bool:
    """Committed, with every accepted recipient added and nothing left waiting.

    At least: a request Redis counted whose answer was lost (a restart) is added too, as its
    platform's retry would be; adding a guest twice is still one member.
    """
    fields = record(rdb, dist_id)
    waiting = rdb.exists(f"pc:aq:{dist_id}", f"pc:ab:{dist_id}")
    added = int(fields.get("audience_added", 0))
    return fields.get("state") == "committed" and added >= accepted and not waiting


def members(sandbox: httpx.Client) -> list[list[int]]:
    return [c["member_guest_ids"] for c in sandbox.get("/_sandbox/custom_segments").json()]


def left_behind(haystack: bytes | str, ids: list[int]) -> list[int]:
    """The ids still present as whole numbers or as their email (never inside another number,
    such as a float in the metrics hash)."""
    text = haystack.encode() if isinstance(haystack, str) else haystack
    return [
        uid for uid in ids
        if re.search(rb"(?<![\d.])%d(?![\d])" % uid, text) or email_of(uid).encode() in text
    ]


def check_invariants(
    rdb: redis.Redis, sandbox: httpx.Client, dist_id: str, statuses: dict[int, int],
    logs: str, scenario: str, faults: int,
) -> None:
    accepted = [uid for uid, status in statuses.items() if status == 202]
    assert wait_until(lambda: delivered(rdb, dist_id, len(accepted)), 60, 0.2), (
        len(accepted),
        {k: v for k, v in record(rdb, dist_id).items() if k.startswith(("audience", "recip"))},
    )
    segments = members(sandbox)
    made = campaigns(sandbox)
    assert len(segments) == 1 and len(made) == 1, (segments, made)
    # Every accepted known guest is a member; nobody who was never sent is.
    assert {u for u in accepted if u in KNOWN} <= set(segments[0]) <= set(statuses) & set(KNOWN)
    assert made[0]["custom_segment_id"] is not None
    fields = record(rdb, dist_id)
    assert int(fields["audience_invalid"]) >= len([u for u in accepted if u not in KNOWN])
    # Nothing of the guests is left: not in Redis, not in any process's log.
    planted = accepted[:60:3] + accepted[-5:]
    assert left_behind(redis_dump(rdb), planted) == []
    assert left_behind(logs, planted) == []
    summary.record(scenario, requests=len(statuses), faults=faults, expected=1,
                   created=len(made), lost=max(len(accepted) - int(fields["audience_added"]), 0))


@pytest.mark.parametrize("when", ["between_batches", "before_commit"])
def test_worker_killed_mid_audience_send(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client, when: str
) -> None:
    run_env = audience_env(env)
    web = start_gunicorn(run_env)
    first = start_worker(run_env)
    second: Proc | None = None
    try:
        if when == "between_batches":
            fault(sandbox, "add_users", "commit_hold", seconds=60)  # Punchh adds, answer held
        else:
            fault(sandbox, "segments", "hold", seconds=60)  # resolving the custom segment
        statuses = send(web, recipients(2500))
        assert wait_until(lambda: sandbox.get("/_sandbox/held").json()["held"] == 1, 30)
        first.kill()
        sandbox.post("/_sandbox/release")
        second = start_worker(run_env)
        check_invariants(rdb, sandbox, "braze:aud-cmp:run-1", statuses,
                         web.log() + first.log() + second.log(),
                         f"audience: worker SIGKILL {when.replace('_', ' ')}", 1)
    finally:
        web.stop()
        first.stop()
        if second is not None:
            second.stop()


@pytest.mark.parametrize("mode", ["503", "429", "drop", "commit_drop"])
def test_add_users_faults_add_every_recipient_once(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client, mode: str
) -> None:
    run_env = audience_env(env)
    web = start_gunicorn(run_env)
    worker = start_worker(run_env)
    try:
        fault(sandbox, "add_users", mode, count=2)
        statuses = send(web, recipients(1500))
        check_invariants(rdb, sandbox, "braze:aud-cmp:run-1", statuses,
                         web.log() + worker.log(), f"audience: add_users {mode} x2", 2)
        assert request_count(sandbox, "add_users") >= 4  # 2 batches + the 2 faulted calls
    finally:
        web.stop()
        worker.stop()


def test_a_lost_create_answer_makes_one_custom_segment(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client
) -> None:
    run_env = audience_env(env)
    web = start_gunicorn(run_env)
    worker = start_worker(run_env)
    try:
        fault(sandbox, "create_custom_segment", "commit_drop")
        statuses = send(web, recipients(300))
        check_invariants(rdb, sandbox, "braze:aud-cmp:run-1", statuses,
                         web.log() + worker.log(), "audience: lost create answer", 1)
        assert request_count(sandbox, "create_custom_segment") == 1
    finally:
        web.stop()
        worker.stop()


def test_redis_restart_mid_send_loses_no_accepted_recipient(
    private_redis: tuple[Proc, int, Path], sandbox_proc: Proc, sandbox: httpx.Client
) -> None:
    redis_proc, port, data_dir = private_redis
    run_env = audience_env(base_env(f"redis://127.0.0.1:{port}/0", sandbox_proc.url))
    web = start_gunicorn(run_env)
    worker = start_worker(run_env)
    restarted: list[Proc] = []
    statuses: dict[int, int] = {}
    try:

        def stream(stop: threading.Event) -> None:
            body: dict[str, Any] = {"punchh_audience": "recipients",
                                    "punchh_redeemable": "Free Coffee",
                                    "campaign_id": "aud-cmp", "send_key": "run-1"}
            with httpx.Client(base_url=web.url, timeout=10) as c:
                for uid in recipients(100000):
                    if stop.is_set():
                        return
                    try:
                        statuses[uid] = c.post("/webhooks/braze", headers=BRAZE,
                                               json={**body, "punchh_user_id": str(uid)}
                                               ).status_code
                    except httpx.HTTPError:
                        statuses[uid] = 0
                    time.sleep(0.005)

        restarted.append(restart_under_load(redis_proc, port, data_dir, stream))
        refused = {s for s in statuses.values() if s != 202}
        assert refused <= {503, 0} and 503 in refused, refused
        client = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
        check_invariants(client, sandbox, "braze:aud-cmp:run-1", statuses,
                         web.log() + worker.log(), "audience: Redis restart mid-send", 1)
        client.close()
    finally:
        web.stop()
        worker.stop()
        for proc in restarted:
            proc.stop()
