"""Audience mode's keys: the recipients of a send waiting for Punchh, and nothing longer.

A send that gifts its own recipients keeps their identifiers in two lists only: `pending`
(appended by the intake, one item per recipient) and `batch` (at most one add_users call's
worth, taken from pending by the worker). A batch stays in Redis until Punchh has taken it,
so a worker killed mid-call leaves it for the next run to send again: adding a member twice
is still one member. Once Punchh answers, the batch is deleted: no identifier outlives the
call that delivered it. Items are `u:<user id>` or `e:<email>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from adapters.types import Guest
from ledger.record import as_text

#: Punchh's add_users accepts at most this many identifiers a call in async mode.
BATCH_SIZE = 1000
#: Recipients gathered before a worker run delivers them (every full batch at once): one run
#: per batch would start an RQ work horse per thousand recipients, competing with the intake
#: for the same machine, while a send's waiting identifiers stay a few hundred kilobytes.
DELIVERY_RUN_EVERY = 5 * BATCH_SIZE

_KINDS = {"user_id": "u", "email": "e"}
_NAMES = {v: k for k, v in _KINDS.items()}

# Take the batch to send: the one left by a run that did not finish, else the next one from
# pending. KEYS: pending, batch. ARGV: batch size.
_TAKE_LUA = """
local left = redis.call('LRANGE', KEYS[2], 0, -1)
if #left > 0 then return left end
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return {} end
redis.call('LTRIM', KEYS[1], #items, -1)
redis.call('RPUSH', KEYS[2], unpack(items))
return items
"""

# Add recipients to an audience send in one step (POST /v1/distributions/{id}/recipients).
# KEYS: record, pending list. ARGV: now, then the identifiers. Returns {state or '', audience,
# accepted, late, pending length}.
_ADD_LUA = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'audience', 'late_at')
if not cur[1] then return {'', '', 0, 0, 0} end
if cur[2] ~= 'recipients' or cur[1] == 'cancelled' or cur[1] == 'rejected' then
  return {cur[1], cur[2] or '', 0, 0, 0}
end
local n = #ARGV - 1
local late = tonumber(cur[3])
if late and tonumber(ARGV[1]) >= late then
  redis.call('HINCRBY', KEYS[1], 'audience_late', n)
  return {cur[1], cur[2], 0, n, redis.call('LLEN', KEYS[2])}
end
local length = 0
for i = 2, #ARGV do length = redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('HINCRBY', KEYS[1], 'recipients', n)
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
return {cur[1], cur[2], n, 0, length}
"""

# Punchh has the batch: forget it and count it. KEYS: batch, record. ARGV: added, invalid.
_DONE_LUA = """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'audience_added', tonumber(ARGV[1]))
redis.call('HINCRBY', KEYS[2], 'audience_invalid', tonumber(ARGV[2]))
return 1
"""


def encode(guest: Guest) -> str:
    """The list item for one identifier."""
    return f"{_KINDS[guest.kind]}:{guest.value}"


def decode(item: str | bytes) -> Guest:
    """The identifier a list item holds."""
    text = item.decode() if isinstance(item, bytes) else item
    kind, _, value = text.partition(":")
    return Guest(_NAMES[kind], value)


@dataclass(frozen=True)
class Waiting:
    """How many identifiers of a send are still on their way to Punchh."""

    pending: int
    in_batch: int

    @property
    def total(self) -> int:
        """Everything Punchh does not have yet."""
        return self.pending + self.in_batch


class AudienceKeys:
    """The pending and batch lists of audience sends, under the ledger's prefix."""

    def __init__(
        self, client: redis.Redis, prefix: str, record_key: Callable[[str], str]
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.record_key = record_key
        self._take = client.register_script(_TAKE_LUA)
        self._done = client.register_script(_DONE_LUA)
        self._add = client.register_script(_ADD_LUA)

    @property
    def pending_prefix(self) -> str:
        """What every pending list's key starts with (the intake script appends the id)."""
        return f"{self.prefix}aq:"

    def pending_key(self, distribution_id: str) -> str:
        """Identifiers the intake appended, not yet taken into a batch."""
        return self.pending_prefix + distribution_id

    def batch_key(self, distribution_id: str) -> str:
        """The batch being sent to Punchh (kept until Punchh has it)."""
        return f"{self.prefix}ab:{distribution_id}"

    @property
    def due_key(self) -> str:
        """Audience sends still taking recipients after their commit, by when to look again.

        Committed records leave the active set, so this is what lets the sweep finish their
        delivery if the run scheduled for it was lost with its worker.
        """
        return f"{self.prefix}adue"

    def mark_due(self, distribution_id: str, at: float) -> None:
        """A committed send whose late recipients are delivered until `at`."""
        self.redis.zadd(self.due_key, {distribution_id: at})

    def clear_due(self, distribution_id: str) -> None:
        """Delivery is over."""
        self.redis.zrem(self.due_key, distribution_id)

    def due_ids(self, before: float) -> list[str]:
        """Committed sends whose delivery should have finished by `before`."""
        return [
            i.decode() if isinstance(i, bytes) else str(i)
            for i in self.redis.zrangebyscore(self.due_key, "-inf", before)
        ]

    def take(self, distribution_id: str, size: int = BATCH_SIZE) -> list[Guest]:
        """The batch to send now (a left-over one first); empty when nothing waits."""
        items = self._take(
            keys=[self.pending_key(distribution_id), self.batch_key(distribution_id)],
            args=[size],
        )
        return [decode(item) for item in items]

    def add(
        self, distribution_id: str, guests: list[Guest], now: float
    ) -> tuple[str, str, int, int, int]:
        """Append guests to a send's pending list in one step: (state, audience, accepted,
        late, pending length); the state is '' when there is no such send."""
        reply = self._add(
            keys=[self.record_key(distribution_id), self.pending_key(distribution_id)],
            args=[repr(now), *(encode(g) for g in guests)],
        )
        state, audience, accepted, late, length = reply
        return as_text(state), as_text(audience), int(accepted), int(late), int(length)

    def done(self, distribution_id: str, added: int, invalid: int) -> bool:
        """Punchh took the batch: delete it and count it (False if it was already gone)."""
        keys = [self.batch_key(distribution_id), self.record_key(distribution_id)]
        return bool(self._done(keys=keys, args=[added, invalid]))

    def waiting(self, distribution_id: str) -> Waiting:
        """Identifiers not yet delivered."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(self.pending_key(distribution_id))
            pipe.llen(self.batch_key(distribution_id))
            pending, in_batch = pipe.execute()
        return Waiting(int(pending), int(in_batch))

    def expire(self, distribution_id: str, seconds: int) -> None:
        """Keep a settled send's identifiers only as long as its record (retention)."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.expire(self.pending_key(distribution_id), seconds)
            pipe.expire(self.batch_key(distribution_id), seconds)
            pipe.execute()

    def drop(self, distribution_id: str) -> int:
        """Forget every identifier of a send that will not be gifted; how many there were."""
        waiting = self.waiting(distribution_id)
        self.redis.delete(self.pending_key(distribution_id), self.batch_key(distribution_id))
        return waiting.total
