"""End to end: Journey Builder's signed execute calls → gunicorn → Redis → RQ worker → sandbox."""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import auth
from tests.helpers import campaigns
from tests.procs import Proc, start_gunicorn, start_worker, wait_until
from tests.sfmc_sim import execute_claims, sign

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

JOURNEY = "a4dcaf9f-0000-4000-8000-00000000e2e1"
ACTIVITY = "62d6fed2-0000-4000-8000-00000000e2e2"
CONTACTS = 1000
CONNECTIONS = 10  # Journey Builder's concurrentRequests in config.json
PLANTED = ("contact-key-", "planted-mail-", "Zqxname")


@pytest.fixture
def debug_procs(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client
) -> Iterator[tuple[Proc, Proc]]:
    """gunicorn and a worker logging at DEBUG, so even the quietest lines are checked."""
    env["LOG_LEVEL"] = "DEBUG"
    web = start_gunicorn(env)
    worker = start_worker(env)
    yield web, worker
    worker.stop()
    web.stop()


def contact_body(n: int, run_id: str) -> str:
    """Contact n's signed execute body, with guest data planted where JB would put it."""
    claims = execute_claims(
        journey_id=JOURNEY,
        activity_id=ACTIVITY,
        instance=f"{run_id}-instance-{n:05d}",
        key_value=f"contact-key-{n}@example.com",
        extra_args={
            "run_id": run_id,
            "emailAddress": f"planted-mail-{n}@example.com",
            "FirstName": f"Zqxname{n}",
        },
    )
    claims["iat"] = int(time.time())
    return sign(claims, secret="sfmc-secret-two" if n % 2 else "sfmc-secret-one")


def send_all(url: str, bodies: list[str]) -> list[dict[str, Any]]:
    """POST every body over CONNECTIONS keep-alive connections, as JB's workers would."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def post(body: str) -> dict[str, Any]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=10)
            with lock:
                clients.append(client)
        reply = client.post(
            "/sfmc/execute", content=body, headers={"Content-Type": "application/jwt"}
        )
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    try:
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            return list(pool.map(post, bodies))
    finally:
        for client in clients:
            client.close()


def wait_committed(web: Proc, dist_id: str, timeout: float = 30) -> dict[str, Any]:
    """The distribution once it is committed (fails the test otherwise)."""
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.update(httpx.get(f"{web.url}/v1/distributions/{dist_id}", headers=auth()).json())
        return seen.get("state") in {"committed", "rejected", "failed", "held", "unknown"}

    assert wait_until(done, timeout, 0.2), seen
    assert seen["state"] == "committed", seen
    return seen


def _blobs(value: Any) -> Iterator[bytes]:
    """A value's raw bytes, and its zlib-decompressed bytes when it is compressed (RQ jobs)."""
    if isinstance(value, bytes):
        yield value
        try:
            inflated = zlib.decompress(value)
        except zlib.error:
            return
        yield inflated


def redis_bytes(rdb: redis.Redis) -> Iterator[tuple[bytes, bytes]]:
    """(key, blob) for every key name, string, hash field/value, list, set and zset member."""
    for key in rdb.scan_iter(count=1000):
        yield key, key
        kind = rdb.type(key)
        values: list[Any] = []
        if kind == b"string":
            values = [rdb.get(key)]
        elif kind == b"hash":
            for field, value in rdb.hgetall(key).items():
                values += [field, value]
        elif kind == b"list":
            values = rdb.lrange(key, 0, -1)
        elif kind == b"set":
            values = list(rdb.smembers(key))
        elif kind == b"zset":
            values = [member for member, _ in rdb.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            for _, entry in rdb.xrange(key):
                for field, value in entry.items():
                    values += [field, value]
        for value in values:
            for blob in _blobs(value):
                yield key, blob


def test_a_run_of_1000_contacts_makes_one_campaign_and_stores_no_contact(
    debug_procs: tuple[Proc, Proc], sandbox: httpx.Client, rdb: redis.Redis
) -> None:
    web, worker = debug_procs
    started = time.monotonic()
    run = "spring-run-1"
    bodies = [contact_body(n, run) for n in range(CONTACTS)]
    # JB retries a call it saw time out: the same body, same definitionInstanceId.
    retried = [bodies[n] for n in range(0, CONTACTS, 7)]
    sends = bodies + retried
    random.Random(4).shuffle(sends)
    answers = send_all(web.url, sends)

    dist_id = f"sfmc:{JOURNEY}:{ACTIVITY}:{run}"
    assert {a["punchh_distribution_id"] for a in answers} == {dist_id}
    statuses = Counter(a["punchh_status"] for a in answers)
    assert statuses["accepted"] == 1
    assert statuses["accepted"] + statuses["counted"] == len(sends), statuses

    dist = wait_committed(web, dist_id)
    assert dist["recipients"] == CONTACTS
    assert dist["key_rule"] == "run_id"
    made = campaigns(sandbox)
    assert len(made) == 1
    assert made[0]["body"]["external_campaign_id"] == dist_id
    assert made[0]["campaign_id"] == dist["campaign_id"]

    # A second run of the same activity within the fan-out window waits for an operator;
    # released, it is a second campaign.
    second = [contact_body(n, "spring-run-2") for n in range(40)]
    answers2 = send_all(web.url, second + second[:5])
    dist2_id = f"sfmc:{JOURNEY}:{ACTIVITY}:spring-run-2"
    assert {a["punchh_distribution_id"] for a in answers2} == {dist2_id}
    shown = httpx.get(f"{web.url}/v1/distributions/{dist2_id}", headers=auth()).json()
    assert shown["state"] == "held", shown
    released = httpx.post(
        f"{web.url}/v1/distributions/{dist2_id}/release", headers=auth()
    )
    assert released.status_code == 200, released.text
    assert wait_committed(web, dist2_id)["recipients"] == 40
    assert len(campaigns(sandbox)) == 2

    # No contact key, planted e-mail or name anywhere in Redis or in the processes' logs.
    scanned = 0
    for key, blob in redis_bytes(rdb):
        scanned += 1
        for needle in PLANTED:
            assert needle.encode() not in blob, (key, needle)
    assert scanned > 0
    web.stop()
    worker.stop()
    logs = web.log() + worker.log()
    assert "sfmc" in logs  # the logs were written, at DEBUG, and are being searched
    for needle in (*PLANTED, "@example.com"):
        assert needle not in logs, needle
    assert sign(execute_claims())[:20] not in logs  # no JWT either
    assert time.monotonic() - started < 60
