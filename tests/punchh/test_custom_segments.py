"""punchh.custom_segments: what each call sends, each documented answer mapped onto the error
tree (httpx.MockTransport), and the whole round against the real sandbox over HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from punchh.client import PunchhClient
from punchh.custom_segments import (
    ADD_USERS_PATH,
    CUSTOM_SEGMENTS_PATH,
    MEMBERS_PATH,
    AddUsersResult,
    CustomSegment,
    CustomSegments,
)
from punchh.errors import (
    CustomSegmentNameTaken,
    CustomSegmentNotFound,
    NameAmbiguous,
    PunchhAmbiguous,
    PunchhAuthError,
    PunchhConnectError,
    PunchhRateLimited,
    PunchhRejected,
    PunchhServerError,
    PunchhUnexpected,
)
from tests.sandbox.support import SEED, add_fault, sandbox_now, seed_redeemable, serving

KEY, AGENT = "sandbox-admin-key", "PunchhConnector/Tests/1.0"
SEGMENT_NOT_FOUND = "Custom Segment not found."
LIMIT_EXCEED = "Max 1000 users allowed per api call in async mode"
GUESTS: list[dict[str, Any]] = SEED["guests"]
CREATED = {
    "custom_segment_id": 5100001,
    "name": "pc-braze-send-1",
    "description": "",
    "created_at": "2026-11-25T18:00:00Z",
    "updated_at": "2026-11-25T18:00:00Z",
}


class Recorder:
    """A MockTransport handler answering from a list, keeping what was sent."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        """Answer each request with the next answer; an exception is raised instead."""
        self.answers = list(answers)
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Record the request, then answer it."""
        self.sent.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def body(self, index: int = -1) -> Any:
        """The JSON body of a sent request."""
        return json.loads(self.sent[index].content)


def mocked(*answers: httpx.Response | Exception) -> tuple[CustomSegments, Recorder]:
    """CustomSegments over a client whose transport answers with ``answers``."""
    recorder = Recorder(*answers)
    client = PunchhClient(
        "https://punchh.example", KEY, AGENT, transport=httpx.MockTransport(recorder)
    )
    return CustomSegments(client, per_page=2), recorder


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    """A JSON answer (a string body is sent as text)."""
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


# --- create -----------------------------------------------------------------------------------


def test_create_posts_the_name_and_reads_the_201() -> None:
    calls, sent = mocked(answer(201, CREATED))
    assert calls.create("pc-braze-send-1", "one send") == CustomSegment(5100001, "pc-braze-send-1")
    (request,) = sent.sent
    assert (request.method, request.url.path) == ("POST", CUSTOM_SEGMENTS_PATH)
    assert sent.body() == {"name": "pc-braze-send-1", "description": "one send"}
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["User-Agent"] == AGENT


@pytest.mark.parametrize(
    "body", [{"name": ["Name has already been taken"]}, {"errors": {"name": ["is taken"]}}]
)
def test_a_taken_name_is_its_own_refusal(body: dict[str, Any]) -> None:
    calls, _ = mocked(answer(422, body))
    with pytest.raises(CustomSegmentNameTaken) as caught:
        calls.create("pc-braze-send-1")
    assert isinstance(caught.value, PunchhRejected) and caught.value.status == 422
    assert "pc-braze-send-1" in caught.value.message


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (answer(422, {"errors": {"invalid_parameter": "x"}}), PunchhRejected),
        (answer(401, {"error": "You need to sign in or sign up first."}), PunchhAuthError),
        (answer(201, {"name": "pc-braze-send-1"}), PunchhAmbiguous),
        (answer(201, "<html>"), PunchhAmbiguous),
        (answer(200, CREATED), PunchhUnexpected),  # create answers 201; a 200 is not documented
        (answer(504), PunchhAmbiguous),
        (httpx.ReadTimeout("slow"), PunchhAmbiguous),
        (httpx.ConnectError("refused"), PunchhConnectError),
    ],
)
def test_create_maps_every_other_answer(reply: Any, error: type[Exception]) -> None:
    calls, _ = mocked(reply)
    with pytest.raises(error) as caught:
        calls.create("pc-braze-send-1")
    assert not isinstance(caught.value, CustomSegmentNameTaken)


