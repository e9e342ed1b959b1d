"""The long-lived objects built from Settings: one Redis client, the ledger, queue and Punchh."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis import Redis
from rq import Queue

from ledger.lockout import AuthLockout
from ledger.store import Ledger
from punchh import Catalog, PunchhClient
from punchh.client import Guard, Observer
from wiring.punchh_guard import LockoutGuard
from wiring.settings import Settings


def current_services() -> Services:
    """The running app's services (inside a request or app context)."""
    from flask import current_app

    return current_app.extensions["punchh_connector"]  # type: ignore[no-any-return]


def connect_redis(url: str, **overrides: Any) -> Redis:
    """A Redis client for `url`; rediss:// skips certificate checks (hosted Redis self-signs)."""
    options: dict[str, Any] = {
        "socket_connect_timeout": 2.0,
        "socket_timeout": 5.0,
        "health_check_interval": 30,
    }
    if url.startswith("rediss://") and "ssl_cert_reqs" not in url:
        options["ssl_cert_reqs"] = "none"
    options.update(overrides)
    return Redis.from_url(url, **options)


def make_punchh_client(
    settings: Settings,
    transport: httpx.BaseTransport | None = None,
    observer: Observer | None = None,
    guard: Guard | None = None,
) -> PunchhClient:
    """The Punchh client with the configured key, User-Agent, timeouts and lockout guard."""
    return PunchhClient(
        settings.punchh_base_url,
        settings.punchh_api_key,
        settings.punchh_user_agent,
        timeout=httpx.Timeout(
            settings.punchh_read_timeout,
            connect=settings.punchh_connect_timeout,
            pool=settings.punchh_connect_timeout,
        ),
        transport=transport,
        observer=observer,
        guard=guard,
    )


@dataclass
class Services:
    """What a web process or a worker holds for its whole life."""

    settings: Settings
    redis: Redis
    ledger: Ledger
    queue: Queue
    #: Punchh refused the key: shared by every process, checked before every Punchh request.
    lockout: AuthLockout
    #: Answer a failed list call from memory for a few seconds (the web tier: test sends and
    #: pickers come in bursts). Workers say no: they have their own backoff and retry budget.
    remember_failed_lookups: bool = True
    _punchh: PunchhClient | None = field(default=None, repr=False)
    _catalog: Catalog | None = field(default=None, repr=False)
    _pid: int = field(default_factory=os.getpid, repr=False)

    @classmethod
    def build(
        cls,
        settings: Settings,
        client: Redis | None = None,
        *,
        remember_failed_lookups: bool = True,
    ) -> Services:
        """Build everything from Settings; nothing touches the network yet."""
        conn = client if client is not None else connect_redis(settings.redis_url)
        ledger = Ledger(
            conn,
            prefix=settings.key_prefix,
            retention_seconds=settings.retention_seconds,
            fanout_limit=settings.fanout_limit,
            fanout_window_seconds=settings.fanout_window_seconds,
            replay_seconds=settings.sfmc_dedupe_seconds,
            send_gap_seconds=settings.send_gap_seconds,
            repeat_hold_seconds=settings.send_repeat_hold_seconds,
            zone=settings.timezone,
            durability_mode=settings.ledger_durability,
            durability_timeout_ms=settings.ledger_durability_timeout_ms,
        )
        lockout = AuthLockout(
            conn, prefix=settings.key_prefix, seconds=settings.auth_lockout_seconds
        )
        return cls(
            settings,
            conn,
            ledger,
            Queue(settings.queue_name, connection=conn),
            lockout,
            remember_failed_lookups,
        )

    @property
    def punchh(self) -> PunchhClient:
        """The Punchh client, rebuilt after a fork (httpx pools are not fork-safe)."""
        if self._punchh is None or self._pid != os.getpid():
            self._punchh = make_punchh_client(
                self.settings,
                observer=self.ledger.count_punchh_call,
                guard=LockoutGuard(self.lockout),
            )
            self._catalog = None
            self._pid = os.getpid()
        return self._punchh

    @property
    def catalog(self) -> Catalog:
        """Cached name lookups over the Punchh client."""
        client = self.punchh
        if self._catalog is None:
            self._catalog = Catalog(
                client,
                self.redis,
                prefix=self.settings.key_prefix,
                ttl_seconds=self.settings.list_cache_seconds,
                per_page=self.settings.punchh_per_page,
                remember_failures=self.remember_failed_lookups,
            )
        return self._catalog
