"""The Redis ledger: one small hash per distribution, and the single atomic intake step."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, cast

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from adapters.types import DistributionRequest
from ledger import durability
from ledger.connections import ThreadConnections
from ledger.durability import Durability
from ledger.states import ACTIVE_STATES, IntakeResult, State

#: Sources whose send keys come from marketer-built templates, so the fan-out guard applies.
GUARDED_SOURCES = frozenset({"braze", "sfmc"})

#: Record fields holding non-guest tracing context (Braze names, dispatch id).
TRACE_PREFIX = "t_"

#: Events kept per distribution (state changes and admin actions).
MAX_EVENTS = 50

#: States waiting for an operator: neither the record nor its events expire until one acts.
WAITING_STATES = frozenset({State.UNKNOWN, State.FAILED, State.HELD})

#: Durability decided per Redis server and mode in this process. Kept at module level so it
#: survives fork: RQ's work horse uses what its worker decided at start-up, not what `auto`
#: would see in the middle of a failover (a replica just lost looks like no replica at all).
_DECIDED: dict[tuple[str, str], Durability] = {}

# Intake, in two scripts sharing their KEYS and ARGV layout.
# KEYS: record ('' when the request follows its send: the script finds the record through the
# campaign's open send), replay token ('' when none), metrics, open send; then, for a creation,
# index, fan-out set, active set, fan-out fold.
# ARGV: now, segment, redeemable, replay ttl, source, send gap, open-send ttl, record key
# prefix, distribution id (for a followed send: the id a new send would get, '' when only
# counting); then, for a creation, fan-out limit (0 = no guard), fan-out window, send key,
# repeat hold (0 = off), and the new record's field/value pairs.
def _locate(when_closed: str) -> str:
    """Lua finding the record: the request's own, or its campaign's open send."""
    return f"""
local now = tonumber(ARGV[1])
local open = redis.call('HMGET', KEYS[4], 'id', 'last', 'live')
local id, rk = ARGV[9], KEYS[1]
if rk == '' then
  if open[1] and now - tonumber(open[2]) <= tonumber(ARGV[6]) then
    id = open[1]
  else
    {when_closed}
  end
  rk = ARGV[8] .. id
end
"""


_REPLAY = """
if KEYS[2] ~= '' then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[4])) then
    local st = redis.call('HGET', rk, 'state')
    redis.call('HINCRBY', KEYS[3], 'intake:' .. ARGV[5] .. ':replay', 1)
    return {'replay', st or '', '0', id}
  end
end
"""
# Counting keeps the campaign's open send pointing at the send it counted on, so a request
# with no key of its own (a blank run id) lands on it, and the send stays open while it runs.
# `live` is when a send that was not held was last seen: the repeat hold measures from it, so
# a held late wave does not push the next real run into the hold as well. Both only move
# forward: web processes' clocks differ a little, and one behind must not reopen the past.
# They are written at most once a second (a gap is measured in minutes), and so is the send
# page's chart: the per-recipient cost stays one read of the open send.
def _keep_open(state: str, count: str) -> str:
    """Lua updating the open send, and the chart, after counting on (or creating) a send."""
    return f"""
local last = tonumber(open[2]) or 0
if now >= last + 1 or id ~= open[1] then
  if now >= last then redis.call('HSET', KEYS[4], 'id', id, 'last', ARGV[1]) end
  if {state} ~= 'held' and now > (tonumber(open[3]) or 0) then
    redis.call('HSET', KEYS[4], 'live', ARGV[1])
  end
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[7]))
  local bucket = _chart_bucket(now, tonumber(redis.call('HGET', rk, 'created_at')))
  if bucket then redis.call('HSET', rk, 'per_minute:' .. bucket, {count}) end
end
"""


_EXISTING = (
    """
if cur[1] then
  if cur[2] ~= ARGV[2] or cur[3] ~= ARGV[3] then
    redis.call('HINCRBY', rk, 'conflicts', 1)
    redis.call('HINCRBY', KEYS[3], 'intake:' .. ARGV[5] .. ':conflict', 1)
    return {'conflict', cur[1], '0', id, cur[2], cur[3]}
  end
  local n = redis.call('HINCRBY', rk, 'recipients', 1)
