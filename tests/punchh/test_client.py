"""The Punchh client against a scripted Punchh: what it sends, and each answer's error class.

Every error shape in ../shared/reference/punchh-api.md lands on the branch of punchh/errors.py
that says what the caller may safely do next. No sandbox, no Redis.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from punchh.client import MAX_PAGES, PunchhClient, format_start_time, parse_retry_after
from punchh.errors import (
    PunchhAmbiguous,
    PunchhAuthError,
    PunchhConnectError,
    PunchhError,
    PunchhLockedOut,
    PunchhNotActed,
    PunchhRateLimited,
    PunchhRejected,
    PunchhServerError,
    PunchhUnexpected,
)
from tests.conftest import SANDBOX_KEY
from tests.punchh.conftest import Script, answer_with, raising
from wiring.settings import DEFAULT_USER_AGENT, Settings

pytestmark = pytest.mark.no_sandbox

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


# --- answers and the error tree -----------------------------------------------------------------

SIGN_IN = {"error": "You need to sign in or sign up before continuing."}
NO_PERMISSION = {"no_permission_error": "Insufficient Privileges to access this resource"}
DISABLED = {"errors": {"disabled _feature": "Your current loyalty program configuration ..."}}

#: (status, body, class raised, Punchh's words the message keeps, codes).
REFUSALS = [
    (401, SIGN_IN, PunchhAuthError, "sign in or sign up", ("error",)),
    (403, NO_PERMISSION, PunchhAuthError, "Insufficient Privileges", ("no_permission_error",)),
    (401, NO_PERMISSION, PunchhAuthError, "Insufficient Privileges", ("no_permission_error",)),
    (403, "Forbidden", PunchhAuthError, "Forbidden", ()),
    (404, {"errors": {"not_found": "Not found."}}, PunchhRejected, "not_found: Not found.",
     ("not_found",)),
    (400, {"error": "Required parameter missing or the value is empty: start_time"},
     PunchhRejected, "value is empty: start_time", ("error",)),
    (422, {"errors": {"invalid_format": "Invalid Start Time format. Please use ISO8601"}},
     PunchhRejected, "invalid_format: Invalid Start Time format", ("invalid_format",)),
    (422, {"errors": {"invalid_start_time": "Campaign start time should be at least 15 ahead"}},
     PunchhRejected, "at least 15 ahead", ("invalid_start_time",)),
    (422, {"errors": {"invalid_redeemable": "Invalid redeemable uuid."}},
     PunchhRejected, "Invalid redeemable uuid.", ("invalid_redeemable",)),
    (422, {"errors": {"invalid_segment": "Invalid segment id."}},
     PunchhRejected, "Invalid segment id.", ("invalid_segment",)),
    (422, {"errors": {"invalid_category": "Invalid category."}},
     PunchhRejected, "Invalid category.", ("invalid_category",)),
    (422, {"errors": {"invalid_campaign_type": "Invalid campaign type."}},
     PunchhRejected, "Invalid campaign type.", ("invalid_campaign_type",)),
    (422, {"errors": "Redeemable is deactivated."}, PunchhRejected, "deactivated", ()),
    (422, {"errors": "Redeemable is expired."}, PunchhRejected, "expired", ()),
    (422, {"errors": "Name can't be blank"}, PunchhRejected, "Name can't be blank", ()),
    (422, DISABLED, PunchhRejected, "disabled _feature: Your current", ("disabled _feature",)),
    (422, {"name": ["Name has already been taken"]}, PunchhRejected, "", ()),
    (422, {"errors": ["Start time should be less than or equal to redeemable expiry",
                      "Coupon campaigns feature is not enabled in business"]},
     PunchhRejected, "expiry; Coupon campaigns", ()),
    (422, {"errors": {"limit_exceed": ["Max 1000 users", "per api call"]}},
     PunchhRejected, "limit_exceed: Max 1000 users; per api call", ("limit_exceed",)),
    (422, "<html>Unprocessable</html>", PunchhRejected, "<html>Unprocessable</html>", ()),
]


@pytest.mark.parametrize(("status", "body", "raised", "words", "codes"), REFUSALS)
def test_refusals_are_permanent_and_keep_punchhs_words(
    punchh: PunchhClient,
    script: Script,
    status: int,
    body: object,
    raised: type[PunchhRejected],
    words: str,
    codes: tuple[str, ...],
) -> None:
    script.answer = answer_with(status, body)
    with pytest.raises(raised) as caught:
        commit(punchh)
    exc = caught.value
    assert type(exc) is raised and isinstance(exc, PunchhRejected)
    assert (exc.status, exc.codes) == (status, codes)
    assert exc.message.startswith(f"Punchh answered {status}") and words in exc.message


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_safe_to_retry(punchh: PunchhClient, script: Script, status: int) -> None:
    script.answer = answer_with(status, "<html>Bad Gateway</html>")
    with pytest.raises(PunchhServerError) as caught:
        commit(punchh)
    assert isinstance(caught.value, PunchhNotActed) and caught.value.status == status
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("header", "retry_after"),
    [(None, None), ("7", 7.0), ("0", 0.0), ("2.5", 2.5), ("-3", 0.0), ("soon", None), ("", None)],
)
def test_429_is_safe_to_retry_and_carries_retry_after(
    punchh: PunchhClient, script: Script, header: str | None, retry_after: float | None
) -> None:
    headers = {} if header is None else {"Retry-After": header}
    script.answer = answer_with(429, {"errors": "Too many requests"}, **headers)
    with pytest.raises(PunchhRateLimited) as caught:
        punchh.list_page("redeemables")
    exc = caught.value
    assert isinstance(exc, PunchhNotActed) and exc.status == 429
    assert exc.retry_after == retry_after


def test_retry_after_as_an_http_date_is_seconds_from_now(
    punchh: PunchhClient, script: Script
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    script.answer = answer_with(429, None, **{"Retry-After": format_datetime(when, usegmt=True)})
    with pytest.raises(PunchhRateLimited) as caught:
        punchh.list_page("segments")
    assert caught.value.retry_after is not None and 110 <= caught.value.retry_after <= 120
    past = format_datetime(when - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (answer_with(504, "<html>Gateway Timeout</html>"), PunchhAmbiguous),
        (raising(httpx.ReadTimeout), PunchhAmbiguous),
        (raising(httpx.WriteTimeout), PunchhAmbiguous),
        (raising(httpx.ReadError), PunchhAmbiguous),  # connection reset after sending
        (raising(httpx.RemoteProtocolError), PunchhAmbiguous),  # closed without an answer
        (raising(httpx.ConnectError), PunchhConnectError),
        (raising(httpx.ConnectTimeout), PunchhConnectError),
        (raising(httpx.PoolTimeout), PunchhConnectError),
    ],
    ids=["504", "read-timeout", "write-timeout", "reset", "closed", "connect-error",
         "connect-timeout", "pool-timeout"],
)
def test_only_a_connection_never_made_is_safe_to_send_again(
    punchh: PunchhClient, script: Script, answer: Any, raised: type[PunchhError]
) -> None:
    script.answer = answer
    with pytest.raises(raised) as caught:
        commit(punchh)
    assert type(caught.value) is raised
    # The commit must only be retried when Punchh provably did not act.
    assert isinstance(caught.value, PunchhNotActed) == (raised is PunchhConnectError)


@pytest.mark.parametrize(
    "body",
    [b"<html>OK</html>", b"", b'{"campaign_id": ', {"redeemable_id": 1}, [CREATED], b'"ok"'],
    ids=["html", "empty", "truncated", "no-campaign-id", "a-list", "a-json-string"],
)
def test_a_200_commit_without_a_readable_campaign_id_is_ambiguous(
    punchh: PunchhClient, script: Script, body: object
) -> None:
    script.answer = answer_with(200, body)
    with pytest.raises(PunchhAmbiguous) as caught:
        commit(punchh)
    assert caught.value.status == 200


@pytest.mark.parametrize(
    ("body", "raised"),
    [
        (b"<html>OK</html>", PunchhAmbiguous),  # as for any 200 that is not JSON
        ({"segments": []}, PunchhUnexpected),
        ([1, 2], PunchhUnexpected),
        ([{"segment_id": 1}, "x"], PunchhUnexpected),
    ],
    ids=["html", "an-envelope", "numbers", "a-stray-string"],
)
def test_a_list_that_is_not_an_array_of_objects_is_refused(
    punchh: PunchhClient, script: Script, body: object, raised: type[PunchhError]
) -> None:
    script.answer = answer_with(200, body)
    with pytest.raises(raised):
        punchh.list_page("segments")


@pytest.mark.parametrize("status", [201, 202, 204, 301, 302, 304, 405, 409, 410, 418, 501, 505])
def test_unlisted_statuses_are_unexpected(
    punchh: PunchhClient, script: Script, status: int
) -> None:
    script.answer = answer_with(status, b"", Location="https://elsewhere.example/")
    with pytest.raises(PunchhUnexpected) as caught:
        commit(punchh)
    assert type(caught.value) is PunchhUnexpected and caught.value.status == status
    assert len(script.seen) == 1  # a redirect is not followed


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
    script.answer = answer_with(status, SIGN_IN)
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

