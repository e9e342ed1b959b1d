"""The Redis ledger: one small hash per distribution, and the single atomic intake step."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from connector.models import (
    ACTIVE_STATES,
    DistributionRequest,
    IntakeResult,
    State,
)
from connector.pinned import ThreadConnections

#: Sources whose send keys come from marketer-built templates, so the fan-out guard applies.
GUARDED_SOURCES = frozenset({"braze", "sfmc"})

#: Record fields holding non-guest tracing context (Braze names, dispatch id).
TRACE_PREFIX = "t_"

#: Events kept per distribution (state changes and admin actions).
MAX_EVENTS = 50

# Intake, in two scripts sharing their KEYS and ARGV layout. KEYS: record, replay token (''
# when none), metrics, then for a creation index, fan-out set, active set. ARGV: now,
# segment, redeemable, replay ttl, source, then for a creation fan-out limit (0 = no guard),
# fan-out window, send key, distribution id, and the new record's field/value pairs.
_REPLAY = """
if KEYS[2] ~= '' then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[4])) then
    local st = redis.call('HGET', KEYS[1], 'state')
    redis.call('HINCRBY', KEYS[3], 'intake:' .. ARGV[5] .. ':replay', 1)
    return {'replay', st or '', '0'}
  end
end
"""
_EXISTING = """
if cur[1] then
  if cur[2] ~= ARGV[2] or cur[3] ~= ARGV[3] then
    redis.call('HINCRBY', KEYS[1], 'conflicts', 1)
    redis.call('HINCRBY', KEYS[3], 'intake:' .. ARGV[5] .. ':conflict', 1)
    return {'conflict', cur[1], '0', cur[2], cur[3]}
  end
  local n = redis.call('HINCRBY', KEYS[1], 'recipients', 1)
  redis.call('HINCRBY', KEYS[1], 'per_minute:' .. math.floor(tonumber(ARGV[1]) / 60), 1)
  redis.call('HINCRBY', KEYS[3], 'intake:' .. ARGV[5] .. ':counted', 1)
  return {'counted', cur[1], tostring(n)}
end
"""
_READ_CURRENT = "local cur = redis.call('HMGET', KEYS[1], 'state', 'segment', 'redeemable')\n"
# Every recipient after the first of a send: a few short arguments, one round trip.
_COUNT_LUA = _READ_CURRENT + "if not cur[1] then return {'missing'} end\n" + _REPLAY + _EXISTING
# The first recipient (or two racing first ones): create the record, or count if it exists.
_INTAKE_LUA = (
    _REPLAY
    + _READ_CURRENT
    + _EXISTING
    + """
local now = tonumber(ARGV[1])
local state = 'queued'
local limit = tonumber(ARGV[6])
if limit > 0 then
  local window = tonumber(ARGV[7])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - window)
  redis.call('ZADD', KEYS[5], 'NX', now, ARGV[8])
  redis.call('EXPIRE', KEYS[5], window)
  if redis.call('ZCARD', KEYS[5]) > limit then state = 'held' end
end
local fields = {'state', state, 'recipients', '1', 'created_at', ARGV[1], 'updated_at', ARGV[1]}
for i = 10, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[4], now, ARGV[9])
if state == 'queued' then redis.call('ZADD', KEYS[6], now, ARGV[9]) end
redis.call('HINCRBY', KEYS[3], 'intake:' .. ARGV[5] .. ':created', 1)
return {'created', state, '1'}
"""
)

# Compare-and-set a state change. KEYS: record, events, active set. ARGV: now, new state,
# retention seconds (0 = keep), event JSON, id, allowed states (comma list, '' = any),
# then field/value pairs to set.
_TRANSITION_LUA = """
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {0, ''} end
if ARGV[6] ~= '' then
  local ok = false
  for s in string.gmatch(ARGV[6], '[^,]+') do if s == cur then ok = true end end
  if not ok then return {0, cur} end