def test_a_blank_name_is_never_sent() -> None:
    calls, sent = mocked()
    with pytest.raises(ValueError, match="name"):
        calls.create("  ")
    assert sent.sent == []


# --- find ------------------------------------------------------------------------------------


def item(ident: int, name: str) -> dict[str, Any]:
    """A list item."""
    return {**CREATED, "custom_segment_id": ident, "name": name}


def test_find_pages_until_a_page_adds_nothing_and_matches_case_and_all() -> None:
    calls, sent = mocked(
        answer(200, [item(1, "PC-braze-send-1"), item(2, "other")]),
        answer(200, [item(3, "pc-braze-send-1"), item(4, "more")]),
        answer(200, [item(3, "pc-braze-send-1")]),  # a Punchh ignoring `page` repeats itself
    )
    assert calls.find("pc-braze-send-1") == CustomSegment(3, "pc-braze-send-1")
    assert [dict(r.url.params) for r in sent.sent] == [
        {"page": str(page), "per_page": "2"} for page in (1, 2, 3)
    ]


def test_find_answers_none_and_refuses_two() -> None:
    calls, _ = mocked(answer(200, [item(1, "a")]), answer(200, []))
    assert calls.find("pc-braze-send-1") is None
    calls, _ = mocked(answer(200, [item(1, "x"), item(2, "x")]), answer(200, []))
    with pytest.raises(NameAmbiguous):
        calls.find("x")
    calls, _ = mocked(answer(200, {"custom_segments": []}))
    with pytest.raises(PunchhUnexpected):
        calls.find("x")


# --- add_users -------------------------------------------------------------------------------


def test_add_users_sends_one_async_batch_and_counts_the_unknown() -> None:
    calls, sent = mocked(answer(200, {"invalid_identifiers": ["guest@nowhere.example"]}))
    result = calls.add_users(5100001, ["880001", "guest@nowhere.example", "880002"])
    assert result == AddUsersResult(sent=3, invalid=1)
    assert (sent.sent[0].method, sent.sent[0].url.path) == ("POST", ADD_USERS_PATH)
    assert sent.body() == {
        "bulk_method": "async",
        "custom_segment_id": 5100001,
        "user_identifiers": ["880001", "guest@nowhere.example", "880002"],
    }


@pytest.mark.parametrize("count", [0, 1001])
def test_add_users_refuses_a_batch_punchh_would_refuse(count: int) -> None:
    calls, sent = mocked()
    with pytest.raises(ValueError, match="1000"):
        calls.add_users(5100001, ["880001"] * count)
    assert sent.sent == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (answer(404, {"errors": {"not_found": SEGMENT_NOT_FOUND}}), CustomSegmentNotFound),
        (answer(422, {"errors": {"limit_exceed": LIMIT_EXCEED}}), PunchhRejected),
        (answer(429, {"error": "Too many requests"}, **{"Retry-After": "7"}), PunchhRateLimited),
        (answer(503, {"error": "down"}), PunchhServerError),
        (answer(200, {"added": 3}), PunchhAmbiguous),
        (httpx.RemoteProtocolError("dropped"), PunchhAmbiguous),
        (httpx.ConnectError("refused"), PunchhConnectError),
    ],
)
def test_add_users_maps_each_answer(reply: Any, error: type[Exception]) -> None:
    calls, _ = mocked(reply)
    with pytest.raises(error) as caught:
        calls.add_users(5100001, ["880001"])
    if isinstance(caught.value, PunchhRateLimited):
        assert caught.value.retry_after == 7
    if error is PunchhRejected:
        assert isinstance(caught.value, PunchhRejected)
        assert caught.value.codes == ("limit_exceed",)


# --- membership, delete and the listed segment id ------------------------------------------


def test_is_member_reads_200_and_both_404s() -> None:
    calls, sent = mocked(
        answer(200, {"custom_segment_member_id": 1, "custom_segment_id": 5100001}),
        answer(404, {"errors": {"not_found": "Member not found."}}),
        answer(404, {"errors": {"not_found": "Custom Segment not found."}}),
    )
    assert calls.is_member(5100001, user_id=880001) is True
    assert calls.is_member(5100001, email="guest1@example.com") is False
    with pytest.raises(CustomSegmentNotFound):
        calls.is_member(5100001, user_id="880001")
    assert [(r.method, r.url.path) for r in sent.sent] == [("GET", MEMBERS_PATH)] * 3
    assert [dict(r.url.params) for r in sent.sent] == [
        {"custom_segment_id": "5100001", "user_id": "880001"},
        {"custom_segment_id": "5100001", "email": "guest1@example.com"},
        {"custom_segment_id": "5100001", "user_id": "880001"},
    ]
    for wrong in ({}, {"user_id": 1, "email": "a@b.example"}):
        with pytest.raises(ValueError):
            calls.is_member(5100001, **wrong)


