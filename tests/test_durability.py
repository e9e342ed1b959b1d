"""Confirmed writes and the release check, on private Redis servers (a primary + replica pair).

The failover scenarios themselves, over real gunicorn and RQ processes, are in
tests/test_failover.py; here each piece is shown on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ledger import durability
from ledger.durability import DurabilityUnavailable, NotDurable
from ledger.states import State
from tests.conftest import base_env
from tests.failover import Pair, start_pair, start_plain_redis
from tests.helpers import dist_request, submit
from tests.procs import Proc, free_port, wait_until
from wiring import release_check
from wiring.services import Services
from wiring.settings import Settings

#: Every maxmemory-policy Redis has; only noeviction keeps every ledger record.
POLICIES = (
    "noeviction", "volatile-lru", "volatile-lfu", "volatile-ttl", "volatile-random",
    "allkeys-lru", "allkeys-lfu", "allkeys-random",
)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    made = start_pair(tmp_path)
    yield made
    made.stop()


@pytest.fixture
def lone(tmp_path: Path) -> Iterator[Proc]:
    """A single Redis: no replica, no persistence."""
    proc = start_plain_redis(free_port(), tmp_path / "lone")
    yield proc
    proc.stop()


def services_on(url: str, sandbox_url: str = "http://127.0.0.1:9", **extra: str) -> Services:
    return Services.build(Settings.from_env(base_env(url, sandbox_url, **extra)))


def test_release_check_refuses_every_eviction_policy_but_noeviction(lone: Proc) -> None:
    """volatile-* used to pass, yet committed records carry a TTL and so can be evicted."""
    services = services_on(lone.url)
    for policy in POLICIES:
        services.redis.config_set("maxmemory-policy", policy)
        item = release_check.check_redis(services)
        assert item.ok == (policy == "noeviction"), (policy, item.detail)
        if not item.ok:
            assert f"maxmemory-policy {policy}" in item.detail and "noeviction" in item.detail


def test_release_check_warns_where_a_crash_loses_writes(lone: Proc) -> None:
    services = services_on(lone.url)
    bare = release_check.check_durability(services)
    assert bare.ok and bare.warning
    assert "0 connected replica(s)" in bare.detail and "appendonly no" in bare.detail
    assert "a Redis crash loses every write since the last snapshot" in bare.detail
    services.redis.config_set("appendonly", "yes")
    services.redis.config_set("appendfsync", "everysec")
    aof = release_check.check_durability(services)
    assert aof.ok and aof.warning
    assert "appendonly yes (appendfsync everysec)" in aof.detail
    assert "fsynced every second" in aof.detail and "WAITAOF needs Redis 7.2" in aof.detail
    report = release_check.check(services, punchh=False)
    assert [c.name for c in report.items] == ["configuration", "redis", "durability"]


def test_release_check_with_a_replica(pair: Pair) -> None:
    services = services_on(f"redis://127.0.0.1:{pair.primary_port}/0")
    item = release_check.check_durability(services)
    assert item.ok and not item.warning, item.detail
    assert "waits for a replica (WAIT)" in item.detail and "1 connected replica(s)" in item.detail
    on_replica = services_on(f"redis://127.0.0.1:{pair.replica_port}/0")
    wrong = release_check.check_durability(on_replica)
    assert not wrong.ok and "not the primary" in wrong.detail


def test_durability_is_decided_from_what_redis_has(pair: Pair, lone: Proc) -> None:
    primary = redis.Redis(port=pair.primary_port)
    single = redis.Redis.from_url(lone.url)
    assert durability.resolve(primary, "auto").name == "replica"
    assert durability.resolve(single, "auto").name == "none"
    assert durability.resolve(single, "none").name == "none"
    with pytest.raises(DurabilityUnavailable, match="WAIT needs a connected replica"):
        durability.resolve(single, "replica")
    # This machine's Redis is 7.0: WAITAOF does not exist, and saying so is the whole error.
    with pytest.raises(DurabilityUnavailable, match=r"WAITAOF needs Redis 7\.2 or later"):
        durability.resolve(primary, "aof")
    services = services_on(lone.url, LEDGER_DURABILITY="aof")
    check = release_check.check_durability(services)
    assert not check.ok and "LEDGER_DURABILITY=aof cannot work here" in check.detail
    with pytest.raises(DurabilityUnavailable):
        services.ledger.decide_durability()
    primary.close()
    single.close()


def test_a_creation_waits_for_the_replica_and_a_count_does_not(pair: Pair) -> None:
    services = services_on(
        f"redis://127.0.0.1:{pair.primary_port}/0",
        LEDGER_DURABILITY="replica",
        LEDGER_DURABILITY_TIMEOUT_MS="300",
    )
    ledger = services.ledger
    confirmed = submit(services, dist_request("confirmed"))
    assert confirmed.outcome == "created"
    replica = pair.client(pair.replica_port)
    assert replica.hget(ledger.record_key(confirmed.distribution_id), "state") == "queued"

    pair.cut_link()
    with pytest.raises(NotDurable, match="no Redis replica acknowledged"):
        submit(services, dist_request("unconfirmed"))
    # Redis has it (the platform's retry is counted on it), but the caller was told 503.
    assert ledger.get("api:camp-1:unconfirmed") is not None
    assert services.queue.count == 1  # only the confirmed send's job: none without confirmation
    counted = submit(services, dist_request("confirmed"))
    assert (counted.outcome, counted.recipients) == ("counted", 2)  # no WAIT on this path

    # `committing` in the same pipeline as its WAIT: refused confirmation, no POST.
    ledger.transition(confirmed.distribution_id, State.RESOLVING)
    with pytest.raises(NotDurable):
        ledger.transition(
            confirmed.distribution_id, State.COMMITTING, allowed_from=("resolving",),
            durable=True,
        )
    services.redis.close()


def test_a_count_on_an_unconfirmed_send_waits_until_it_is_confirmed(pair: Pair) -> None:
    """A 2xx for a counted recipient must mean its send is durable too: while the send's own
    creation is unconfirmed, a count confirms it (or answers 503), then counts stop waiting."""
    services = services_on(
        f"redis://127.0.0.1:{pair.primary_port}/0",
        LEDGER_DURABILITY="replica",
        LEDGER_DURABILITY_TIMEOUT_MS="300",
    )
    ledger = services.ledger
    ledger.decide_durability()  # at start-up, with the replica linked
    replica = pair.client(pair.replica_port)
    pair.cut_link()
    with pytest.raises(NotDurable):
        submit(services, dist_request("late"))
    dist_id = "api:camp-1:late"
    with pytest.raises(NotDurable):
        submit(services, dist_request("late"))  # counted in Redis, but not answered 2xx
    assert replica.exists(ledger.record_key(dist_id)) == 0

    pair.mend_link()
    assert wait_until(pair.in_sync, 20)
    counted = submit(services, dist_request("late"))
    assert counted.outcome == "counted"
    assert replica.hget(ledger.record_key(dist_id), "state") == "queued"
    assert ledger.get(dist_id).fields.get("unconfirmed") is None  # type: ignore[union-attr]
    services.redis.close()


def test_a_redis_that_lost_its_scripts_still_confirms_the_creation(pair: Pair) -> None:
    """After a restart or failover Redis has no scripts: the intake loads and runs its script
    over the connection its WAIT is sent on, so a lagging replica is still waited for."""
    services = services_on(
        f"redis://127.0.0.1:{pair.primary_port}/0",
        LEDGER_DURABILITY="replica",
        LEDGER_DURABILITY_TIMEOUT_MS="300",
    )
    services.ledger.decide_durability()
    pair.client(pair.primary_port).script_flush()
    pair.link.stall()  # the replica stays connected but receives nothing: it lags
    try:
        with pytest.raises(NotDurable):
            submit(services, dist_request("after-restart"))
    finally:
        pair.link.stall(False)
    services.redis.close()


def test_an_unconfirmed_creation_is_a_503_with_retry_after(pair: Pair) -> None:
    from connector import create_app

    services = services_on(
        f"redis://127.0.0.1:{pair.primary_port}/0",
        LEDGER_DURABILITY="auto",
        LEDGER_DURABILITY_TIMEOUT_MS="300",
    )
    app = create_app(services.settings, services=services)
    app.testing = True
    client = app.test_client()
    services.ledger.decide_durability()  # at start-up, with the replica linked
    pair.cut_link()
    reply = client.post(
        "/webhooks/braze",
        json={"punchh_segment": "Lapsed 90 days", "punchh_redeemable": "Free Coffee",
              "campaign_id": "c", "send_key": "s"},
        headers={"Authorization": "Bearer braze-token-1"},
    )
    assert reply.status_code == 503 and reply.headers["Retry-After"]
    services.redis.close()


def test_counted_recipients_stay_one_round_trip_without_wait(pair: Pair) -> None:
    """Only a send's first request waits; every counted one is a single EVALSHA."""
    services = services_on(
        f"redis://127.0.0.1:{pair.primary_port}/0", LEDGER_DURABILITY="replica"
    )
    primary = pair.client(pair.primary_port)

    def calls() -> dict[str, int]:
        stats = primary.info("commandstats")
        return {
            name.removeprefix("cmdstat_"): int(v["calls"])
            for name, v in stats.items()
            if name not in ("cmdstat_info", "cmdstat_replconf", "cmdstat_ping")
        }

    before = calls()
    submit(services, dist_request("one-send"))
    created = calls()
    assert created.get("wait", 0) - before.get("wait", 0) == 1
    for _ in range(50):
        assert submit(services, dist_request("one-send")).outcome == "counted"
    after = calls()
    delta = {k: n - created.get(k, 0) for k, n in after.items() if n != created.get(k, 0)}
    # commandstats also counts the script's own calls (HMGET, HINCRBY): one EVALSHA each, and
    # nothing else sent by the client.
    assert delta.pop("evalsha") == 50 and "wait" not in delta, delta
    # (HSET and EXPIRE keep the campaign's open send: docs/send-identity.md.)
    assert set(delta) <= {"hmget", "hincrby", "hset", "expire"}, delta
    services.redis.close()
