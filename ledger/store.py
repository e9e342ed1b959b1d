"""The Redis ledger: one small hash per distribution, and the single atomic intake step.

`Ledger` is assembled from its parts, one module each:

- ledger/base.py: the client, settings, scripts and every key name;
- ledger/intake_step.py: the intake (count one more recipient, or create the record);
- ledger/records.py: reads, compare-and-set transitions, the committed write;
- here: the per-distribution lock, the shared counters and the once-only alert marks;

with the Lua in ledger/scripts.py, the record's fields in ledger/record.py, and what a write
waits for in ledger/durability.py.
"""

from __future__ import annotations

import redis

from ledger.intake_step import IntakeStep
from ledger.records import Records

#: Upper bounds (seconds) of the Punchh latency histogram kept in Redis.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Ledger(IntakeStep, Records):
    """Distribution records in Redis; knows nothing of HTTP or Punchh."""

    # --- counters -------------------------------------------------------------------------
    def incr(self, counter: str, amount: int = 1) -> None:
        """Bump a shared counter (metrics live in Redis so every process and dyno agrees)."""
        self.connections.execute("HINCRBY", self.metrics_key, counter, amount)

    def count_punchh_call(self, endpoint: str, outcome: str, seconds: float) -> None:
        """Count one Punchh request and its latency; a Redis error is swallowed (metrics
        must never break a commit)."""
        bucket = next((str(b) for b in LATENCY_BUCKETS if seconds <= b), "+Inf")
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hincrby(self.metrics_key, f"punchh:{endpoint}:{outcome}", 1)
            pipe.hincrby(self.metrics_key, f"punchh_latency:{endpoint}:{bucket}", 1)
            pipe.hincrbyfloat(self.metrics_key, f"punchh_latency_sum:{endpoint}", seconds)
            pipe.execute()
        except redis.RedisError:
            pass

    def count_commit(self, seconds: float) -> None:
        """Count one commit and the time from the send's first request to it."""
        self.incr("commits_total")
        self.redis.hincrbyfloat(self.metrics_key, "commit_seconds_sum", seconds)

    # --- alert marks ----------------------------------------------------------------------
    def mark_alerted(self, distribution_id: str, entry: str, ttl_seconds: int) -> bool:
        """Mark one entry into a state as alerted; False when it already was."""
        key = self.alert_key(distribution_id, entry)
        return bool(self.redis.set(key, "1", nx=True, ex=ttl_seconds))

    def unmark_alerted(self, distribution_id: str, entry: str) -> None:
        """Forget the mark (the alert did not go out), so a retry of the job may send it."""
        self.redis.delete(self.alert_key(distribution_id, entry))

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
