"""The catalog: name → id resolution over a scripted Punchh, cached in a real Redis.

Punchh's `query` is a search, not an exact match: the scripted Punchh below answers with every
name containing the query, case-insensitively, paged the way Punchh pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from punchh import errors
from punchh.catalog import FAILED_LOOKUP_SECONDS, Catalog, Resolution
from punchh.client import PunchhClient
from tests.punchh.conftest import Answer, Script, answer_with, raising

pytestmark = pytest.mark.no_sandbox

PREFIX = "cat-test:"
SEGMENTS = [
    {"segment_id": 1306904, "name": "Lapsed 90 days"},
    {"segment_id": 1306905, "name": "Lapsed 90 Days Plus"},
    {"segment_id": 1307001, "name": "Birthday Club"},
    {"segment_id": 1307002, "name": "birthday club"},
    {"segment_id": 1307010, "name": "Weekend Regulars"},
    {"segment_id": 1307011, "name": "weekend regulars"},
    {"segment_id": 1307012, "name": "WEEKEND REGULARS"},
    {"segment_id": 1307020, "name": "VIP Guests"},
    {"segment_id": 1307021, "name": "VIP Guests"},
    {"segment_id": 1307030, "name": "Free Wifi Fans"},
]
REDEEMABLES = [
    {"redeemable_id": 20473, "redeemable_uuid": "5f1c-coffee", "name": "Free Coffee",
     "description": "Any size"},
    {"redeemable_id": 20474, "redeemable_uuid": "5f1c-dessert", "name": "Free Dessert",
     "description": "After a meal"},
]


def searching(lists: dict[str, list[dict[str, Any]]]) -> Answer:
    """Punchh's list endpoints: `query` matched anywhere in the name, `page` and `per_page`."""

    def answer(request: httpx.Request) -> httpx.Response:
        items = lists[request.url.path.rsplit("/", 1)[1]]
        query = request.url.params.get("query", "").casefold()
        found = [i for i in items if query in i["name"].casefold()]
        page, size = int(request.url.params["page"]), int(request.url.params["per_page"])
        return httpx.Response(200, json=found[(page - 1) * size : page * size])

    return answer


@pytest.fixture
def make_catalog(
    punchh: PunchhClient, script: Script, rdb: redis.Redis
) -> Callable[..., Catalog]:
    """A catalog over the scripted Punchh (answering with the lists above) and the test Redis."""
    script.answer = searching({"segments": SEGMENTS, "redeemables": REDEEMABLES})

    def make(**options: Any) -> Catalog:
        return Catalog(punchh, rdb, **{"prefix": PREFIX, "per_page": 3, **options})

    return make


@pytest.fixture
def catalog(make_catalog: Callable[..., Catalog]) -> Catalog:
    """A catalog with caching off, so each call asks Punchh."""
    return make_catalog(ttl_seconds=0)


# --- name resolution ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "segment_id"),
    [
        ("Lapsed 90 days", 1306904),  # exact, although the search also finds a longer name
        ("lapsed 90 DAYS", 1306904),  # no exact spelling: the one case-insensitive match
        ("Birthday Club", 1307001),  # exact spelling wins over a case-insensitive twin
        ("birthday club", 1307002),
        ("Free Wifi Fans", 1307030),
    ],
)
def test_a_name_resolves_to_its_one_id(catalog: Catalog, name: str, segment_id: int) -> None:
    assert catalog.resolve("segments", name)["segment_id"] == segment_id


@pytest.mark.parametrize(
    ("name", "candidates"),
    [
        ("VIP Guests", ("1307020", "1307021")),  # the same spelling twice
        ("Weekend regulars", ("1307010", "1307011", "1307012")),  # alike only when folded
    ],
)
def test_two_items_of_one_name_are_an_ambiguity_not_a_guess(
    catalog: Catalog, name: str, candidates: tuple[str, ...]
) -> None:
    with pytest.raises(errors.NameAmbiguous) as caught:
        catalog.resolve("segments", name)
    exc = caught.value
    assert isinstance(exc, errors.PunchhRejected) and exc.codes == ("ambiguous_name",)
    assert len(exc.candidates) == len(candidates)
    assert all(any(i in c for c in exc.candidates) for i in candidates)
    assert f'{len(candidates)} Punchh segments are named "{name}"' in exc.message


