"""The Punchh client's guard over the ledger's shared lockout (wiring: it joins the two parts).

The client asks its guard before every request and tells it of every refused key; the lockout
itself is state in Redis that the ledger keeps, and knows nothing of Punchh's exceptions.
"""

from __future__ import annotations

from ledger.lockout import AuthLockout
from punchh.errors import PunchhAuthError, PunchhLockedOut


class LockoutGuard:
    """punchh.client.Guard: PunchhLockedOut while a refusal stands; a refusal starts one."""

    def __init__(self, lockout: AuthLockout) -> None:
        self.lockout = lockout

    def check(self) -> None:
        """Raise PunchhLockedOut instead of letting a request reach Punchh."""
        refusal = self.lockout.standing()
        if refusal is not None:
            raise PunchhLockedOut(
                refusal.describe(), refused_at=refusal.refused_at, until=refusal.until
            )

    def refused(self, exc: PunchhAuthError) -> None:
        """Punchh refused the key just now: every process stops calling it for a while."""
        self.lockout.refused(exc.message, exc.status)
