"""Punchh's custom segments, for audience mode: create, find by name, add_users, the membership
check, delete, and the segment id a commit addresses one by.

Each call follows the "Custom segments" section of shared/reference/punchh-api.md and maps
Punchh's answers onto punchh.errors. Guest identifiers pass through and are never kept: the
answers carry counts, and the URL of a membership check is redacted in httpx's request log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx

from punchh.client import MAX_PAGES, PunchhClient
from punchh.errors import (
    CustomSegmentNameTaken,
    CustomSegmentNotFound,
    NameAmbiguous,
    PunchhAmbiguous,
    PunchhRejected,
    PunchhUnexpected,
)

CUSTOM_SEGMENTS_PATH = "/api2/dashboard/custom_segments"
MEMBERS_PATH = "/api2/dashboard/custom_segments/members"
ADD_USERS_PATH = "/api2/dashboard/custom_segments/members/add_users"

ADD_USERS_LIMIT = 1000
"""Most identifiers one ``async`` add_users call takes; Punchh answers 422 limit_exceed above."""

#: Query parameters that name a guest; httpx logs every request's URL at INFO.
GUEST_PARAMS = ("email", "user_id")


@dataclass(frozen=True)
class CustomSegment:
    """A custom segment as Punchh lists and creates it."""

    custom_segment_id: int
    name: str
    description: str = ""

    @classmethod
    def from_body(cls, body: Any) -> CustomSegment | None:
        """Read one from Punchh's JSON, or None when it is not shaped like one."""
        if not isinstance(body, dict):
            return None
        ident, name = body.get("custom_segment_id"), body.get("name")
        if isinstance(ident, bool) or not isinstance(ident, int) or not isinstance(name, str):
            return None
        return cls(ident, name, str(body.get("description") or ""))


@dataclass(frozen=True)
class AddUsersResult:
    """What one add_users call did, in counts only: identifiers are guest data."""

    sent: int
    invalid: int
    """How many identifiers Punchh knew no guest by (it skips them)."""


class _RedactGuestParams(logging.Filter):
    """httpx logs each request's URL; a membership check's names a guest."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the guest parameters' values in any URL argument; keep the record."""
        if isinstance(record.args, tuple):
            args = record.args
            record.args = tuple(_redacted(a) if isinstance(a, httpx.URL) else a for a in args)
        return True


def _redacted(url: httpx.URL) -> httpx.URL:
    """The URL with every guest parameter's value replaced."""
    params = url.params
    for name in GUEST_PARAMS:
        if name in params:
            params = params.set(name, "redacted")
    return url.copy_with(params=params) if params != url.params else url


_REDACTOR = _RedactGuestParams()


def _not_found(exc: PunchhRejected) -> PunchhRejected:
    """A 404 naming the custom segment as CustomSegmentNotFound; anything else as it came."""
    if exc.status == 404 and "custom segment not found" in exc.message.casefold():
        return CustomSegmentNotFound(exc.message, status=404, codes=exc.codes)
    return exc


