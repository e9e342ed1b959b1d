"""Distribution records in Redis: reads, compare-and-set state changes, the committed write."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

from ledger.base import LedgerBase
from ledger.record import MAX_EVENTS, Distribution, as_text, iso
from ledger.states import ACTIVE_STATES, State

#: States waiting for an operator: neither the record nor its events expire until one acts.
WAITING_STATES = frozenset({State.UNKNOWN, State.FAILED, State.HELD})


class Records(LedgerBase):
    """Reading and changing distribution records (part of ledger.store.Ledger)."""

    # --- reads ----------------------------------------------------------------------------
    def get(self, distribution_id: str) -> Distribution | None:
        """One record, or None when it does not exist (or has expired)."""
        raw = cast(dict[Any, Any], self.redis.hgetall(self.record_key(distribution_id)))
        if not raw:
            return None
        return Distribution(distribution_id, {as_text(k): as_text(v) for k, v in raw.items()})

    def events(self, distribution_id: str) -> list[dict[str, Any]]:
        """The distribution's events, oldest first."""
        raw = cast(list[Any], self.redis.lrange(self.events_key(distribution_id), 0, -1))
        return [json.loads(as_text(item)) for item in reversed(raw)]

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
                dist = Distribution(dist_id, {as_text(k): as_text(v) for k, v in raw.items()})
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
            yield [as_text(i) for i in ids]
            offset += len(ids)

    def active_ids(self, older_than: float) -> list[str]:
        """Ids in queued/resolving/committing whose last change is older than a moment."""
        raw = cast(list[Any], self.redis.zrangebyscore(self.active_key, "-inf", older_than))
        return [as_text(i) for i in raw]

    def forget_active(self, distribution_id: str) -> None:
        """Drop an id from the active set (its record is gone: nothing is left to finish)."""
        self.redis.zrem(self.active_key, distribution_id)

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
        event = {"at": iso(now), "to": new_state.value, "by": actor}
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
            return bool(int(reply[0])), as_text(reply[1])
        pipe = self.redis.pipeline(transaction=False)
        self._transition(keys=keys, args=args, client=pipe)
        for command in commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        reply, *confirmations = pipe.execute()
        changed, before = bool(int(reply[0])), as_text(reply[1])
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
        event = {"at": iso(now), "to": State.COMMITTED.value, "by": "worker"}
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
        return bool(int(reply[0])), as_text(reply[1]), as_text(reply[2])

    def set_fields(
        self,
        distribution_id: str,
        fields: Mapping[str, str | int | float],
        *,
        durable: bool = False,
    ) -> None:
        """Write fields without a state change (e.g. resolved ids, attempts).

        With `durable`, confirmed by Redis in the same pipeline, as a durable transition is
        (an intent written before a call Punchh cannot be asked twice); NotDurable if not.
        """
        if not fields:
            return
        mapping: dict[Any, Any] = {k: str(v) for k, v in fields.items()}
        commands = self.durability().commands(self.durability_timeout_ms) if durable else []
        if not commands:
            self.redis.hset(self.record_key(distribution_id), mapping=mapping)
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.record_key(distribution_id), mapping=mapping)
        for command in commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        _, *confirmations = pipe.execute()
        self.durability().check(confirmations, self.durability_timeout_ms)

    def record_event(self, distribution_id: str, event: Mapping[str, Any]) -> None:
        """Append an admin or worker event without a state change."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(self.events_key(distribution_id), json.dumps(dict(event)))
        pipe.ltrim(self.events_key(distribution_id), 0, MAX_EVENTS - 1)
        pipe.execute()
