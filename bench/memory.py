"""Redis memory: per distribution, and growth with the recipients of one send.

Measured on a private, otherwise empty redis-server, through the connector's own intake
(`ledger.intake.submit`: the same Lua call and RQ enqueue the web tier makes), in process:
HTTP adds nothing to what Redis stores. Requests are built by the real adapters from the
bodies the load scripts send, so records carry what real ones carry (names, trace, campaign
name). "used memory" below is INFO `used_memory` minus `mem_clients_normal` (the benchmark's
own connection buffers, which are noise here).
"""

from __future__ import annotations

import dataclasses
import random
import string
import time
from typing import Any

import redis

from adapters import braze as braze_adapter
from adapters import sfmc as sfmc_adapter
from adapters.types import DistributionRequest, Guest
from bench.audience import AudienceSend
from bench.load import SfmcRun, braze_body, braze_send
from ledger.intake import submit
from wiring.services import Services
from wiring.settings import Settings


def used_memory(client: redis.Redis) -> int:
    """Bytes Redis uses for data and its own structures, client buffers left out.

    Read over a fresh connection with every other one of ours closed: Redis shrinks a
    client's query buffer only now and then (one that sent SCRIPT LOAD holds a large one for a
    while), and that showed up as "growth" when subtracted at one reading and not the next.
    """
    client.connection_pool.disconnect()
    info = client.info("memory")
    return int(info["used_memory"]) - int(info.get("mem_clients_normal", 0))


def _mean(values: Any) -> float | None:
    """Average of the non-None values."""
    got = [int(v) for v in values if v is not None]
    return round(sum(got) / len(got), 1) if got else None


