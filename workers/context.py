"""The worker process's services, built on first use (never at import time)."""

from __future__ import annotations

import os

from wiring.services import Services
from wiring.settings import Settings

_services: Services | None = None
_pid: int | None = None


def services() -> Services:
    """This process's services; rebuilt after a fork so no socket is shared with the parent."""
    global _services, _pid
    if _services is None or _pid != os.getpid():
        # A worker retries on its own backoff: it never answers from a remembered failure.
        _services = Services.build(Settings.from_env(), remember_failed_lookups=False)
        _pid = os.getpid()
    return _services


def use(custom: Services | None) -> None:
    """Install services built elsewhere (tests that run jobs in-process)."""
    global _services, _pid
    _services = custom
    _pid = os.getpid() if custom is not None else None