def test_a_membership_check_never_logs_its_guest(caplog: pytest.LogCaptureFixture) -> None:
    calls, _ = mocked(answer(404, {"errors": {"not_found": "Member not found."}}))
    with caplog.at_level(logging.INFO, logger="httpx"):
        calls.is_member(5100001, email="guest1@example.com")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert "custom_segment_id=5100001" in line and "email=redacted" in line
    assert "guest1" not in line


def test_delete_reads_202_and_404() -> None:
    accepted = {"accepted": "Custom Segment pc-braze-send-1 has been marked for deletion"}
    calls, sent = mocked(
        answer(202, accepted),
        answer(404, {"errors": {"not_found": "Custom Segment not found."}}),
    )
    calls.delete(5100001)
    with pytest.raises(CustomSegmentNotFound):
        calls.delete(5100001)
    assert (sent.sent[0].method, dict(sent.sent[0].url.params)) == (
        "DELETE",
        {"custom_segment_id": "5100001"},
    )


def segment(ident: int, name: str) -> dict[str, Any]:
    """A Get Segment List item."""
    return {"segment_id": ident, "name": name, "segment_type": "CustomSegmentDefinition"}


def test_the_listed_segment_id_is_an_exact_name_match() -> None:
    calls, sent = mocked(
        answer(200, [segment(7, "pc-braze-send-1"), segment(8, "PC-braze-send-1")]),
        answer(200, []),
    )
    assert calls.listed_segment_id("pc-braze-send-1") == 7
    assert sent.sent[0].url.params["query"] == "pc-braze-send-1"
    assert len(sent.sent) == 1  # the name is ours: found on a page, no page more is asked
    calls, sent = mocked(
        answer(200, [segment(3, "pc-braze-send-1 old")]),
        answer(200, [segment(7, "pc-braze-send-1")]),
        answer(200, []),
    )
    assert calls.listed_segment_id("pc-braze-send-1") == 7  # on a later page (a silent cap)
    assert len(sent.sent) == 2
    calls, _ = mocked(answer(200, [segment(8, "PC-braze-send-1")]), answer(200, []))
    assert calls.listed_segment_id("pc-braze-send-1") is None
    calls, _ = mocked(answer(200, [segment(7, "x"), segment(9, "x")]), answer(200, []))
    with pytest.raises(NameAmbiguous):
        calls.listed_segment_id("x")


# --- against the sandbox ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    """The real sandbox app served over HTTP in this process."""
    with serving() as url:
        yield url


@pytest.fixture
def control(sandbox_url: str) -> Iterator[httpx.Client]:
    """The sandbox's control surface, reset first."""
    with httpx.Client(base_url=sandbox_url, timeout=5) as client:
        client.post("/_sandbox/reset").raise_for_status()
        yield client


@pytest.fixture
def punchh(sandbox_url: str, control: httpx.Client) -> Iterator[PunchhClient]:
    """The connector's Punchh client on the sandbox."""
    with PunchhClient(sandbox_url, KEY, AGENT, timeout=httpx.Timeout(3.0)) as client:
        yield client


def rewarded(control: httpx.Client, guest: dict[str, Any]) -> list[int]:
    """The campaign ids one guest was gifted by."""
    reply = control.get(f"/_sandbox/guests/{guest['guest_id']}/rewards").json()
    return [r["campaign_id"] for r in reply]


def commit(punchh: PunchhClient, control: httpx.Client, segment_id: int) -> int:
    """Commit Free Coffee to ``segment_id`` 20 minutes ahead; the campaign id."""
    reply = punchh.commit(
        redeemable_uuid=seed_redeemable("Free Coffee")["redeemable_uuid"],
        segment_id=segment_id,
        name="Audience send",
        start_time=sandbox_now(control) + timedelta(minutes=20),
        external_campaign_id="braze:test:1",
    )
    return int(reply["campaign_id"])


