"""Reading Punchh's parameters the way Rails does: ids, and the list endpoints' paging and search.

Where shared/reference/punchh-api.md says [guess], the choice made is named in a comment so
the connector's tests know what they rely on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

DEFAULT_PER_PAGE = 10
"""Page size when ``per_page`` is absent or unusable (undocumented: a guess)."""

MAX_PER_PAGE = 50
"""Larger ``per_page`` values are clamped to this (undocumented: a guess)."""

T = TypeVar("T")


def positive_int(value: object) -> int | None:
    """An int >= 1 from an int or a digit string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 1 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number >= 1 else None
    return None


def list_params(
    args: Mapping[str, str], body: object, max_per_page: int = MAX_PER_PAGE
) -> tuple[str, int, int]:
    """Read ``query``, ``page`` and ``per_page`` from the query string or a JSON body.

    Like Rails' params, a query-string value wins over the same key in the body. A bad
    ``page`` means page 1 and a bad ``per_page`` the default (undocumented: a guess).
    ``per_page`` above ``max_per_page`` is cut to it without a word, as a capped API would.
    """
    merged: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    merged.update(args)
    query = merged.get("query")
    page = positive_int(merged.get("page")) or 1
    per_page = min(positive_int(merged.get("per_page")) or DEFAULT_PER_PAGE, max_per_page)
    return ("" if query is None else str(query)), page, per_page


def page_of(items: Sequence[T], page: int, per_page: int) -> list[T]:
    """One 1-based page of items; past the end it is empty."""
    start = (page - 1) * per_page
    return list(items[start : start + per_page])


def search(items: Iterable[T], query: str, *texts: str) -> list[T]:
    """Items where any named text attribute contains ``query``, case-insensitively."""
    needle = query.casefold()
    return [item for item in items if any(needle in getattr(item, t).casefold() for t in texts)]