"""
    + _keep_open("cur[1]", "n")
    + """
  redis.call('HINCRBY', KEYS[3], 'intake:' .. ARGV[5] .. ':counted', 1)
  return {'counted', cur[1], tostring(n), id, cur[4] or ''}
end
"""
)
_READ_CURRENT = (
    "local cur = redis.call('HMGET', rk, 'state', 'segment', 'redeemable', 'unconfirmed')\n"
)
# The send page's chart of recipients over time: the running count, sampled into fields named
# by the minute their bucket starts. Buckets widen with the send's age (a minute for the first
# half hour, then an hour, none after two days), so a send that runs for days keeps at most
# 78 of them — the record stays small and in Redis's compact hash encoding, whatever its length.
_CHART = """
local function _chart_bucket(now, created)
  if not created then return nil end
  local age = now - created
  if age < 1800 then return math.floor(now / 60) end
  if age < 172800 then return math.floor(now / 3600) * 60 end
  return nil
end
"""
# Every recipient after the first of a send: a few short arguments, one round trip.
_COUNT_LUA = (
    _CHART
    + _locate("return {'missing'}")
    + _READ_CURRENT
    + "if not cur[1] then return {'missing'} end\n"
    + _REPLAY
    + _EXISTING
)
# The first recipient (or two racing first ones): create the record, or count if it exists.
# A send is held, not queued, when its campaign ref already had more distinct sends than the
# fan-out limit within the window (further ones are folded into that held send, so per-guest
# keys make one record, not one per guest), or when it follows its send and begins less than
# the repeat hold after the campaign's previous send went quiet (a late retry wave looks
# exactly like that).
_INTAKE_LUA = (
    _CHART
    + _locate("id = ARGV[9]")
    + _REPLAY
    + _READ_CURRENT
    + _EXISTING
    + """
local state, why = 'queued', ''
local limit = tonumber(ARGV[10])
if limit > 0 then
  local window = tonumber(ARGV[11])
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - window)
  local added = redis.call('ZADD', KEYS[6], 'NX', now, ARGV[12])
  redis.call('EXPIRE', KEYS[6], window)
  if redis.call('ZCARD', KEYS[6]) > limit then
    local fold = redis.call('GET', KEYS[8])
    if fold then
      local frk = ARGV[8] .. fold
      local f = redis.call('HMGET', frk, 'state', 'segment', 'redeemable')
      if f[1] == 'held' and f[2] == ARGV[2] and f[3] == ARGV[3] then
        if added == 1 then redis.call('HINCRBY', frk, 'folded_sends', 1) end
        local n = redis.call('HINCRBY', frk, 'recipients', 1)
        id, rk = fold, frk
"""
    + _keep_open("'held'", "n")
    + """
        redis.call('HINCRBY', KEYS[3], 'intake:' .. ARGV[5] .. ':counted', 1)
        return {'counted', 'held', tostring(n), fold}
      end
    end
    state, why = 'held', 'fanout'
    redis.call('SET', KEYS[8], id, 'EX', window)
  end
end
local hold = tonumber(ARGV[13])
if state == 'queued' and KEYS[1] == '' and hold > 0 then
  if open[3] and now - tonumber(open[3]) < hold then
    state, why = 'held', 'repeat ' .. open[3] .. ' ' .. open[1]
  end
end
local fields = {'state', state, 'recipients', '1', 'created_at', ARGV[1], 'updated_at', ARGV[1]}
for i = 14, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', rk, unpack(fields))
redis.call('ZADD', KEYS[5], now, id)
if state == 'queued' then redis.call('ZADD', KEYS[7], now, id) end
"""
    + _keep_open("state", "1")
    + """
redis.call('HINCRBY', KEYS[3], 'intake:' .. ARGV[5] .. ':created', 1)
return {'created', state, '1', id, why}
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
else
  redis.call('ZREM', KEYS[3], ARGV[5])