def test_the_same_item_listed_twice_is_not_ambiguous(script: Script, catalog: Catalog) -> None:
    twice = [SEGMENTS[0], dict(SEGMENTS[0])]
    script.answer = lambda _: httpx.Response(200, json=twice)
    assert catalog.resolve("segments", "Lapsed 90 days")["segment_id"] == 1306904


def test_search_first_then_the_whole_list(script: Script, catalog: Catalog) -> None:
    # Punchh's search on "Coffee, Free" finds nothing; the full list has it case-folded.
    with pytest.raises(errors.NameNotFound):
        catalog.resolve("redeemables", "Coffee, Free")
    asked = [p.get("query") for p in script.params()]
    assert asked[0] == "Coffee, Free" and set(asked[1:]) == {None}
    assert catalog.resolve("redeemables", "FREE COFFEE")["redeemable_uuid"] == "5f1c-coffee"


@pytest.mark.parametrize(
    ("kind", "name", "code", "hint"),
    [
        ("segments", "Lapsed 91 days", "unknown_segment", "'Lapsed 90 days'"),
        ("segments", "Birthday", "unknown_segment", "'Birthday Club', 'birthday club'"),
        ("redeemables", "Free Coffe", "unknown_redeemable", "'Free Coffee'"),
        ("segments", "Zz", "unknown_segment", None),
    ],
)
def test_an_unknown_name_is_a_rejection_that_suggests_close_names(
    catalog: Catalog, kind: Any, name: str, code: str, hint: str | None
) -> None:
    with pytest.raises(errors.NameNotFound) as caught:
        catalog.resolve(kind, name)
    exc = caught.value
    assert isinstance(exc, errors.PunchhRejected) and exc.codes == (code,) and exc.status is None
    assert f'is named "{name}"' in exc.message
    if hint is None:
        assert "did you mean" not in exc.message
    else:
        assert f"(did you mean: {hint}" in exc.message


def test_a_pair_resolves_both_ids(catalog: Catalog) -> None:
    found = catalog.resolve_pair("lapsed 90 DAYS", "Free Dessert")
    assert found == Resolution(1306904, "Lapsed 90 days", "5f1c-dessert", "Free Dessert")
    assert found.as_dict() == {
        "segment": {"name": "Lapsed 90 days", "segment_id": 1306904},
        "redeemable": {"name": "Free Dessert", "redeemable_uuid": "5f1c-dessert"},
    }


def test_a_segment_id_sent_as_text_is_an_int(script: Script, catalog: Catalog) -> None:
    item = {"segment_id": "42", "redeemable_uuid": "u-1", "name": "S"}
    script.answer = lambda _: httpx.Response(200, json=[item])
    assert catalog.resolve_pair("S", "S").segment_id == 42


def test_pages_are_read_with_the_configured_size(script: Script, catalog: Catalog) -> None:
    catalog.search("segments", "")
    assert {p["per_page"] for p in script.params()} == {"3"}
    assert [p["page"] for p in script.params()] == ["1", "2", "3", "4", "5"]


# --- the cache ----------------------------------------------------------------------------------


def test_a_fresh_list_is_answered_from_redis(
    make_catalog: Callable[..., Catalog], script: Script, rdb: redis.Redis
) -> None:
    catalog = make_catalog(ttl_seconds=60)
    first = catalog.search("segments", "lapsed")
    asked = len(script.seen)
    assert catalog.search("segments", "lapsed") == first == SEGMENTS[:2]
    assert len(script.seen) == asked  # nothing more asked of Punchh
    catalog.search("segments", "club")  # another query is another entry
    assert len(script.seen) > asked
    keys = rdb.keys(f"{PREFIX}*")
    assert len(keys) == 2 and all(0 < rdb.ttl(k) <= 60 for k in keys)


def test_a_cache_of_zero_seconds_keeps_nothing(
    make_catalog: Callable[..., Catalog], script: Script, rdb: redis.Redis
) -> None:
    catalog = make_catalog(ttl_seconds=0, remember_failures=True)
    catalog.search("segments", "lapsed")
    catalog.search("segments", "lapsed")
    assert [p["page"] for p in script.params()] == ["1", "2", "1", "2"]
    script.answer = answer_with(503)
    for _ in range(2):
        with pytest.raises(errors.PunchhServerError):
            catalog.search("segments", "lapsed")
    assert rdb.dbsize() == 0


