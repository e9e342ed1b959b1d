"""What the SFMC endpoint tests share: signing and posting Journey Builder's bodies."""

from __future__ import annotations

import base64
from typing import Any

import redis
from flask.testing import FlaskClient

from tests.sfmc_sim import execute_claims, sign

ACTIVITY = "62d6fed2-0000-4000-8000-000000000002"
JOURNEY = "a4dcaf9f-0000-4000-8000-000000000001"
JWT_TYPE = {"Content-Type": "application/jwt"}


def post_jwt(client: FlaskClient, path: str, claims: dict[str, Any], **kw: Any):  # type: ignore[no-untyped-def]
    return client.post(f"/sfmc/{path}", data=sign(claims, **kw), headers=JWT_TYPE)


def execute(client: FlaskClient, **kw: Any):  # type: ignore[no-untyped-def]
    return post_jwt(client, "execute", execute_claims(**kw))


def keys(rdb: redis.Redis) -> list[str]:
    """Every key but the shared metrics hash (refusals are counted there, by design)."""
    return sorted(k.decode() for k in rdb.keys("*") if k != b"pc:m")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def record(rdb: redis.Redis, activity: str = ACTIVITY) -> dict[str, str]:
    """The activity record the lifecycle calls and the UI keep (never guest data)."""
    raw = rdb.hgetall(f"pc:sfmc:act:{activity}")
    return {k.decode(): v.decode() for k, v in raw.items()}
