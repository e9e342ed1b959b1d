"""Punchh refused the API key: no process calls Punchh again until the lockout ends or is cleared.

Punchh blocks an IP after about ten failed logins in ten minutes, and every web process and
worker of a deployment shares that IP. So one 401 (or 403) from any call — a worker's commit,
a Braze test send, an SFMC picker — sets one Redis key that every process reads before each
request; while it stands the Punchh client raises PunchhLockedOut instead of sending anything.
It ends after AUTH_LOCKOUT_SECONDS, or earlier only when an operator clears it (after fixing the
key): `punchh-connector punchh-unlock` or `POST /v1/punchh/unlock` (`unlock_punchh` below).
Retrying a distribution does not clear it.

It is Punchh-access state kept in Redis beside the records, not a record's: the client only sees
the small guard interface (check before sending, refused after a 401/403), and the key is named
here and nowhere else.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis

log = logging.getLogger("punchh")
#: Operator actions log under one name, whichever module holds them.
admin_log = logging.getLogger("connector.admin")

#: The Redis key (after the deployment's KEY_PREFIX) that holds the current refusal.
LOCKOUT_KEY = "punchh:auth_refused"
#: What the marketer or operator is told to do about it.
UNLOCK_HINT = (
    "fix PUNCHH_API_KEY, then an operator clears it early with "
    "`punchh-connector punchh-unlock` (or POST /v1/punchh/unlock)"
)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass(frozen=True)
class Refusal:
    """When Punchh refused the key, what it said, and when calls may start again."""

    reason: str
    refused_at: float
    until: float

    def describe(self) -> str:
        """One sentence for a marketer or an operator."""
        return (
            f"Punchh refused the API key at {_iso(self.refused_at)} ({self.reason}); "
            f"no calls to Punchh until {_iso(self.until)}: {UNLOCK_HINT}"
        )

    @property
    def retry_after(self) -> int:
        """Whole seconds until the lockout ends on its own (at least 1)."""
        return max(1, math.ceil(self.until - time.time()))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "reason": self.reason,
            "refused_at": _iso(self.refused_at),
            "until": _iso(self.until),
        }


class AuthLockout:
    """The shared lockout, checked before every Punchh request and set by every refusal."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.key = f"{prefix}{LOCKOUT_KEY}"
        self.seconds = max(seconds, 1)
        self.clock = clock

    def current(self) -> Refusal | None:
        """The refusal in force, if any."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.key)
        pipe.pttl(self.key)
        raw, pttl = pipe.execute()
        if raw is None or pttl == -2:
            return None
        try:
            stored = json.loads(raw)
            reason, refused_at = str(stored["reason"]), float(stored["at"])
            until = float(stored["until"])
        except (ValueError, KeyError, TypeError):
            # Written by a worker from before this module: the value is Punchh's message.
            reason = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            now = self.clock()
            until = now + pttl / 1000 if pttl > 0 else now + self.seconds
            refused_at = until - self.seconds
        return Refusal(reason=reason[:300], refused_at=refused_at, until=until)

    def standing(self) -> Refusal | None:
        """The refusal that stands now, checked before every Punchh request."""
        try:
            return self.current()
        except redis.RedisError as exc:
            # A lockout that cannot be read cannot be honoured. With Redis down nothing is
            # accepted either, so at most the call that would have been made without it is.
            log.warning("punchh lockout unreadable", extra={"error": type(exc).__name__})
            return None

    def refused(self, message: str, status: int | None) -> None:
        """Punchh refused the key just now: stop every process for AUTH_LOCKOUT_SECONDS."""
        now = self.clock()
        value = json.dumps({"reason": message[:300], "at": now, "until": now + self.seconds})
        try:
            self.redis.set(self.key, value, ex=self.seconds)
        except redis.RedisError as exc_redis:
            log.warning("punchh lockout not set", extra={"error": type(exc_redis).__name__})
            return
        log.error(
            "punchh refused the api key: no calls for %ss", self.seconds,
            extra={"status": status},
        )

    def clear(self) -> Refusal | None:
        """End the lockout now (an operator fixed the key); returns what it ended, if any."""
        refusal = self.current()
        self.redis.delete(self.key)
        return refusal


@dataclass(frozen=True)
class UnlockResult:
    """What `punchh-unlock` did."""

    cleared: bool
    by: str
    reason: str
    lockout: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def unlock_punchh(lockout: AuthLockout, *, actor: str, reason: str = "") -> UnlockResult:
    """End the Punchh key lockout now: the operator has fixed PUNCHH_API_KEY.

    Punchh is asked again by the next caller; if it still refuses the key, that one refusal
    locks every process out again.
    """
    refusal = lockout.clear()
    admin_log.warning(
        "punchh lockout cleared" if refusal else "punchh lockout: nothing to clear",
        extra={"actor": actor, "reason": reason},
    )
    return UnlockResult(
        cleared=refusal is not None,
        by=actor,
        reason=reason,
        lockout=refusal.as_dict() if refusal else None,
    )