def _text(value: Any) -> str:
    """bytes or str as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _braze_request(campaign: str, send_key: str) -> DistributionRequest:
    return braze_adapter.parse(braze_body(campaign, send_key, "u-1")).request


def _sfmc_request(run: SfmcRun, contact: int) -> DistributionRequest:
    return sfmc_adapter.parse_execute(run.payload(contact)).request


def measure(
    settings: Settings, *, distributions: int, low: int, high: int, audience_recipients: int
) -> dict[str, Any]:
    """Per-distribution bytes and growth from `low` to `high` recipients, Braze and SFMC; the
    bytes of an audience send's identifiers waiting for their batch."""
    services = Services.build(settings)
    client = services.redis
    try:
        client.flushdb()
        out: dict[str, Any] = {"redis_version": client.info("server")["redis_version"]}

        # Shared structures (index, active set, metrics hash, RQ's queue) exist once, not per
        # distribution: make them, then measure what each further distribution adds.
        for _ in range(20):
            submit(services.ledger, services.queue, _braze_request(*braze_send()), alerts=False)
        before = used_memory(client)
        ids = [submit(services.ledger, services.queue, _braze_request(*braze_send()),
                      alerts=False).distribution_id for _ in range(distributions)]
        after = used_memory(client)
        out["distributions"] = distributions
        out["per_distribution_bytes"] = round((after - before) / distributions, 1)
        sample = ids[:: max(1, distributions // 50)]
        keys = [services.ledger.record_key(i) for i in sample]
        out["record_bytes"] = _mean(client.memory_usage(key) for key in keys)
        out["record_encoding"] = _text(client.object("encoding", keys[0]))
        job_ids = [client.hget(services.ledger.record_key(i), "job_id") for i in sample]
        out["queued_job_bytes"] = _mean(
            client.memory_usage(f"rq:job:{_text(j)}") for j in job_ids if j is not None
        )

        # The ledger's own share: the same requests through Ledger.intake alone (no RQ job).
        before = used_memory(client)
        for _ in range(distributions):
            services.ledger.intake(_braze_request(*braze_send()))
        out["ledger_per_distribution_bytes"] = round(
            (used_memory(client) - before) / distributions, 1
        )

        out["braze"] = _growth(
            client, services, lambda n, req: req, _braze_request(*braze_send()), low, high
        )
        run = SfmcRun.new("mem")
        first = _sfmc_request(run, 0)

        def contact(n: int, req: DistributionRequest) -> DistributionRequest:
            # What parse_execute gives for contact n (only the replay token differs).
            token = sfmc_adapter.replay_token(run.activity_id, f"{run.run_id}-di-{n:08d}")
            return dataclasses.replace(req, replay_token=token)

        out["sfmc"] = _growth(client, services, contact, first, low, high)

        # The replay keys behind that growth live SFMC_DEDUPE_SECONDS each. The same send
        # again with a 2 s window, each reading taken once the window has passed, shows what
        # is left of them: the growth is a function of the rate and the window, not of the
        # audience.
        client.flushdb()  # the first send's replay keys would outlive this measurement
        short = Services.build(dataclasses.replace(settings, sfmc_dedupe_seconds=2))
        try:
            run = SfmcRun.new("mem-window")
            first = _sfmc_request(run, 0)
            out["sfmc_after_window"] = {
                "window_seconds": 2,
                **_growth(client, short, contact, first, low, high, settle=2.5),
            }
        finally:
            short.redis.close()
        client.flushdb()
        out["audience"] = audience_waiting(client, services, audience_recipients)
        return out
    finally:
        client.flushdb()
        client.close()


def _reading(client: redis.Redis, services: Services, settle: float) -> int:
    """used_memory after closing the intake's own connection (see used_memory)."""
    services.ledger.connections.close()
    if settle:
        time.sleep(settle)
        pattern = services.ledger.replay_key("*")
        deadline = time.monotonic() + 30
        # SCAN deletes the expired keys it meets, so this also finishes Redis's expiry.
        while any(True for _ in client.scan_iter(match=pattern, count=10_000)):
            if time.monotonic() > deadline:
                raise RuntimeError("replay keys did not expire")
            time.sleep(0.2)
        time.sleep(1.0)  # Redis's cron shrinks the emptied key tables (10 times a second)
    return used_memory(client)


def _growth(
    client: redis.Redis,
    services: Services,
    vary: Any,
    req: DistributionRequest,
    low: int,
    high: int,
    *,
    settle: float = 0.0,
) -> dict[str, Any]:
    """Count `low` recipients of one send, then up to `high`; memory at both points.

    With `settle`, each reading waits that long and then until no replay key is left.
    """
    for n in range(low):
        submit(services.ledger, services.queue, vary(n, req), alerts=False)
    at_low = _reading(client, services, settle)
    for n in range(low, high):
        submit(services.ledger, services.queue, vary(n, req), alerts=False)
    at_high = _reading(client, services, settle)
    record = services.ledger.get(req.distribution_id)
    return {
        "recipients_counted": record.int_field("recipients") if record else None,
        "low": low,
        "high": high,
        "used_at_low": at_low,
        "used_at_high": at_high,
        "growth_bytes": at_high - at_low,
        "growth_per_recipient": round((at_high - at_low) / (high - low), 2),
        "keys": client.dbsize(),
    }


_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "example.org")


def realistic_user_id(rng: random.Random) -> str:
    """A Punchh user id of 6 to 9 digits, each length as likely."""
    digits = rng.randint(6, 9)
    return str(rng.randrange(10 ** (digits - 1), 10**digits))


def realistic_email(rng: random.Random) -> str:
    """An address of about 25 characters: first.last plus a number, at a common domain."""
    first = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 8)))
    last = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 8)))
    return f"{first}.{last}{rng.randint(1, 99)}@{rng.choice(_DOMAINS)}"


def audience_waiting(client: redis.Redis, services: Services, n: int) -> dict[str, Any]:
    """Bytes per identifier on an audience send's pending list: `n` recipients of one send
    through the intake (no worker here, so every one is still waiting), user ids, then emails."""
    rng = random.Random(13)
    out: dict[str, Any] = {"recipients": n}
    for kind, make in (("user_id", realistic_user_id), ("email", realistic_email)):
        send = AudienceSend.new()
        body = send.body(0)
        call = braze_adapter.parse(body)
        values = [make(rng) for _ in range(n)]
        before = _reading(client, services, 0.0)
        for value in values:
            guest = Guest(kind, value)
            submit(services.ledger, services.queue, call.request, alerts=False, guest=guest)
        after = _reading(client, services, 0.0)
        key = services.ledger.audience.pending_key(send.distribution_id)
        length = int(client.llen(key))
        usage = int(client.memory_usage(key, samples=0) or 0)
        out[kind] = {
            "waiting": length,
            "mean_identifier_chars": round(sum(map(len, values)) / n, 1),
            "pending_list_bytes": usage,
            "encoding": _text(client.object("encoding", key)),
            "bytes_per_recipient": round(usage / length, 1) if length else None,
            "used_memory_per_recipient": round((after - before) / n, 1),
        }
        client.flushdb()
    return out
