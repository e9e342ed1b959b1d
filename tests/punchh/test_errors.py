"""Each answer Punchh can give, on the branch of punchh/errors.py that says what to do next.

Every error shape in ../shared/reference/punchh-api.md, and the network's failures, against a
scripted Punchh: only what provably did not reach Punchh is safe to send again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from punchh.client import PunchhClient, parse_retry_after
from punchh.errors import (
    PunchhAmbiguous,
    PunchhAuthError,
    PunchhConnectError,
    PunchhError,
    PunchhNotActed,
    PunchhRateLimited,
    PunchhRejected,
    PunchhServerError,
    PunchhUnexpected,
)
from tests.punchh.conftest import CREATED, Script, answer_with, commit, raising

pytestmark = pytest.mark.no_sandbox

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