class CustomSegments:
    """The custom-segment calls, over one PunchhClient (its guard, observer and error tree)."""

    def __init__(self, client: PunchhClient, *, per_page: int = 50) -> None:
        """Use ``client`` for every call; list pages ask for ``per_page`` items."""
        self.client = client
        self.per_page = per_page
        httpx_log = logging.getLogger("httpx")
        if _REDACTOR not in httpx_log.filters:
            httpx_log.addFilter(_REDACTOR)

    def create(self, name: str, description: str = "") -> CustomSegment:
        """Create one. Not idempotent at Punchh: a lost answer is recovered by ``find``.

        Create documents one 422, the name rule, whose body (``{"name": [...]}``) names no
        error code; so a 422 naming no other code is read as the name taken. Either way the
        caller's next step is ``find``, which tells a real name clash from anything else.
        """
        if not name.strip():
            raise ValueError("a custom segment needs a name")
        payload = {"name": name, "description": description}
        try:
            body = self.client._send(
                "POST", CUSTOM_SEGMENTS_PATH, json=payload, expect=frozenset({201})
            )
        except PunchhRejected as exc:
            if exc.status == 422 and (not exc.codes or "name" in exc.codes):
                raise CustomSegmentNameTaken(
                    f'a Punchh custom segment is already named "{name}" ({exc.message})',
                    status=422,
                    codes=exc.codes or ("name",),
                ) from exc
            raise
        created = CustomSegment.from_body(body)
        if created is None:
            # Made, most likely, but unreadable: only a find by name can say which id it has.
            raise PunchhAmbiguous("Punchh answered 201 without a custom_segment_id", status=201)
        return created

    def find(self, name: str) -> CustomSegment | None:
        """The custom segment named exactly ``name`` (case and all), paging the whole list.

        Case-sensitive on purpose: a segment named alike but for case is someone else's, and
        adding guests to it would gift strangers.
        """
        seen: set[int] = set()
        found: list[CustomSegment] = []
        for page in range(1, MAX_PAGES + 1):
            params: dict[str, str | int] = {"page": page, "per_page": self.per_page}
            body = self.client._send("GET", CUSTOM_SEGMENTS_PATH, params=params)
            if not isinstance(body, list):
                raise PunchhUnexpected("Punchh's custom segment list was not a JSON array")
            items = [s for s in map(CustomSegment.from_body, body) if s is not None]
            # A page that adds nothing is the end: Punchh documents no paging for this list.
            fresh = [s for s in items if s.custom_segment_id not in seen]
            if not fresh:
                return _only(found, name)
            seen.update(s.custom_segment_id for s in fresh)
            found.extend(s for s in fresh if s.name == name)
        raise PunchhUnexpected(f"Punchh's custom segment list did not end within {MAX_PAGES} pages")

    def add_users(self, custom_segment_id: int, identifiers: Sequence[str]) -> AddUsersResult:
        """Add up to 1,000 guests (user ids or emails) asynchronously; safe to repeat."""
        if not 1 <= len(identifiers) <= ADD_USERS_LIMIT:
            raise ValueError(f"add_users takes 1 to {ADD_USERS_LIMIT} identifiers a call")
        payload = {
            "bulk_method": "async",
            "custom_segment_id": custom_segment_id,
            "user_identifiers": list(identifiers),
        }
        try:
            body = self.client._send("POST", ADD_USERS_PATH, json=payload)
        except PunchhRejected as exc:
            raise _not_found(exc) from exc
        invalid = body.get("invalid_identifiers") if isinstance(body, dict) else None
        if not isinstance(invalid, list):
            raise PunchhAmbiguous("Punchh answered 200 without invalid_identifiers", status=200)
        return AddUsersResult(sent=len(identifiers), invalid=len(invalid))

    def is_member(
        self,
        custom_segment_id: int,
        *,
        user_id: int | str | None = None,
        email: str | None = None,
    ) -> bool:
        """Whether one guest (by Punchh user id, or else email) is a member."""
        if (user_id is None) == (email is None):
            raise ValueError("give exactly one of user_id and email")
        params: dict[str, str | int] = {"custom_segment_id": custom_segment_id}
        params.update({"user_id": str(user_id)} if user_id is not None else {"email": str(email)})
        try:
            self.client._send("GET", MEMBERS_PATH, params=params)
        except PunchhRejected as exc:
            if exc.status == 404 and "member not found" in exc.message.casefold():
                return False
            raise _not_found(exc) from exc
        return True

    def delete(self, custom_segment_id: int) -> None:
        """Delete one (Punchh marks it for deletion and answers 202)."""
        params: dict[str, str | int] = {"custom_segment_id": custom_segment_id}
        try:
            self.client._send(
                "DELETE", CUSTOM_SEGMENTS_PATH, params=params, expect=frozenset({202})
            )
        except PunchhRejected as exc:
            raise _not_found(exc) from exc

    def listed_segment_id(self, name: str) -> int | None:
        """The ``segment_id`` Get Segment List lists a custom segment under, if it lists it.

        Punchh is silent on how a commit addresses a custom segment; this is the reading we
        assume. None means not listed: the caller falls back to the ``custom_segment_id`` only
        if configured to. Read fresh, not from the catalog's cache: the segment may be new.

        The first page holding the name ends the search: the name is the connector's own
        (derived from one distribution, and unique among custom segments by Punchh's rule), so
        no later page can hold a second one worth an ambiguity, and proving the list's end
        would cost every send one more call. Two matches on one page are still refused.
        """
        seen: set[object] = set()
        for page in range(1, MAX_PAGES + 1):
            batch = self.client.list_page(
                "segments", query=name, page=page, per_page=self.per_page
            )
            fresh = [i for i in batch if i.get("segment_id") not in seen]
            ids: list[int] = sorted(
                {int(i["segment_id"]) for i in fresh
                 if i.get("name") == name and type(i.get("segment_id")) is int}
            )
            if len(ids) > 1:
                _ambiguous("segments", name, [f"segment_id {i}" for i in ids])
            if ids:
                return ids[0]
            if not fresh:
                return None
            seen.update(i.get("segment_id") for i in fresh)
        raise PunchhUnexpected(f"Punchh's segment list did not end within {MAX_PAGES} pages")

def _only(found: list[CustomSegment], name: str) -> CustomSegment | None:
    """The one match, None for none; two is an ambiguity the name rule should have prevented."""
    if len(found) > 1:
        ids = [f"custom_segment_id {s.custom_segment_id}" for s in found]
        _ambiguous("custom segments", name, ids)
    return found[0] if found else None


def _ambiguous(kind: str, name: str, ids: list[str]) -> NoReturn:
    """Raise NameAmbiguous naming each candidate's id."""
    described = tuple(f'"{name}" ({ident})' for ident in ids)
    raise NameAmbiguous(
        f'{len(ids)} Punchh {kind} are named "{name}": {", ".join(described)}',
        candidates=described,
    )
