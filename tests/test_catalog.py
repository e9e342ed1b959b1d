"""The Punchh client and catalog: paging past a silent per_page cap, and the key lockout.

Against the real sandbox where it can show the behaviour (its per_page cap is set per test);
with httpx.MockTransport where a Punchh misbehaviour is easier to script than to imitate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis

from ledger.lockout import AuthLockout
from punchh.client import MAX_PAGES, PunchhClient
from punchh.errors import (
    NameAmbiguous,
    PunchhAmbiguous,
    PunchhAuthError,
    PunchhLockedOut,
    PunchhRejected,
    PunchhUnexpected,
)
from tests.conftest import auth
from tests.helpers import request_count
from wiring.punchh_guard import LockoutGuard
from wiring.services import Services


def cap(sandbox: httpx.Client, per_page: int) -> None:
    """Have the sandbox cut every page to `per_page` items without saying so."""
    sandbox.post("/_sandbox/paging", json={"max_per_page": per_page}).raise_for_status()


# --- against the sandbox ------------------------------------------------------------------------


def test_a_name_on_a_later_page_is_found(services: Services, sandbox: httpx.Client) -> None:
    cap(sandbox, 1)
    # Punchh's search for "birthday club" finds "Birthday Club" first and the exact name
    # second: stopping after the first (short) page would pick the wrong segment.
    found = services.catalog.resolve("segments", "birthday club")
    assert found["segment_id"] == 1307052
    assert len(services.catalog.search("segments", "")) == 31


def test_a_duplicate_on_a_later_page_is_ambiguous(
    services: Services, sandbox: httpx.Client
) -> None:
    cap(sandbox, 1)
    with pytest.raises(NameAmbiguous, match="2 Punchh segments are named"):
        services.catalog.resolve("segments", "Weekend Regulars")


def test_lists_for_pickers_show_every_page(
    client: object, services: Services, sandbox: httpx.Client
) -> None:
    cap(sandbox, 5)
    reply = client.get("/v1/segments", headers=auth())  # type: ignore[attr-defined]
    assert reply.status_code == 200 and reply.json["count"] == 31
    assert request_count(sandbox, "segments") == 8  # 7 pages of 5, and an empty eighth


# --- the client, scripted -----------------------------------------------------------------------

ITEMS = [{"segment_id": i, "name": f"Segment {i}"} for i in range(1, 24)]


def scripted(answer: Callable[[httpx.Request], httpx.Response]) -> tuple[PunchhClient, list[str]]:
    """A client whose every request is answered by `answer`; returns it and the paths asked."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.params))
        return answer(request)

    client = PunchhClient(
        "https://punchh.test", "key", "T/C/1", transport=httpx.MockTransport(handler)
    )
    return client, seen


def paged(
    per_page_cap: int, items: list[dict[str, object]] = ITEMS
) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        size = min(int(request.url.params["per_page"]), per_page_cap)
        return httpx.Response(200, json=items[(page - 1) * size : page * size])

    return answer


def test_paging_goes_on_past_a_short_page_until_an_empty_one() -> None:
    client, seen = scripted(paged(per_page_cap=10))
    assert client.list_all("segments", per_page=50) == ITEMS
    assert len(seen) == 4  # 10, 10, 3, then nothing new


def test_paging_stops_when_punchh_ignores_the_page_number() -> None:
    client, seen = scripted(lambda _: httpx.Response(200, json=ITEMS[:5]))
    assert client.list_all("segments", per_page=50) == ITEMS[:5]
    assert len(seen) == 2  # the second page added nothing new


def test_paging_is_bounded_and_says_so() -> None:
    endless = [{"segment_id": i, "name": f"S{i}"} for i in range(MAX_PAGES + 5)]
    client, seen = scripted(paged(per_page_cap=1, items=endless))
    with pytest.raises(PunchhUnexpected, match=f"{MAX_PAGES} pages"):
        client.list_all("segments", per_page=1)
    assert len(seen) == MAX_PAGES


# --- the lockout ---------------------------------------------------------------------------------


@pytest.fixture
def lockout(rdb: redis.Redis) -> AuthLockout:
    return AuthLockout(rdb, prefix="pc:", seconds=600)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_locks_out_every_later_call(lockout: AuthLockout, status: int) -> None:
    body = {"error": "You need to sign in or sign up before continuing."}
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(status, json=body)

    client = PunchhClient(
        "https://punchh.test", "key", "T/C/1",
        transport=httpx.MockTransport(handler), guard=LockoutGuard(lockout),
    )
    with pytest.raises(PunchhAuthError) as first:
        client.list_page("segments")
    assert not isinstance(first.value, PunchhLockedOut)  # the first caller hears Punchh
    for call in (lambda: client.list_all("redeemables"), lambda: client.list_page("segments")):
        with pytest.raises(PunchhLockedOut, match="punchh-connector punchh-unlock"):
            call()
    assert len(seen) == 1
    current = lockout.current()
    assert current is not None and str(status) in current.reason
    assert 590 < current.until - current.refused_at <= 600
    assert lockout.clear() is not None and lockout.current() is None
    with pytest.raises(PunchhAuthError):
        client.list_page("segments")
    assert len(seen) == 2


def test_other_errors_do_not_lock_out(lockout: AuthLockout) -> None:
    client = PunchhClient(
        "https://punchh.test", "key", "T/C/1", guard=LockoutGuard(lockout),
        transport=httpx.MockTransport(lambda _: httpx.Response(422, json={"errors": "no"})),
    )
    with pytest.raises(Exception, match="422"):
        client.list_page("segments")
    assert lockout.current() is None


def test_a_lockout_written_by_an_older_worker_is_honoured(
    lockout: AuthLockout, rdb: redis.Redis
) -> None:
    rdb.set("pc:punchh:auth_refused", "Punchh answered 401", ex=300)  # a plain message
    current = lockout.current()
    assert current is not None and current.reason == "Punchh answered 401"
    with pytest.raises(PunchhLockedOut):
        LockoutGuard(lockout).check()
    assert json.loads(json.dumps(current.as_dict()))["reason"] == "Punchh answered 401"


@pytest.mark.parametrize("status", [200, 422])
def test_an_answer_nested_deeper_than_python_parses_is_classified_not_raised(
    status: int,
) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    client, _ = scripted(lambda request: httpx.Response(status, content=deep))
    expected = PunchhAmbiguous if status == 200 else PunchhRejected
    with pytest.raises(expected):
        client.commit(
            redeemable_uuid="u",
            segment_id=1,
            name="n",
            start_time=datetime.now(UTC) + timedelta(hours=1),
            external_campaign_id="x",
        )
