"""The intake's per-thread Redis connections: separate per thread, and they survive a kill."""

from __future__ import annotations

import threading
from pathlib import Path

import redis

from adapters.types import DistributionRequest
from tests.procs import free_port, start_redis
from wiring.services import Services
from wiring.settings import Settings

REQ = DistributionRequest(
    source="api",
    campaign_ref="c-1",
    send_key="k-1",
    key_rule="idempotency_key",
    segment="Lapsed 90 days",
    redeemable="Free Coffee",
)


def client_id(services: Services) -> int:
    return int(services.ledger.connections.execute("CLIENT", "ID"))


def test_each_thread_keeps_its_own_connection(services: Services) -> None:
    ids: list[int] = []
    for _ in range(2):
        worker = threading.Thread(target=lambda: ids.append(client_id(services)))
        worker.start()
        worker.join()
    here = client_id(services)
    assert len({*ids, here}) == 3
    assert client_id(services) == here  # kept, not reconnected per command


def test_a_killed_connection_is_replaced_and_nothing_is_lost(
    services: Services, rdb: redis.Redis
) -> None:
    assert services.ledger.intake(REQ).outcome == "created"
    rdb.client_kill_filter(_id=str(client_id(services)))
    assert services.ledger.intake(REQ).outcome == "counted"
    rdb.client_kill_filter(_id=str(client_id(services)))
    services.ledger.incr("test:after-kill")
    record = services.ledger.get(REQ.distribution_id)
    assert record is not None and record.int_field("recipients") == 2
    assert rdb.hget(services.ledger.metrics_key, "test:after-kill") == b"1"


def test_a_restarted_redis_is_reconnected_and_its_lost_scripts_reloaded(
    settings: Settings, tmp_path: Path
) -> None:
    """A private Redis (SCRIPT FLUSH and a restart are server-wide): after the restart the
    thread's connection is dead and the server has no scripts; the next intake still counts."""
    port = free_port()
    server = start_redis(port, tmp_path)
    try:
        services = Services.build(settings, client=redis.Redis(port=port))
        assert services.ledger.intake(REQ).outcome == "created"
        server.stop()
        server = start_redis(port, tmp_path)  # append-only file: the record survives
        assert services.ledger.intake(REQ).outcome == "counted"
        record = services.ledger.get(REQ.distribution_id)
        assert record is not None and record.int_field("recipients") == 2
    finally:
        server.stop()
