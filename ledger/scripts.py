"""The ledger's Lua: the intake step (count, or create), compare-and-set transitions, the
committed write, and the per-distribution lock.

Each script runs atomically in Redis, so a request, a worker and an operator racing on one
distribution each see the record before or after the others' step, never half of it. The
sources are composed from shared pieces at import; `Ledger` registers them on its client.
"""

from __future__ import annotations

from ledger.record import MAX_EVENTS


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
  _audience(rk, id, now, cur[1])
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
# Audience mode (docs/audience-mode.md): the same scripts, with two more ARGV at the end — the
# pending-list key prefix and this recipient's identifier — taken off before anything reads
# ARGV ('' for a recipient without one, counted as missing; '.' for a request that is no
# recipient). Each counted recipient's identifier joins its send's pending list, in the same atomic
# step as the count, so a 2xx means it will reach Punchh; one arriving after the send's
# `late_at` (set at its commit: too close to the start time to be gifted) is counted late and
# its identifier never stored. A replay or a conflict is neither counted nor stored.
_SEGMENT_MODE = "local function _audience(rk, id, now, st) end\n"
_AUDIENCE_MODE = """
local guest = table.remove(ARGV)
local pending_prefix = table.remove(ARGV)
local function _audience(rk, id, now, st)
  if guest == '.' then  -- not a recipient (POST /v1/distributions opening a send)
    redis.call('HINCRBY', rk, 'recipients', -1)
    return
  end
  if guest == '' then  -- a recipient whose identifier the platform did not render
    redis.call('HINCRBY', rk, 'audience_missing', 1)
    return
  end
  if st == 'cancelled' or st == 'rejected' then  -- will never be gifted: never stored
    redis.call('HINCRBY', rk, 'audience_not_added', 1)
    return
  end
  local late = tonumber(redis.call('HGET', rk, 'late_at'))
  if late and now >= late then
    redis.call('HINCRBY', rk, 'audience_late', 1)
    return
  end
  redis.call('RPUSH', pending_prefix .. id, guest)
  redis.call('HSET', rk, 'last_seen', ARGV[1])
end
"""
# Every recipient after the first of a send: a few short arguments, one round trip.
_COUNT_BODY = (
    _CHART
    + _locate("return {'missing'}")
    + _READ_CURRENT
    + "if not cur[1] then return {'missing'} end\n"
    + _REPLAY
    + _EXISTING
)
COUNT_LUA = _SEGMENT_MODE + _COUNT_BODY
AUDIENCE_COUNT_LUA = _AUDIENCE_MODE + _COUNT_BODY
# The first recipient (or two racing first ones): create the record, or count if it exists.
# A send is held, not queued, when its campaign ref already had more distinct sends than the
# fan-out limit within the window (further ones are folded into that held send, so per-guest
# keys make one record, not one per guest), or when it follows its send and begins less than
# the repeat hold after the campaign's previous send went quiet (a late retry wave looks
# exactly like that).
_INTAKE_BODY = (
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
        _audience(rk, id, now, 'held')
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
_audience(rk, id, now, state)
redis.call('ZADD', KEYS[5], now, id)
if state == 'queued' then redis.call('ZADD', KEYS[7], now, id) end
"""
    + _keep_open("state", "1")
    + """
redis.call('HINCRBY', KEYS[3], 'intake:' .. ARGV[5] .. ':created', 1)
return {'created', state, '1', id, why}
"""
)
INTAKE_LUA = _SEGMENT_MODE + _INTAKE_BODY
AUDIENCE_INTAKE_LUA = _AUDIENCE_MODE + _INTAKE_BODY

# Compare-and-set a state change. KEYS: record, events, active set. ARGV: now, new state,
# retention seconds (0 = keep), event JSON, id, allowed states (comma list, '' = any),
# then field/value pairs to set.
TRANSITION_LUA = """
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
COMMITTED_LUA = """
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
UNLOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

EXTEND_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