def test_every_catalog_key_carries_the_prefix(
    make_catalog: Callable[..., Catalog], rdb: redis.Redis
) -> None:
    make_catalog(ttl_seconds=60).resolve_pair("Lapsed 90 days", "Free Coffee")
    assert rdb.dbsize() > 0
    assert all(k.startswith(PREFIX.encode()) for k in rdb.keys("*"))


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (answer_with(503, "<html>unavailable</html>"), errors.PunchhNotActed),
        (raising(httpx.ConnectError), errors.PunchhNotActed),
        (answer_with(429, None, **{"Retry-After": "3"}), errors.PunchhNotActed),
        (answer_with(422, {"errors": {"disabled _feature": "no"}}), errors.PunchhRejected),
        (answer_with(504), errors.PunchhAmbiguous),
        (raising(httpx.ReadTimeout), errors.PunchhAmbiguous),
        (answer_with(418), errors.PunchhUnexpected),
    ],
    ids=["503", "connect", "429", "422", "504", "read-timeout", "418"],
)
def test_a_failed_lookup_is_remembered_briefly_by_its_branch(
    make_catalog: Callable[..., Catalog],
    script: Script,
    rdb: redis.Redis,
    answer: Answer,
    raised: type[errors.PunchhError],
) -> None:
    catalog = make_catalog(ttl_seconds=60, remember_failures=True)
    script.answer = answer
    with pytest.raises(raised) as first:
        catalog.search("redeemables", "Free")
    with pytest.raises(raised) as again:
        catalog.search("redeemables", "Free")
    assert len(script.seen) == 1  # the second caller was answered from Redis
    assert type(again.value) is raised and again.value.status == first.value.status
    assert "not asked again yet" in again.value.message
    assert first.value.message in again.value.message
    (key,) = rdb.keys(f"{PREFIX}*")
    assert key.endswith(b":failed") and 0 < rdb.ttl(key) <= FAILED_LOOKUP_SECONDS


def test_a_failure_is_remembered_no_longer_than_the_list_would_be(
    make_catalog: Callable[..., Catalog], script: Script, rdb: redis.Redis
) -> None:
    script.answer = answer_with(503)
    with pytest.raises(errors.PunchhServerError):
        make_catalog(ttl_seconds=4, remember_failures=True).search("segments", "x")
    (key,) = rdb.keys(f"{PREFIX}*")
    assert 0 < rdb.ttl(key) <= 4


def test_without_remembering_each_caller_asks_punchh(
    make_catalog: Callable[..., Catalog], script: Script, rdb: redis.Redis
) -> None:
    catalog = make_catalog(ttl_seconds=60)
    script.answer = answer_with(503)
    for _ in range(3):
        with pytest.raises(errors.PunchhServerError):
            catalog.search("segments", "x")
    assert len(script.seen) == 3 and rdb.dbsize() == 0


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_not_remembered_here(
    make_catalog: Callable[..., Catalog], script: Script, rdb: redis.Redis, status: int
) -> None:
    # The lockout holds every caller back instead: a remembered refusal would outlive it.
    catalog = make_catalog(ttl_seconds=60, remember_failures=True)
    script.answer = answer_with(status, {"error": "You need to sign in or sign up"})
    for _ in range(2):
        with pytest.raises(errors.PunchhAuthError):
            catalog.search("segments", "x")
    assert len(script.seen) == 2 and rdb.dbsize() == 0


def test_a_lookup_that_recovers_is_cached_as_usual(
    make_catalog: Callable[..., Catalog], script: Script, rdb: redis.Redis
) -> None:
    catalog = make_catalog(ttl_seconds=60, remember_failures=True)
    good = script.answer
    script.answer = answer_with(503)
    with pytest.raises(errors.PunchhServerError):
        catalog.search("segments", "lapsed")
    rdb.delete(*rdb.keys(f"{PREFIX}*"))  # the remembered failure has run out
    script.answer = good
    assert catalog.search("segments", "lapsed") == SEGMENTS[:2]
    assert catalog.search("segments", "lapsed") == SEGMENTS[:2]
    assert len(script.seen) == 3  # the failure, then two pages: the second search was cached
