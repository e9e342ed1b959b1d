"""How the ledger knows a write is durable: a replica's `WAIT`, the AOF's `WAITAOF`, or nothing.

Exactly-once rests on Redis remembering two writes: a distribution's creation (before the
marketing cloud hears 2xx) and its `committing` state (before the POST to Punchh). Redis
acknowledges a write once it is in memory; a failover to a replica that had not received it,
or a crash before the append-only file was fsynced, forgets it. So those two writes, and only
those, wait for Redis to confirm them:

- `replica`: `WAIT 1 <timeout>` — at least one replica holds the write;
- `aof`: `WAITAOF 1 0 <timeout>` (Redis 7.2+, appendonly on) — the primary fsynced it;
- `both`: both of the above;
- `none`: no confirmation (a single Redis without persistence has nothing to wait for);
- `auto` (the default): decided once per process at start-up from `INFO`: `both` when the
  primary has a connected replica and WAITAOF with appendonly, `replica` or `aof` when it
  has one of them, else `none` (logged as a warning, and reported by the release check).

`auto` decides at start-up rather than per write on purpose: a replica that has just fallen
behind is exactly the moment a write must not be waved through as durable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import redis

from ledger.record import as_text

log = logging.getLogger("ledger.store")

#: The first Redis version with WAITAOF.
WAITAOF_VERSION = (7, 2)


class NotDurable(redis.RedisError):
    """Redis did not confirm a write durable in time; a RedisError, so the web answers 503."""


class DurabilityUnavailable(NotDurable):
    """The configured confirmation cannot work on this Redis (no replica, no WAITAOF)."""


@dataclass(frozen=True)
class Durability:
    """What the ledger waits for after a creation or a `committing` write."""

    replica: bool
    aof: bool
    detail: str

    @property
    def name(self) -> str:
        """The mode in LEDGER_DURABILITY's words."""
        if self.replica and self.aof:
            return "both"
        return "replica" if self.replica else "aof" if self.aof else "none"

    def commands(self, timeout_ms: int) -> list[tuple[str | int, ...]]:
        """The commands that confirm the connection's previous writes, in order."""
        out: list[tuple[str | int, ...]] = []
        if self.replica:
            out.append(("WAIT", 1, timeout_ms))
        if self.aof:
            out.append(("WAITAOF", 1, 0, timeout_ms))
        return out

    def check(self, replies: list[Any], timeout_ms: int) -> None:
        """Raise NotDurable unless every confirmation came."""
        for reply in replies:
            if isinstance(reply, list):  # WAITAOF: [local fsyncs, replicas]
                if int(reply[0]) < 1:
                    raise NotDurable(
                        f"Redis did not fsync the write to its append-only file within "
                        f"{timeout_ms} ms"
                    )
            elif int(reply) < 1:
                raise NotDurable(f"no Redis replica acknowledged the write within {timeout_ms} ms")


def version_tuple(text: str) -> tuple[int, ...]:
    """'7.0.15' → (7, 0, 15); unparsable parts count as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in text.split("."))


def facts(client: redis.Redis) -> dict[str, Any]:
    """Version, role, connected replicas, persistence and eviction policy, from INFO."""
    info: dict[str, Any] = client.info("everything")
    try:
        config = cast(dict[str, Any], client.config_get("appendfsync"))
        config.update(cast(dict[str, Any], client.config_get("save")))
    except redis.ResponseError:
        config = {}  # hosted Redis often forbids CONFIG: fsync and snapshots go unreported
    return {
        "version": str(info.get("redis_version", "0")),
        "role": str(info.get("role", "master")),
        "replicas": int(info.get("connected_slaves", 0) or 0),
        "aof": bool(int(info.get("aof_enabled", 0) or 0)),
        "fsync": as_text(config.get("appendfsync", "")),
        "save": as_text(config["save"]) if "save" in config else None,
        "policy": str(info.get("maxmemory_policy", "unknown")),
    }


def resolve(client: redis.Redis, mode: str) -> Durability:
    """Turn LEDGER_DURABILITY into what to wait for, or raise DurabilityUnavailable."""
    if mode == "none":
        return Durability(False, False, "LEDGER_DURABILITY=none: writes are not confirmed")
    found = facts(client)
    waitaof = version_tuple(found["version"]) >= WAITAOF_VERSION
    has_replica = found["replicas"] > 0
    has_aof = found["aof"] and waitaof
    seen = (
        f"Redis {found['version']}, {found['replicas']} connected replica(s), "
        f"appendonly {'yes' if found['aof'] else 'no'}"
    )
    if mode == "auto":
        chosen = Durability(has_replica, has_aof, f"auto: {seen}")
        if chosen.name == "none":
            log.warning(
                "ledger writes are not confirmed durable: Redis has no replica and no "
                "WAITAOF-capable append-only file; a crash or failover can forget them",
                extra={"detail": seen},
            )
        return chosen
    problems = []
    if mode in ("aof", "both"):
        if not waitaof:
            problems.append(f"WAITAOF needs Redis 7.2 or later ({seen})")
        elif not found["aof"]:
            problems.append(f"WAITAOF needs appendonly yes ({seen})")
    if mode in ("replica", "both") and not has_replica:
        problems.append(f"WAIT needs a connected replica ({seen})")
    if problems:
        raise DurabilityUnavailable(
            f"LEDGER_DURABILITY={mode} cannot work here: " + "; ".join(problems)
        )
    return Durability(mode in ("replica", "both"), mode in ("aof", "both"), f"{mode}: {seen}")


#: Durability decided per Redis server and mode in this process. Kept at module level so it
#: survives fork: RQ's work horse uses what its worker decided at start-up, not what `auto`
#: would see in the middle of a failover (a replica just lost looks like no replica at all).
_DECIDED: dict[tuple[str, str], Durability] = {}


def decided(client: redis.Redis, mode: str) -> Durability:
    """What this process waits for on `client`'s server in `mode`: decided once, then kept."""
    kw = client.connection_pool.connection_kwargs
    server = f"{kw.get('host', '')}:{kw.get('port', '')}{kw.get('path', '')}/{kw.get('db', 0)}"
    key = (server, mode)
    found = _DECIDED.get(key)
    if found is None:
        found = _DECIDED[key] = resolve(client, mode)
    return found


def decide_at_start(client: redis.Redis, mode: str) -> Durability | None:
    """At start-up: decide now, while Redis looks as it normally does.

    A configuration that cannot work (WAITAOF on Redis 7.0, WAIT with no replica) raises
    DurabilityUnavailable so the process fails at once; an unreachable Redis only defers
    the decision to the first write, as the web tier must start (and answer 503) without it.
    """
    try:
        return decided(client, mode)
    except DurabilityUnavailable:
        raise
    except redis.RedisError:
        return None
