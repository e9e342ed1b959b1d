"""The Punchh client against a scripted Punchh: what it sends, how it pages, whom it tells.

What each answer raises is in test_errors.py. No sandbox, no Redis.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from punchh.client import MAX_PAGES, PunchhClient, format_start_time
from punchh.errors import (
    PunchhAuthError,
    PunchhError,
    PunchhLockedOut,
    PunchhServerError,
    PunchhUnexpected,
)
from tests.conftest import SANDBOX_KEY
from tests.punchh.conftest import CREATED, Script, answer_with, commit, raising
from wiring.settings import DEFAULT_USER_AGENT, Settings

pytestmark = pytest.mark.no_sandbox


# --- what is sent -------------------------------------------------------------------------------


def test_a_commit_sends_the_documented_body_and_headers(
    punchh: PunchhClient, script: Script, pure_settings: Settings
) -> None:
    script.answer = answer_with(200, CREATED)
    assert commit(punchh) == CREATED
    (sent,) = script.seen
    assert (sent.method, str(sent.url)) == (
        "POST",
        f"{pure_settings.punchh_base_url}/api2/dashboard/campaigns",
    )
    assert sent.headers["Authorization"] == f"Bearer {SANDBOX_KEY}"
    assert sent.headers["User-Agent"] == DEFAULT_USER_AGENT
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.content) == {
        "redeemable_uuid": "5f1c-uuid",
        "segment_id": 1306904,
        "category": "gift_redeemable",
        "campaign_type": "mass_gifting",
        "name": "Braze: Winback",
        "start_time": "2026-11-25T15:00:01Z",  # +05:30 moved to UTC, with a Z
        "external_campaign_id": "braze:cmp:disp",
    }


def test_requests_carry_the_configured_timeouts(
    punchh: PunchhClient, script: Script, pure_settings: Settings
) -> None:
    punchh.list_page("segments")
    assert script.seen[0].extensions["timeout"] == {
        "connect": pure_settings.punchh_connect_timeout,
        "read": pure_settings.punchh_read_timeout,
        "write": pure_settings.punchh_read_timeout,
        "pool": pure_settings.punchh_connect_timeout,
    }


@pytest.mark.parametrize(
    ("kind", "path"),
    [("segments", "/api2/dashboard/segments"), ("redeemables", "/api2/dashboard/redeemables")],
)
def test_a_list_page_asks_for_its_page_size_and_query(
    punchh: PunchhClient, script: Script, kind: Any, path: str
) -> None:
    punchh.list_page(kind)
    punchh.list_page(kind, query="Free Coffee", page=3, per_page=7)
    assert [r.url.path for r in script.seen] == [path, path]
    assert script.params() == [
        {"page": "1", "per_page": "50"},
        {"page": "3", "per_page": "7", "query": "Free Coffee"},
    ]
    assert all(r.method == "GET" and not r.content for r in script.seen)


@pytest.mark.parametrize(
    ("moment", "sent"),
    [
        (datetime(2026, 11, 25, 18, 36, 32, tzinfo=UTC), "2026-11-25T18:36:32Z"),
        (datetime(2026, 11, 25, 18, 36, 32, 999999, tzinfo=UTC), "2026-11-25T18:36:32Z"),
        (datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), "2025-12-31T23:30:00Z"),
        (datetime(2026, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=-8))), "2026-03-01T17:00:00Z"),
    ],
)
def test_start_time_is_utc_iso_8601_with_a_z(moment: datetime, sent: str) -> None:
    assert format_start_time(moment) == sent


# --- paging -------------------------------------------------------------------------------------

SEGMENTS = [{"segment_id": i, "name": f"Segment {i}"} for i in range(1, 8)]


def pages_of(items: list[dict[str, Any]], cap: int = 1000) -> Any:
    """Punchh paging `items`, cutting each page to `cap` whatever per_page asked."""

    def answer(request: httpx.Request) -> httpx.Response:
        page, size = int(request.url.params["page"]), int(request.url.params["per_page"])
        size = min(size, cap)
        return httpx.Response(200, json=items[(page - 1) * size : page * size])

    return answer


def test_every_page_is_read_with_the_page_size_asked_for(
    punchh: PunchhClient, script: Script
) -> None:
    script.answer = pages_of(SEGMENTS)
    assert punchh.list_all("segments", query="Seg", per_page=3) == SEGMENTS
    assert script.params() == [
        {"page": str(p), "per_page": "3", "query": "Seg"} for p in (1, 2, 3, 4)
    ]


def test_paging_ends_at_the_first_page_with_no_new_id(
    punchh: PunchhClient, script: Script
) -> None:
    # Page 2 repeats one item of page 1 and brings a new one; page 3 brings nothing new.
    pages = [SEGMENTS[:2], [SEGMENTS[1], SEGMENTS[2]], [SEGMENTS[2], SEGMENTS[0]], SEGMENTS[3:]]
    script.answer = lambda r: httpx.Response(200, json=pages[int(r.url.params["page"]) - 1])
    assert punchh.list_all("segments") == SEGMENTS[:3]
    assert len(script.seen) == 3


def test_redeemables_are_told_apart_by_uuid(punchh: PunchhClient, script: Script) -> None:
    same_id = [{"redeemable_id": 1, "redeemable_uuid": f"u-{i}", "name": "R"} for i in range(3)]
    script.answer = pages_of(same_id, cap=1)
    assert punchh.list_all("redeemables", per_page=1) == same_id
    assert len(script.seen) == 4


def test_paging_stops_at_the_bound_rather_than_guess(punchh: PunchhClient, script: Script) -> None:
    script.answer = lambda r: httpx.Response(
        200, json=[{"segment_id": r.url.params["page"], "name": "again"}]
    )
    with pytest.raises(PunchhUnexpected, match=f"did not end within {MAX_PAGES} pages"):
        punchh.list_all("segments", per_page=1)
    assert len(script.seen) == MAX_PAGES


def test_an_error_on_a_later_page_is_raised_not_swallowed(
    punchh: PunchhClient, script: Script
) -> None:
    first = pages_of(SEGMENTS, cap=3)
    script.answer = lambda r: first(r) if r.url.params["page"] == "1" else httpx.Response(503)
    with pytest.raises(PunchhServerError):
        punchh.list_all("segments")


# --- observer and guard -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (answer_with(200, CREATED), "200"),
        (answer_with(422, {"errors": "no"}), "422"),
        (raising(httpx.ConnectError), "connect_error"),
        (raising(httpx.ReadTimeout), "no_answer"),
    ],
)
def test_every_request_is_observed_by_endpoint_and_outcome(
    pure_settings: Settings, script: Script, answer: Any, outcome: str
) -> None:
    seen: list[tuple[str, str, float]] = []
    script.answer = answer
    client = PunchhClient(
        pure_settings.punchh_base_url, "k", "T/C/1",
        transport=httpx.MockTransport(script), observer=lambda *a: seen.append(a),
    )
    expected = nullcontext() if outcome == "200" else pytest.raises(PunchhError)
    with client, expected:
        commit(client)
    ((endpoint, said, seconds),) = seen
    assert (endpoint, said) == ("campaigns", outcome) and seconds >= 0


class Guard:
    """A guard that refuses once told to, and remembers what it was told."""

    def __init__(self, *, locked: bool = False) -> None:
        self.locked = locked
        self.refusals: list[PunchhAuthError] = []

    def check(self) -> None:
        if self.locked:
            raise PunchhLockedOut("locked", refused_at=0.0, until=1.0)

    def refused(self, exc: PunchhAuthError) -> None:
        self.refusals.append(exc)


@pytest.mark.parametrize(("status", "told"), [(401, 1), (403, 1), (404, 0), (422, 0), (503, 0)])
def test_only_a_refused_key_is_reported_to_the_guard(
    pure_settings: Settings, script: Script, status: int, told: int
) -> None:
    guard = Guard()
    script.answer = answer_with(status, {"error": "You need to sign in or sign up"})
    client = PunchhClient(
        pure_settings.punchh_base_url, "k", "T/C/1",
        transport=httpx.MockTransport(script), guard=guard,
    )
    with client, pytest.raises(PunchhError):
        client.list_page("segments")
    assert len(guard.refusals) == told


def test_a_locked_guard_keeps_every_request_home(pure_settings: Settings, script: Script) -> None:
    client = PunchhClient(
        pure_settings.punchh_base_url, "k", "T/C/1",
        transport=httpx.MockTransport(script), guard=Guard(locked=True),
    )
    with client:
        for call in (lambda: commit(client), lambda: client.list_all("segments")):
            with pytest.raises(PunchhLockedOut):
                call()
    assert script.seen == []