end
local fields = {'state', ARGV[2], 'updated_at', ARGV[1]}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('LPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], 0, %d)
local ttl = tonumber(ARGV[3])
if ARGV[2] == 'queued' or ARGV[2] == 'resolving' or ARGV[2] == 'committing' then
  redis.call('ZADD', KEYS[3], tonumber(ARGV[1]), ARGV[5])
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
else
  redis.call('ZREM', KEYS[3], ARGV[5])
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('EXPIRE', KEYS[2], ttl)
  end
end
return {1, cur}
""".replace("%d", str(MAX_EVENTS - 1))

# Release a lock only if we still own it.
_UNLOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_EXTEND_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


@dataclass(frozen=True)
class Distribution:
    """A distribution record as read from Redis."""

    id: str
    fields: dict[str, str]

    @property
    def state(self) -> str:
        """Current state name."""
        return self.fields.get("state", "")

    def int_field(self, name: str, default: int = 0) -> int:
        """A counter field as an int."""
        try:
            return int(self.fields.get(name, default))
        except ValueError:
            return default

    def float_field(self, name: str) -> float | None:
        """A timestamp field as a float, or None."""
        raw = self.fields.get(name)
        return float(raw) if raw else None

    def as_dict(self) -> dict[str, Any]:
        """The record as the status API shows it."""
        f = self.fields
        segment_id = f.get("segment_id")
        campaign_id = f.get("campaign_id")
        return {
            "distribution_id": self.id,
            "state": self.state,
            "source": f.get("source"),
            "campaign_ref": f.get("campaign_ref"),
            "send_key": f.get("send_key"),
            "key_rule": f.get("key_rule"),
            "segment": f.get("segment"),
            "redeemable": f.get("redeemable"),
            "segment_id": int(segment_id) if segment_id else None,
            "redeemable_uuid": f.get("redeemable_uuid") or None,
            "campaign_name": f.get("campaign_name") or None,
            "start_time_requested": f.get("start_time_requested") or None,
            "start_time": f.get("start_time") or None,
            "recipients": self.int_field("recipients"),
            "conflicts": self.int_field("conflicts"),
            "attempts": self.int_field("attempts"),
            "last_error": f.get("last_error") or None,
            "campaign_id": int(campaign_id) if campaign_id else None,
            "next_attempt_at": _iso(self.float_field("next_attempt_at")),
            "created_at": _iso(self.float_field("created_at")),
            "updated_at": _iso(self.float_field("updated_at")),
            "committed_at": _iso(self.float_field("committed_at")),
            "trace": {k[len(TRACE_PREFIX):]: v for k, v in f.items() if k.startswith(TRACE_PREFIX)},
        }


def _iso(ts: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _text(value: Any) -> str:
    """Redis replies as text, whatever decode_responses says."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _record_fields(req: DistributionRequest) -> list[str]:
    """A new record's fields as a flat field/value list (all but state and counters)."""
    record: dict[str, str] = {
        "source": req.source,
        "campaign_ref": req.campaign_ref,
        "send_key": req.send_key,
        "key_rule": req.key_rule,
        "segment": req.segment,
        "redeemable": req.redeemable,
        "attempts": "0",
        "conflicts": "0",
    }
    if req.start_time is not None:
        record["start_time_requested"] = req.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    if req.campaign_name:
        record["campaign_name"] = req.campaign_name
    for name, value in req.trace.items():
        # One short field each rather than one JSON blob: a hash whose values all stay under
        # 64 bytes is kept in Redis's compact listpack encoding (≈ 540 B instead of ≈ 1.4 KB).
        if not (name == "dispatch_id" and value == req.send_key):
            record[TRACE_PREFIX + name] = value
    return [item for pair in record.items() for item in pair]


class Ledger:
    """Distribution records in Redis; knows nothing of HTTP or Punchh."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "pc:",
        retention_seconds: int = 7 * 86400,
        fanout_limit: int = 3,
        fanout_window_seconds: int = 3600,
        replay_seconds: int = 900,
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.retention_seconds = retention_seconds
        self.fanout_limit = fanout_limit
        self.fanout_window_seconds = fanout_window_seconds
        self.replay_seconds = replay_seconds
        self.index_key = f"{prefix}idx"
        self.active_key = f"{prefix}active"
        self.metrics_key = f"{prefix}m"
        #: The intake's per-request commands go over the serving thread's own connection.
        self.connections = ThreadConnections(client)
        self._count = client.register_script(_COUNT_LUA)
        self._intake = client.register_script(_INTAKE_LUA)
        self._transition = client.register_script(_TRANSITION_LUA)
        self._unlock = client.register_script(_UNLOCK_LUA)
        self._extend = client.register_script(_EXTEND_LUA)

    # --- keys -----------------------------------------------------------------------------
    def record_key(self, distribution_id: str) -> str:
        """The hash holding one distribution."""
        return f"{self.prefix}d:{distribution_id}"

    def events_key(self, distribution_id: str) -> str:
        """The capped list of one distribution's events."""
        return f"{self.prefix}ev:{distribution_id}"

    def lock_key(self, distribution_id: str) -> str:
        """The per-distribution worker lock."""
        return f"{self.prefix}lk:{distribution_id}"

    # --- intake ---------------------------------------------------------------------------
    def intake(self, req: DistributionRequest, *, now: float | None = None) -> IntakeResult:
        """Count one more recipient, or create the record: atomic, and one round trip for
        every request but the first of a send (which takes a second, carrying the record)."""
        now = time.time() if now is None else now
        dist_id = req.distribution_id
        keys = [
            self.record_key(dist_id),
            # replay_seconds 0 turns retry recognition off (SFMC_DEDUPE_SECONDS=0).
            f"{self.prefix}rp:{req.replay_token}" if req.replay_token and self.replay_seconds
            else "",
            self.metrics_key,
        ]
        args: list[str | int] = [
            repr(now), req.segment, req.redeemable, self.replay_seconds, req.source
        ]
        reply = cast(list[Any], self._run(self._count, keys, args))
        if _text(reply[0]) == "missing":
            keys += [
                self.index_key,
                f"{self.prefix}fo:{req.source}:{req.campaign_ref}",
                self.active_key,
            ]
            guarded = req.source in GUARDED_SOURCES
            args += [
                self.fanout_limit if guarded else 0,
                self.fanout_window_seconds,
                req.send_key,
                dist_id,
                *_record_fields(req),
            ]
            reply = cast(list[Any], self._run(self._intake, keys, args))
        parts = [_text(p) for p in reply]
        return IntakeResult(
            distribution_id=dist_id,
            outcome=parts[0],
            state=parts[1],
            recipients=int(parts[2]),
            existing_segment=parts[3] if len(parts) > 3 else None,
            existing_redeemable=parts[4] if len(parts) > 4 else None,
        )

    def _run(self, script: Script, keys: list[str], args: list[str | int]) -> Any:
        """EVALSHA over the thread's own connection; the script is loaded if Redis lost it."""
        try:
            return self.connections.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return script(keys=keys, args=args)  # redis-py loads it and runs it again

    # --- reads ----------------------------------------------------------------------------
    def get(self, distribution_id: str) -> Distribution | None:
        """One record, or None when it does not exist (or has expired)."""
        raw = cast(dict[Any, Any], self.redis.hgetall(self.record_key(distribution_id)))
        if not raw:
            return None
        return Distribution(distribution_id, {_text(k): _text(v) for k, v in raw.items()})

    def events(self, distribution_id: str) -> list[dict[str, Any]]:
        """The distribution's events, oldest first."""
        raw = cast(list[Any], self.redis.lrange(self.events_key(distribution_id), 0, -1))
        return [json.loads(_text(item)) for item in reversed(raw)]

    def recent(
        self,
        *,
        states: Iterable[str] = (),
        source: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[Distribution]:
        """Most recent first, filtered; expired records are dropped from the index on the way."""
        wanted = set(states)
        out: list[Distribution] = []
        for batch in self._index_batches(since, until):
            pipe = self.redis.pipeline(transaction=False)
            for dist_id in batch:
                pipe.hgetall(self.record_key(dist_id))
            gone: list[str] = []
            for dist_id, raw in zip(batch, pipe.execute(), strict=True):
                if not raw:
                    gone.append(dist_id)
                    continue
                dist = Distribution(dist_id, {_text(k): _text(v) for k, v in raw.items()})
                if wanted and dist.state not in wanted:
                    continue
                if source and dist.fields.get("source") != source:
                    continue
                out.append(dist)
                if len(out) >= limit:
                    return out
            if gone:
                self.redis.zrem(self.index_key, *gone)
        return out

    def _index_batches(
        self, since: float | None, until: float | None, size: int = 200
    ) -> Iterator[list[str]]:
        """Index ids newest first, in batches."""
        high: float | str = "+inf" if until is None else until
        low: float | str = "-inf" if since is None else since
        offset = 0
        while True:
            ids = cast(
                list[Any],
                self.redis.zrevrangebyscore(self.index_key, high, low, start=offset, num=size),
            )
            if not ids:
                return
            yield [_text(i) for i in ids]
            offset += len(ids)

    def active_ids(self, older_than: float) -> list[str]:
        """Ids in queued/resolving/committing whose last change is older than a moment."""
        raw = cast(list[Any], self.redis.zrangebyscore(self.active_key, "-inf", older_than))
        return [_text(i) for i in raw]

    # --- writes ---------------------------------------------------------------------------
    def transition(
        self,
        distribution_id: str,
        new_state: State,
        *,
        allowed_from: Iterable[str] = (),
        fields: Mapping[str, str | int | float] | None = None,
        actor: str = "worker",
        note: str = "",
        now: float | None = None,
    ) -> tuple[bool, str]:
        """Compare-and-set the state; returns (changed, state before)."""
        now = time.time() if now is None else now
        event = {"at": _iso(now), "to": new_state.value, "by": actor}
        if note:
            event["note"] = note
        flat: list[str] = []
        for key, value in (fields or {}).items():
            flat.extend((key, str(value)))
        allowed = ",".join(allowed_from)
        retention = 0 if new_state in ACTIVE_STATES else self.retention_seconds
        reply = cast(
            list[Any],
            self._transition(
                keys=[
                    self.record_key(distribution_id),
                    self.events_key(distribution_id),
                    self.active_key,
                ],
                args=[
                    repr(now),
                    new_state.value,
                    retention,
                    json.dumps(event),
                    distribution_id,
                    allowed,
                    *flat,
                ],
            ),
        )
        return bool(int(reply[0])), _text(reply[1])

    def set_fields(self, distribution_id: str, fields: Mapping[str, str | int | float]) -> None:
        """Write fields without a state change (e.g. resolved ids, attempts)."""
        if fields:
            self.redis.hset(
                self.record_key(distribution_id),
                mapping={k: str(v) for k, v in fields.items()},
            )

    def record_event(self, distribution_id: str, event: Mapping[str, Any]) -> None:
        """Append an admin or worker event without a state change."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(self.events_key(distribution_id), json.dumps(dict(event)))
        pipe.ltrim(self.events_key(distribution_id), 0, MAX_EVENTS - 1)
        pipe.execute()

    def incr(self, counter: str, amount: int = 1) -> None:
        """Bump a shared counter (metrics live in Redis so every process and dyno agrees)."""
        self.connections.execute("HINCRBY", self.metrics_key, counter, amount)

    # --- locks ----------------------------------------------------------------------------
    def acquire_lock(self, distribution_id: str, token: str, ttl_ms: int) -> bool:
        """Take the per-distribution lock; False when another worker holds it."""
        return bool(self.redis.set(self.lock_key(distribution_id), token, nx=True, px=ttl_ms))

    def extend_lock(self, distribution_id: str, token: str, ttl_ms: int) -> bool:
        """Keep holding the lock across a slow step; False when it was lost."""
        return bool(self._extend(keys=[self.lock_key(distribution_id)], args=[token, ttl_ms]))

    def release_lock(self, distribution_id: str, token: str) -> None:
        """Release the lock only if it is still ours."""
        self._unlock(keys=[self.lock_key(distribution_id)], args=[token])

    def lock_held(self, distribution_id: str) -> bool:
        """Whether some worker holds the lock now."""
        return bool(self.redis.exists(self.lock_key(distribution_id)))
