"""The sandbox's clock: real UTC time plus an offset that tests and demos move forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def iso(moment: datetime) -> str:
    """Format an aware datetime as UTC ISO 8601 with a ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Clock:
    """Now, as the sandbox sees it; not locked itself, the state's lock guards the moves."""

    def __init__(self) -> None:
        """Start at real time."""
        self.offset = timedelta(0)

    def now(self) -> datetime:
        """Real UTC now plus the offset."""
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds``."""
        self.offset += timedelta(seconds=seconds)

    def set_offset(self, seconds: float) -> None:
        """Put the clock at real time plus ``seconds`` (back, too)."""
        self.offset = timedelta(seconds=seconds)

    def offset_seconds(self) -> float:
        """How far the clock is ahead of real time."""
        return self.offset.total_seconds()
