"""Faults: queued misbehaviours the next requests to an endpoint act out, and the gate that
holds or hangs a request until it is released, reset, or its time is up."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from sandbox.seed import JSON

OFFER_ENDPOINTS = ("segments", "redeemables", "campaigns")
"""The three Headless Offers endpoints."""

CUSTOM_SEGMENT_ENDPOINTS = (
    "custom_segments",
    "create_custom_segment",
    "delete_custom_segment",
    "custom_segment_member",
    "add_users",
)
"""The custom-segment endpoints: list, create, delete, membership check, add_users."""

ENDPOINTS = OFFER_ENDPOINTS + CUSTOM_SEGMENT_ENDPOINTS
"""Names of the imitated Punchh endpoints, as used by faults and the request log."""

ACTING_ENDPOINTS = ("campaigns", "create_custom_segment", "delete_custom_segment", "add_users")
"""Endpoints that change something, so that "act, then misbehave" means something there: a
lost commit or create answer is the case a client must recover from without acting twice."""

PLAIN_FAULTS = frozenset({"500", "502", "503", "504", "429", "hang", "drop", "hold"})
"""Fault modes that work on any endpoint; none of them lets the endpoint act."""

COMMIT_FAULTS = frozenset({"commit_drop", "commit_hang", "commit_hold"})
"""Fault modes that act first and then misbehave: only for ``ACTING_ENDPOINTS``."""


@dataclass(frozen=True)
class Fault:
    """One queued misbehaviour, consumed by the next request to its endpoint."""

    mode: str
    retry_after: float | None = None
    seconds: float = 30.0

    def public(self) -> JSON:
        """The fault as ``GET /_sandbox/faults`` shows it."""
        return {"mode": self.mode, "retry_after": self.retry_after, "seconds": self.seconds}


def _number(value: Any) -> bool:
    """A JSON number >= 0 (a bool is not one)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and value >= 0


def parse_fault(body: object) -> tuple[str, Fault, int]:
    """Endpoint, fault and count from a ``POST /_sandbox/faults`` body; ValueError says why not."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    endpoint = body.get("endpoint")
    mode = str(body.get("mode", ""))  # 500 and "500" both name the 500 fault
    count = body.get("count", 1)
    seconds = body.get("seconds", 30)
    retry_after = body.get("retry_after")
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}")
    if mode in COMMIT_FAULTS and endpoint not in ACTING_ENDPOINTS:
        raise ValueError(f"{mode} only applies to {', '.join(ACTING_ENDPOINTS)}")
    if mode not in PLAIN_FAULTS | COMMIT_FAULTS:
        raise ValueError(f"mode must be one of {', '.join(sorted(PLAIN_FAULTS | COMMIT_FAULTS))}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError("count must be an integer >= 1")
    for label, value in (("seconds", seconds), ("retry_after", retry_after)):
        if value is not None and not _number(value):
            raise ValueError(f"{label} must be a number >= 0")
    fault = Fault(
        mode=mode,
        retry_after=None if retry_after is None else float(retry_after),
        seconds=float(seconds if seconds is not None else 30),
    )
    return str(endpoint), fault, count


class FaultQueue:
    """First in, first out per endpoint; the state's lock guards it."""

    def __init__(self) -> None:
        """No faults queued."""
        self._queues: dict[str, deque[Fault]] = {}

    def add(self, endpoint: str, fault: Fault, count: int) -> int:
        """Queue ``count`` copies of a fault; return how many are queued for the endpoint."""
        queue = self._queues.setdefault(endpoint, deque())
        queue.extend([fault] * count)
        return len(queue)

    def take(self, endpoint: str) -> Fault | None:
        """Consume the oldest fault queued for this endpoint, if any."""
        queue = self._queues.get(endpoint)
        return queue.popleft() if queue else None

    def public(self) -> JSON:
        """The faults still queued, per endpoint."""
        return {name: [f.public() for f in queue] for name, queue in self._queues.items()}

    def clear(self) -> None:
        """Forget every queued fault."""
        self._queues.clear()


class Gate:
    """Where held and hung requests wait; a release or a reset lets them go."""

    def __init__(self) -> None:
        """Nobody waiting."""
        self._wake = threading.Condition()
        # A bumped generation is what wakes the waiters: a condition alone can be missed.
        self._release_generation = 0
        self._reset_generation = 0
        self._held = 0

    def hold(self, seconds: float) -> None:
        """Block until ``release``, ``reset`` or ``seconds`` pass, counting as held."""
        with self._wake:
            self._held += 1
            release, reset = self._release_generation, self._reset_generation
            try:
                self._wake.wait_for(
                    lambda: (self._release_generation, self._reset_generation) != (release, reset),
                    timeout=seconds,
                )
            finally:
                self._held -= 1

    def hang(self, seconds: float) -> None:
        """Sleep ``seconds``; only a reset cuts it short, so tests never leave threads behind."""
        with self._wake:
            reset = self._reset_generation
            self._wake.wait_for(lambda: self._reset_generation != reset, timeout=seconds)

    def held(self) -> int:
        """How many requests are blocked in ``hold`` right now."""
        with self._wake:
            return self._held

    def release(self) -> int:
        """Wake every held request; return how many were held."""
        with self._wake:
            count = self._held
            self._release_generation += 1
            self._wake.notify_all()
            return count

    def reset(self) -> None:
        """Wake every held and hung request, so a reset between tests leaves nothing blocked."""
        with self._wake:
            self._reset_generation += 1
            self._wake.notify_all()
