"""What the ledger's parts share: its Redis client and connections, its settings and scripts,
and the name of every Redis key it uses.

The ledger is the only code that names these keys: other parts ask the ledger (or the small
ledger modules beside it) to read or write them.
"""

from __future__ import annotations

from datetime import UTC, tzinfo

import redis

from adapters.types import DistributionRequest
from ledger import durability, scripts
from ledger.audience import AudienceKeys
from ledger.connections import ThreadConnections
from ledger.durability import Durability


class LedgerBase:
    """The ledger's client, settings, scripts and key names (see ledger.store.Ledger)."""

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
        #: Every distribution by creation time (listings, status pages).
        self.index_key = f"{prefix}idx"
        #: Distributions a worker may still act on, by last change: the sweep's candidates.
        self.active_key = f"{prefix}active"
        #: The shared counters: one hash, so every process and dyno adds to one figure.
        self.metrics_key = f"{prefix}m"
        #: The intake's per-request commands go over the serving thread's own connection.
        self.connections = ThreadConnections(client)
        self._count = client.register_script(scripts.COUNT_LUA)
        self._intake = client.register_script(scripts.INTAKE_LUA)
        self._audience_count = client.register_script(scripts.AUDIENCE_COUNT_LUA)
        self._audience_intake = client.register_script(scripts.AUDIENCE_INTAKE_LUA)
        self._transition = client.register_script(scripts.TRANSITION_LUA)
        self._committed = client.register_script(scripts.COMMITTED_LUA)
        self._unlock = client.register_script(scripts.UNLOCK_LUA)
        self._extend = client.register_script(scripts.EXTEND_LUA)
        #: Audience mode's pending and batch lists of guest identifiers.
        self.audience = AudienceKeys(client, prefix, self.record_key)

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

    def alert_key(self, distribution_id: str, entry: str) -> str:
        """The mark that one entry into a state has been alerted (workers/alerts.py)."""
        return f"{self.prefix}al:{entry}:{distribution_id}"

    def open_send_key(self, req: DistributionRequest) -> str:
        """The campaign ref's open send: which distribution it is, and when it was last seen."""
        return f"{self.prefix}os:{req.source}:{req.campaign_ref}"

    def replay_key(self, token: str) -> str:
        """The mark of one platform retry already counted (SFMC's replay token)."""
        return f"{self.prefix}rp:{token}"

    def fanout_key(self, req: DistributionRequest) -> str:
        """The campaign ref's distinct send keys in the fan-out window."""
        return f"{self.prefix}fo:{req.source}:{req.campaign_ref}"

    def fold_key(self, req: DistributionRequest) -> str:
        """The held send that further new send keys of the campaign ref are folded into."""
        return f"{self.prefix}fold:{req.source}:{req.campaign_ref}"

    # --- durability -----------------------------------------------------------------------
    def durability(self) -> Durability:
        """What this process waits for after a creation or a `committing` write (decided once)."""
        return durability.decided(self.redis, self.durability_mode)

    def decide_durability(self) -> Durability | None:
        """At start-up: decide now (see ledger.durability.decide_at_start)."""
        return durability.decide_at_start(self.redis, self.durability_mode)
