"""Read-only counts over the ledger for dashboards: records by state, the shared counters.

Here because the ledger is the only code that names its Redis keys; callers get plain dicts.
"""

from __future__ import annotations

from typing import Any, cast

from ledger.states import State
from ledger.store import Ledger

#: Most distributions read per census (newest first): a scrape must stay cheap however many
#: records retention keeps.
MAX_STATE_SCAN = 20000
#: Records read per pipelined round trip.
STATE_BATCH = 1000


def _text(value: Any) -> str:
    """Redis replies as text, whatever decode_responses says."""
    return value.decode() if isinstance(value, bytes) else str(value)


def read_counters(ledger: Ledger) -> dict[str, float]:
    """The shared counters hash (integers and the float latency sums); junk values skipped."""
    raw = cast(dict[Any, Any], ledger.redis.hgetall(ledger.metrics_key))
    out: dict[str, float] = {}
    for key, value in raw.items():
        try:
            out[_text(key)] = float(_text(value))
        except ValueError:
            continue
    return out


def count_states(ledger: Ledger, limit: int = MAX_STATE_SCAN) -> dict[str, int]:
    """Distributions in the ledger by state (every known state present, zero or more).

    One pipelined HGET of the state field per record, not HGETALL: the census needs one field.
    """
    counts = {s.value: 0 for s in State}
    for start in range(0, limit, STATE_BATCH):
        stop = min(start + STATE_BATCH, limit) - 1
        ids = cast(list[Any], ledger.redis.zrevrange(ledger.index_key, start, stop))
        if not ids:
            break
        pipe = ledger.redis.pipeline(transaction=False)
        for dist_id in ids:
            pipe.hget(ledger.record_key(_text(dist_id)), "state")
        for state in pipe.execute():
            if state is not None:
                name = _text(state)
                counts[name] = counts.get(name, 0) + 1
        if len(ids) < STATE_BATCH:
            break
    return counts