end
-- Retention starts only when nothing is left to do: active records and records waiting for
-- an operator (ttl 0) keep no expiry, and lose one they had.
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
return {1, cur}
""".replace("%d", str(MAX_EVENTS - 1))

# Punchh answered with a campaign id: the record ends committed whatever state the ledger
# holds (a failover may have lost `committing`), and is written again if it is gone. KEYS:
# record, events, active set, index. ARGV: now, retention seconds, event JSON, id, campaign
# id, count of the new fields, their pairs, then the original record's pairs (for a rebuild).
# Returns {written, state before, campaign id already recorded}.
_COMMITTED_LUA = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'campaign_id')
if cur[1] == 'committed' then return {0, 'committed', cur[2] or ''} end
local n = tonumber(ARGV[6])
if not cur[1] then
  local base = {}
  for i = 7 + 2 * n, #ARGV do base[#base + 1] = ARGV[i] end
  if #base > 0 then redis.call('HSET', KEYS[1], unpack(base)) end
  local created = redis.call('HGET', KEYS[1], 'created_at') or ARGV[1]
  redis.call('ZADD', KEYS[4], tonumber(created), ARGV[4])
end
local fields = {'state', 'committed', 'updated_at', ARGV[1], 'campaign_id', ARGV[5]}
for i = 7, 6 + 2 * n do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
local event = ARGV[3]
if cur[1] == 'unknown' then
  local e = cjson.decode(event)
  e['note'] = 'Punchh answered after the run was presumed lost'
  event = cjson.encode(e)
elseif cur[1] ~= 'committing' then
  local e = cjson.decode(event)
  e['note'] = 'Punchh created campaign ' .. ARGV[5] .. ' while the ledger said '
    .. (cur[1] or 'nothing (record gone)') .. ': a lost write, recorded committed'
  event = cjson.encode(e)
end
redis.call('LPUSH', KEYS[2], event)
redis.call('LTRIM', KEYS[2], 0, %d)
redis.call('ZREM', KEYS[3], ARGV[4])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return {1, cur[1] or '', ''}
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
            "folded_sends": self.int_field("folded_sends"),
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
        send_gap_seconds: int = 1800,
        repeat_hold_seconds: int = 43200,
        zone: tzinfo = UTC,
        durability_mode: str = "auto",
        durability_timeout_ms: int = 1000,
    ) -> None:
        self.redis = client
        self.durability_mode = durability_mode
        self.durability_timeout_ms = durability_timeout_ms
        self.prefix = prefix
        self.retention_seconds = retention_seconds
        self.fanout_limit = fanout_limit
        self.fanout_window_seconds = fanout_window_seconds
        self.replay_seconds = replay_seconds
        self.send_gap_seconds = send_gap_seconds
        self.repeat_hold_seconds = repeat_hold_seconds
        self.zone = zone
        #: The open-send pointer outlives the send by the repeat hold, which it measures from.
        self.open_send_ttl = max(send_gap_seconds, repeat_hold_seconds) + 60
        self.index_key = f"{prefix}idx"
        self.active_key = f"{prefix}active"
        self.metrics_key = f"{prefix}m"
        #: The intake's per-request commands go over the serving thread's own connection.
        self.connections = ThreadConnections(client)
        self._count = client.register_script(_COUNT_LUA)
        self._intake = client.register_script(_INTAKE_LUA)
        self._transition = client.register_script(_TRANSITION_LUA)
        self._committed = client.register_script(_COMMITTED_LUA)
        self._unlock = client.register_script(_UNLOCK_LUA)
        self._extend = client.register_script(_EXTEND_LUA)

    # --- keys -----------------------------------------------------------------------------
    def record_key(self, distribution_id: str) -> str:
        """The hash holding one distribution."""
        return f"{self.prefix}d:{distribution_id}"

    def events_key(self, distribution_id: str) -> str:
        """The capped list of one distribution's events."""
        return f"{self.prefix}ev:{distribution_id}"

    def open_send_key(self, req: DistributionRequest) -> str:
        """The campaign ref's open send: which distribution it is, and when it was last seen."""
        return f"{self.prefix}os:{req.source}:{req.campaign_ref}"

    def send_label(self, now: float) -> str:
        """The send key of a send followed by continuity: when it began, in the send-key zone."""
        local = datetime.fromtimestamp(now, self.zone)
        offset = local.strftime("%z")
        return "run-" + local.strftime("%Y%m%dT%H%M%S") + ("Z" if offset == "+0000" else offset)

    def lock_key(self, distribution_id: str) -> str:
        """The per-distribution worker lock."""
        return f"{self.prefix}lk:{distribution_id}"

    # --- intake ---------------------------------------------------------------------------
    def intake(self, req: DistributionRequest, *, now: float | None = None) -> IntakeResult:
        """Count one more recipient, or create the record: atomic, and one round trip for
        every request but the first of a send (which takes a second, carrying the record).

        A request with a send key lands on that key's record. One without follows its send:
        it is counted on the campaign's open send (one seen within the send gap), or opens a
        new send named after the moment it began (docs/send-identity.md).
        """
        now = time.time() if now is None else now
        follow = req.follows_send
        keys = [
            "" if follow else self.record_key(req.distribution_id),
            # replay_seconds 0 turns retry recognition off (SFMC_DEDUPE_SECONDS=0).
            f"{self.prefix}rp:{req.replay_token}" if req.replay_token and self.replay_seconds
            else "",
            self.metrics_key,
            self.open_send_key(req),
        ]
        args: list[str | int] = [
            repr(now),
            req.segment,
            req.redeemable,
            self.replay_seconds,
            req.source,
            self.send_gap_seconds,
            self.open_send_ttl,
            f"{self.prefix}d:",
            "" if follow else req.distribution_id,
        ]
        reply = cast(list[Any], self._run(self._count, keys, args))
        if _text(reply[0]) == "missing":
            new = req
            if follow:
                key = self.send_label(now)
                name = f"{req.campaign_name} ({key})" if req.campaign_name else None
                new = replace(req, send_key=key, campaign_name=name)
                args[8] = new.distribution_id
            keys += [
                self.index_key,
                f"{self.prefix}fo:{req.source}:{req.campaign_ref}",
                self.active_key,
                f"{self.prefix}fold:{req.source}:{req.campaign_ref}",
            ]
            guarded = req.source in GUARDED_SOURCES
            args += [
                self.fanout_limit if guarded else 0,
                self.fanout_window_seconds,
                new.send_key,
                self.repeat_hold_seconds,
                *_record_fields(new),
                *(("unconfirmed", "1") if self._confirms_creations() else ()),
            ]
            reply = cast(list[Any], self._run(self._intake, keys, args))
        parts = [_text(p) for p in reply]
        outcome = parts[0]
        if outcome == "created" or (outcome == "counted" and parts[4:5] == ["1"]):
            # A 2xx must mean durable: a new send's record, or the send a count landed on
            # while that send's own creation is still unconfirmed (its first answer was 503).
            self.make_durable(parts[3])
        return IntakeResult(
            distribution_id=parts[3],
            outcome=outcome,
            state=parts[1],
            recipients=int(parts[2]),
            existing_segment=parts[4] if outcome == "conflict" else None,
            existing_redeemable=parts[5] if outcome == "conflict" else None,
            held_because=parts[4] if outcome == "created" else "",
        )

    def _run(self, script: Script, keys: list[str], args: list[str | int]) -> Any:
        """EVALSHA over the thread's own connection; the script is loaded if Redis lost it.

        Loaded and run again over that same connection: a creation's `WAIT` confirms only the
        writes of the connection it is sent on, and a Redis that lost its scripts (a restart,
        a failover) is exactly when the write must be confirmed, not waved through.
        """
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return self.connections.execute(*command)
        except NoScriptError:
            self.connections.execute("SCRIPT", "LOAD", script.script)
            return self.connections.execute(*command)

    # --- durability -----------------------------------------------------------------------
    def durability(self) -> Durability:
        """What this process waits for after a creation or a `committing` write (decided once)."""
        kw = self.redis.connection_pool.connection_kwargs
        server = f"{kw.get('host', '')}:{kw.get('port', '')}{kw.get('path', '')}/{kw.get('db', 0)}"
        key = (server, self.durability_mode)
        decided = _DECIDED.get(key)
        if decided is None:
            decided = _DECIDED[key] = durability.resolve(self.redis, self.durability_mode)
        return decided

    def decide_durability(self) -> Durability | None:
        """At start-up: decide now, while Redis looks as it normally does.

        A configuration that cannot work (WAITAOF on Redis 7.0, WAIT with no replica) raises
        DurabilityUnavailable so the process fails at once; an unreachable Redis only defers
        the decision to the first write, as the web tier must start (and answer 503) without it.
        """
        try:
            return self.durability()
        except durability.DurabilityUnavailable:
            raise
        except redis.RedisError:
            return None

    def make_durable(self, distribution_id: str) -> None:
        """Wait until Redis confirms this thread's intake writes durable; NotDurable if not.

        Called after a creation, and after a count on a send whose creation was never
        confirmed (its `unconfirmed` mark), over the thread's own connection: `WAIT` and
        `WAITAOF` confirm the writes of the connection they are sent on. Once confirmed the
        mark goes, so the send's other recipients are counted without waiting.
        """
        commands = self.durability().commands(self.durability_timeout_ms)
        if commands:
            replies = self.connections.execute_unretried(*commands)
            self.durability().check(replies, self.durability_timeout_ms)
            self.connections.execute("HDEL", self.record_key(distribution_id), "unconfirmed")

    def _confirms_creations(self) -> bool:
        """Whether a new record waits for confirmation (and so carries the mark until then)."""
        return bool(self.durability().commands(self.durability_timeout_ms))

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
        durable: bool = False,
    ) -> tuple[bool, str]:
        """Compare-and-set the state; returns (changed, state before).

        With `durable`, a change is confirmed by Redis (see ledger/durability.py) in the
        same pipeline, so over the same connection; NotDurable when the confirmation does not
        come (the change is then made on the primary but may be forgotten by a failover).
        """
        now = time.time() if now is None else now
        event = {"at": _iso(now), "to": new_state.value, "by": actor}
        if note:
            event["note"] = note
        flat: list[str] = []
        for key, value in (fields or {}).items():
            flat.extend((key, str(value)))
        allowed = ",".join(allowed_from)
        keep = new_state in ACTIVE_STATES or new_state in WAITING_STATES
        retention = 0 if keep else self.retention_seconds
        keys = [
            self.record_key(distribution_id),
            self.events_key(distribution_id),
            self.active_key,
        ]
        args = [
            repr(now), new_state.value, retention, json.dumps(event), distribution_id, allowed,
            *flat,
        ]
        commands = self.durability().commands(self.durability_timeout_ms) if durable else []
        if not commands:
            reply = cast(list[Any], self._transition(keys=keys, args=args))
            return bool(int(reply[0])), _text(reply[1])
        pipe = self.redis.pipeline(transaction=False)
        self._transition(keys=keys, args=args, client=pipe)
        for command in commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        reply, *confirmations = pipe.execute()
        changed, before = bool(int(reply[0])), _text(reply[1])
        if changed:
            self.durability().check(confirmations, self.durability_timeout_ms)
        return changed, before

    def record_commit(
        self,
        dist: Distribution,
        campaign_id: int,
        fields: Mapping[str, str | int | float],
        *,
        now: float | None = None,
    ) -> tuple[bool, str, str]:
        """Punchh created `campaign_id`: the record ends committed from any state but
        committed, and is rebuilt from `dist` if it is gone.

        Returns (written, state before — '' when the record was gone, campaign id already
        recorded when it was committed before).
        """
        now = time.time() if now is None else now
        event = {"at": _iso(now), "to": State.COMMITTED.value, "by": "worker"}
        new = [item for key, value in fields.items() for item in (key, str(value))]
        base = [
            item
            for key, value in dist.fields.items()
            if key not in ("state", "updated_at", "campaign_id")
            for item in (key, value)
        ]
        reply = cast(
            list[Any],
            self._committed(
                keys=[
                    self.record_key(dist.id),
                    self.events_key(dist.id),
                    self.active_key,
                    self.index_key,
                ],
                args=[
                    repr(now), self.retention_seconds, json.dumps(event), dist.id, campaign_id,
                    len(new) // 2, *new, *base,
                ],
            ),
        )
        return bool(int(reply[0])), _text(reply[1]), _text(reply[2])

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