def test_one_audience_send_end_to_end(punchh: PunchhClient, control: httpx.Client) -> None:
    calls = CustomSegments(punchh)
    created = calls.create("pc-braze-send-1", "recipients of one send")
    assert calls.find("pc-braze-send-1") == created
    inside, by_email, outside = GUESTS[0], GUESTS[1], GUESTS[2]
    batch = [str(inside["guest_id"]), by_email["email"], "990000001"]
    assert calls.add_users(created.custom_segment_id, batch) == AddUsersResult(sent=3, invalid=1)
    assert calls.is_member(created.custom_segment_id, user_id=inside["guest_id"])
    assert calls.is_member(created.custom_segment_id, email=by_email["email"])
    assert not calls.is_member(created.custom_segment_id, user_id=outside["guest_id"])
    segment_id = calls.listed_segment_id("pc-braze-send-1")
    assert segment_id is not None and segment_id != created.custom_segment_id
    campaign_id = commit(punchh, control, segment_id)
    control.post("/_sandbox/clock", json={"advance_seconds": 3600})
    assert rewarded(control, inside) == rewarded(control, by_email) == [campaign_id]
    assert rewarded(control, outside) == []
    calls.delete(created.custom_segment_id)
    assert calls.find("pc-braze-send-1") is None
    with pytest.raises(CustomSegmentNotFound):
        calls.add_users(created.custom_segment_id, [str(inside["guest_id"])])


def test_a_lost_create_answer_is_found_by_name(punchh: PunchhClient, control: httpx.Client) -> None:
    calls = CustomSegments(punchh)
    add_fault(control, endpoint="create_custom_segment", mode="commit_drop")
    with pytest.raises(PunchhAmbiguous):
        calls.create("pc-braze-send-1")
    with pytest.raises(CustomSegmentNameTaken):
        calls.create("pc-braze-send-1")
    found = calls.find("pc-braze-send-1")
    assert found is not None
    assert [c["custom_segment_id"] for c in control.get("/_sandbox/custom_segments").json()] == [
        found.custom_segment_id
    ]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"mode": "429", "retry_after": 2}, PunchhRateLimited),
        ({"mode": "500"}, PunchhServerError),
        ({"mode": "503"}, PunchhServerError),
        ({"mode": "drop"}, PunchhAmbiguous),
        ({"mode": "commit_drop"}, PunchhAmbiguous),
    ],
)
def test_add_users_faults_then_a_repeat_adds_each_guest_once(
    punchh: PunchhClient, control: httpx.Client, fault: dict[str, Any], error: type[Exception]
) -> None:
    calls = CustomSegments(punchh)
    created = calls.create("pc-braze-send-1")
    batch = [str(g["guest_id"]) for g in GUESTS[:5]]
    add_fault(control, endpoint="add_users", **fault)
    with pytest.raises(error):
        calls.add_users(created.custom_segment_id, batch)
    assert calls.add_users(created.custom_segment_id, batch) == AddUsersResult(5, 0)
    (listed,) = control.get("/_sandbox/custom_segments").json()
    assert listed["member_guest_ids"] == sorted(g["guest_id"] for g in GUESTS[:5])


def test_the_other_reading_lists_nothing_and_commits_by_custom_segment_id(
    punchh: PunchhClient, control: httpx.Client
) -> None:
    control.post("/_sandbox/address_mode", json={"address_mode": "custom_segment_id"})
    calls = CustomSegments(punchh)
    created = calls.create("pc-braze-send-1")
    calls.add_users(created.custom_segment_id, [str(GUESTS[0]["guest_id"])])
    assert calls.listed_segment_id("pc-braze-send-1") is None
    campaign_id = commit(punchh, control, created.custom_segment_id)
    control.post("/_sandbox/clock", json={"advance_seconds": 3600})
    assert rewarded(control, GUESTS[0]) == [campaign_id]


def test_a_sandbox_that_is_gone_is_a_connect_error() -> None:
    with serving() as url:
        pass  # stopped: nothing listens on the port any more
    with PunchhClient(url, KEY, AGENT) as client, pytest.raises(PunchhConnectError):
        CustomSegments(client).add_users(5100001, ["880001"])
