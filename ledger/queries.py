"""What operators read, through the CLI and the `/v1` admin API: one distribution with its
events and the action undo would reverse, or a filtered list of them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ledger.actions import get
from ledger.record import Distribution, iso, last_action, undoable
from ledger.states import State
from ledger.store import Ledger
from wiring.errors import BadRequest


def parse_time(value: str | None) -> float | None:
    """A time filter: ISO 8601 (no offset means UTC) or epoch seconds; ValueError otherwise."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
    except ValueError as exc:
        raise ValueError(
            "must be ISO 8601 (such as 2026-11-25T18:30:00Z) or epoch seconds"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def show(ledger: Ledger, distribution_id: str) -> dict[str, Any]:
    """The record as the status API shows it, with its events and the undoable action."""
    dist = get(ledger, distribution_id)
    body = dist.as_dict()
    if body["audience"] is not None:
        # How many identifiers are still on their way to Punchh (a count, never one of them).
        body["audience"]["waiting"] = ledger.audience.waiting(distribution_id).total
    body["events"] = ledger.events(distribution_id)
    last = last_action(dist)
    body["undoable"] = (
        {"action": last["action"], "by": last["by"], "at": iso(float(last["at"]))}
        if last and undoable(dist, last)
        else None
    )
    return body


def list_distributions(
    ledger: Ledger,
    *,
    states: Iterable[str] = (),
    source: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
) -> list[Distribution]:
    """Most recent first, filtered by state, source and creation time."""
    wanted = [s for s in states if s]
    known = {s.value for s in State}
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise BadRequest(
            f"unknown state {unknown[0]!r}; one of {', '.join(s.value for s in State)}",
            code="invalid_state",
        )
    return ledger.recent(
        states=wanted, source=source or None, since=since, until=until, limit=max(1, limit)
    )
