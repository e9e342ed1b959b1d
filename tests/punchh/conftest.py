"""A scripted Punchh: the real client over `httpx.MockTransport`, answering as a test says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from punchh.client import PunchhClient
from wiring.services import make_punchh_client
from wiring.settings import Settings

Answer = Callable[[httpx.Request], httpx.Response]


@dataclass
class Script:
    """Answers each request with `answer` (which may raise) and keeps every request it saw."""

    answer: Answer = lambda _: httpx.Response(200, json=[])
    seen: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.answer(request)

    def params(self) -> list[dict[str, str]]:
        """The query parameters of every request, in order."""
        return [dict(r.url.params) for r in self.seen]


@pytest.fixture
def script() -> Script:
    """What the scripted Punchh answers; set `script.answer` in the test."""
    return Script()


@pytest.fixture
def punchh(pure_settings: Settings, script: Script) -> Iterator[PunchhClient]:
    """The client the services build, with its transport swapped for the script."""
    with make_punchh_client(pure_settings, transport=httpx.MockTransport(script)) as client:
        yield client


def answer_with(status: int, body: object = None, **headers: str) -> Answer:
    """An answer of `status` with a JSON body (or raw bytes/str when given those)."""
    if isinstance(body, bytes | str):
        return lambda _: httpx.Response(status, content=body, headers=headers)
    return lambda _: httpx.Response(status, json=body, headers=headers)


def raising(exc_type: type[httpx.TransportError]) -> Answer:
    """An answer that fails the way a network does, with httpx's own exception."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise exc_type(f"scripted {exc_type.__name__}", request=request)

    return fail


#: A start time off UTC, so that what is sent shows the conversion.
START = datetime(2026, 11, 25, 20, 30, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
CREATED = {
    "redeemable_id": 20416,
    "campaign_id": 99511494,
    "external_source_id": "braze:cmp:disp",
    "start_time": "2026-11-25 06:44 PM",
    "timezone": "Etc/UTC",
}


def commit(punchh: PunchhClient) -> dict[str, Any]:
    """One Commit Redeemable Distribution with fixed arguments."""
    return punchh.commit(
        redeemable_uuid="5f1c-uuid",
        segment_id=1306904,
        name="Braze: Winback",
        start_time=START,
        external_campaign_id="braze:cmp:disp",
    )
