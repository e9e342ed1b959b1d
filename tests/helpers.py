"""Small helpers shared by tests: building requests, reading the sandbox."""

from __future__ import annotations

from typing import Any

import httpx

from adapters.types import RECIPIENTS_AUDIENCE, DistributionRequest, Guest
from ledger import intake
from ledger.states import IntakeResult
from wiring.services import Services


def dist_request(
    send_key: str = "send-1",
    *,
    source: str = "api",
    campaign_ref: str = "camp-1",
    segment: str = "Lapsed 90 days",
    redeemable: str = "Free Coffee",
    replay_token: str | None = None,
) -> DistributionRequest:
    """A DistributionRequest with sensible defaults."""
    return DistributionRequest(
        source=source,
        campaign_ref=campaign_ref,
        send_key=send_key,
        key_rule="test",
        segment=segment,
        redeemable=redeemable,
        replay_token=replay_token,
    )


def audience_request(
    send_key: str = "send-1", *, campaign_ref: str = "camp-1"
) -> DistributionRequest:
    """A request of a send that gifts its own recipients (audience mode)."""
    return DistributionRequest(
        source="api",
        campaign_ref=campaign_ref,
        send_key=send_key,
        key_rule="test",
        segment="",
        redeemable="Free Coffee",
        audience=RECIPIENTS_AUDIENCE,
    )


def submit(
    services: Services, req: DistributionRequest, guest: Guest | None = None
) -> IntakeResult:
    """The intake step as the web tier takes it: the services' ledger, queue and alert setting."""
    alerts = bool(services.settings.alert_webhook_url)
    return intake.submit(services.ledger, services.queue, req, alerts=alerts, guest=guest)


def campaigns(sandbox: httpx.Client) -> list[dict[str, Any]]:
    """Every campaign the sandbox created."""
    reply = sandbox.get("/_sandbox/campaigns")
    reply.raise_for_status()
    body = reply.json()
    return list(body["campaigns"] if isinstance(body, dict) else body)


def fault(sandbox: httpx.Client, endpoint: str, mode: str, count: int = 1, **extra: Any) -> None:
    """Queue a fault for the next `count` requests to an endpoint."""
    reply = sandbox.post(
        "/_sandbox/faults", json={"endpoint": endpoint, "mode": mode, "count": count, **extra}
    )
    reply.raise_for_status()


def request_count(sandbox: httpx.Client, endpoint: str, status: int | None = None) -> int:
    """How many requests the sandbox saw on an endpoint (optionally with one status)."""
    body = sandbox.get("/_sandbox/requests").json()
    if status is None:
        return int(body["totals"].get(endpoint, 0))
    return int(body["counts"].get(endpoint, {}).get(str(status), 0))


def redis_dump(rdb: Any) -> bytes:
    """Every key and value in the test database as bytes, RQ's compressed payloads inflated."""
    import contextlib
    import zlib

    chunks: list[bytes] = []
    for key in rdb.scan_iter(count=1000):
        chunks.append(key)
        kind = rdb.type(key).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [rdb.get(key)]
        elif kind == "hash":
            for field_name, value in rdb.hgetall(key).items():
                values += [field_name, value]
        elif kind == "list":
            values = rdb.lrange(key, 0, -1)
        elif kind == "set":
            values = list(rdb.smembers(key))
        elif kind == "zset":
            values = [m for m, _ in rdb.zrange(key, 0, -1, withscores=True)]
        for value in values:
            chunks.append(value)
            with contextlib.suppress(zlib.error):
                chunks.append(zlib.decompress(value))
    return b"\n".join(chunks)


def leaked(haystack: bytes | str, needles: list[str]) -> list[str]:
    """The needles that occur in the haystack (case-insensitive)."""
    text = haystack.decode(errors="replace") if isinstance(haystack, bytes) else haystack
    lowered = text.lower()
    return [n for n in needles if n.lower() in lowered]
