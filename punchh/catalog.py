"""Punchh's segment and redeemable lists, cached briefly in Redis, and name → id resolution."""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

import redis

from punchh.client import ID_FIELDS, Kind, PunchhClient
from punchh.errors import (
    NameAmbiguous,
    NameNotFound,
    PunchhAmbiguous,
    PunchhAuthError,
    PunchhError,
    PunchhNotActed,
    PunchhRejected,
    PunchhUnexpected,
)

#: Longest a failed list call is remembered (never longer than LIST_CACHE_SECONDS): a burst of
#: test sends or picker calls asks Punchh once, and a recovered Punchh is asked again soon.
FAILED_LOOKUP_SECONDS = 15
#: The error a remembered failure is raised as, by the branch of the tree it came from.
_FAMILIES: dict[str, type[PunchhError]] = {
    "not_acted": PunchhNotActed,
    "rejected": PunchhRejected,
    "ambiguous": PunchhAmbiguous,
    "unexpected": PunchhUnexpected,
}

#: How alike (difflib's ratio) a name must be spelled to be offered as "did you mean".
CLOSE_LIKENESS = 0.75

NOUNS: dict[str, str] = {"segments": "segment", "redeemables": "redeemable"}


@dataclass(frozen=True)
class Resolution:
    """Punchh's ids for the marketer's names."""

    segment_id: int
    segment_name: str
    redeemable_uuid: str
    redeemable_name: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "segment": {"name": self.segment_name, "segment_id": self.segment_id},
            "redeemable": {"name": self.redeemable_name, "redeemable_uuid": self.redeemable_uuid},
        }


def exact_match(kind: str, items: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The one item named exactly `name` (case-sensitive first, then not); two is an error."""
    folded = name.casefold()
    for candidates in (
        [i for i in items if i.get("name") == name],
        [i for i in items if str(i.get("name", "")).casefold() == folded],
    ):
        unique = {str(i.get(ID_FIELDS[kind])): i for i in candidates}
        if len(unique) == 1:
            return next(iter(unique.values()))
        if len(unique) > 1:
            described = tuple(
                f'"{i.get("name")}" ({ID_FIELDS[kind]} {i.get(ID_FIELDS[kind])})'
                for i in unique.values()
            )
            raise NameAmbiguous(
                f'{len(unique)} Punchh {kind} are named "{name}": {", ".join(described)}; '
                f"rename one in Punchh so the name is unique",
                candidates=described,
            )
    return None


class Catalog:
    """Cached list lookups shared by the web tier and the workers."""

    def __init__(
        self,
        client: PunchhClient,
        cache: redis.Redis,
        *,
        prefix: str = "pc:",
        ttl_seconds: int = 60,
        per_page: int = 50,
        remember_failures: bool = False,
    ) -> None:
        self.client = client
        self.cache = cache
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.per_page = per_page
        #: How long a failed list call is answered from memory (0: never).
        self.failure_seconds = (
            min(ttl_seconds, FAILED_LOOKUP_SECONDS) if remember_failures else 0
        )

    def _cache_key(self, kind: str, query: str) -> str:
        digest = hashlib.sha1(query.encode(), usedforsecurity=False).hexdigest()[:16]
        return f"{self.prefix}c:{kind}:{digest}"

    def search(self, kind: Kind, query: str = "") -> list[dict[str, Any]]:
        """Every item matching Punchh's `query` search, from the cache when fresh."""
        key = self._cache_key(kind, query)
        if self.ttl_seconds > 0:
            cached = self.cache.get(key)
            if cached is not None:
                return cast(list[dict[str, Any]], json.loads(cached))
        if self.failure_seconds > 0:
            failed = self.cache.get(f"{key}:failed")
            if failed is not None:
                raise _remembered(failed)
        try:
            items = self.client.list_all(kind, query=query, per_page=self.per_page)
        except PunchhAuthError:
            raise  # the lockout holds every caller back; nothing to remember here
        except PunchhError as exc:
            if self.failure_seconds > 0:
                self._remember(f"{key}:failed", exc)
            raise
        if self.ttl_seconds > 0:
            self.cache.set(key, json.dumps(items), ex=self.ttl_seconds)
        return items

    def _remember(self, key: str, exc: PunchhError) -> None:
        """Keep a failed look-up briefly, so the next callers are answered without Punchh."""
        family = next((n for n, cls in _FAMILIES.items() if isinstance(exc, cls)), "unexpected")
        value = {"family": family, "message": exc.message, "status": exc.status, "at": time.time()}
        self.cache.set(key, json.dumps(value), ex=self.failure_seconds)

    def resolve(self, kind: Kind, name: str) -> dict[str, Any]:
        """The item named `name`, searching first, then the whole list (search is fuzzy)."""
        match = exact_match(kind, self.search(kind, name), name)
        if match is None:
            everything = self.search(kind, "")
            match = exact_match(kind, everything, name)
            if match is None:
                raise NameNotFound(
                    f'no Punchh {NOUNS[kind]} is named "{name}"' + _suggest(everything, name),
                    status=None,
                    codes=(f"unknown_{NOUNS[kind]}",),
                )
        return match

    def resolve_pair(self, segment: str, redeemable: str) -> Resolution:
        """Both ids a commit needs."""
        seg = self.resolve("segments", segment)
        red = self.resolve("redeemables", redeemable)
        return Resolution(
            segment_id=int(seg["segment_id"]),
            segment_name=str(seg.get("name", segment)),
            redeemable_uuid=str(red["redeemable_uuid"]),
            redeemable_name=str(red.get("name", redeemable)),
        )


def _remembered(raw: bytes | str) -> PunchhError:
    """The error a remembered failure is answered with, saying when Punchh said it."""
    value = json.loads(raw)
    when = time.strftime("%H:%M:%SZ", time.gmtime(float(value["at"])))
    message = f"{value['message']} (Punchh answered this at {when}; not asked again yet)"
    cls = _FAMILIES.get(str(value.get("family")), PunchhUnexpected)
    if cls is PunchhRejected:
        return PunchhRejected(message, status=value.get("status"))
    return cls(message, status=value.get("status"))


def _suggest(items: list[dict[str, Any]], name: str, limit: int = 10) -> str:
    """A hint naming every close match, most alike first, so a typo is obvious to the marketer.

    Close: spelled alike, or sharing a word with the name asked for, except words most names
    share ("Free", "Off"), which say nothing about which one was meant.
    """
    names = list(dict.fromkeys(str(i["name"]) for i in items if i.get("name")))
    folded = name.casefold()
    common = Counter(word for n in names for word in set(n.casefold().split()))
    words = [w for w in folded.split() if len(w) > 2 and common[w] <= max(1, len(names) // 4)]

    def likeness(candidate: str) -> float:
        return difflib.SequenceMatcher(None, folded, candidate.casefold()).ratio()

    def close_to(candidate: str) -> bool:
        folded_candidate = candidate.casefold()
        return likeness(candidate) >= CLOSE_LIKENESS or any(w in folded_candidate for w in words)

    close = sorted(filter(close_to, names), key=likeness, reverse=True)[:limit]
    return f" (did you mean: {', '.join(repr(c) for c in close)}?)" if close else ""
