"""Hypothesis strategies the adapter tests share: any JSON, usable names, marked guest data."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: Every guest value the strategies make carries this, and nothing else does: if it shows in a
#: DistributionRequest, guest data got through.
GUEST_MARK = "guest\u2042"

#: Any value JSON can carry, nested a little.
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)

#: A name or id the adapters accept: printable, not blank, never carrying the guest mark.
NAME: st.SearchStrategy[str] = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2042"),
    min_size=1,
    max_size=40,
).filter(lambda s: bool(s.strip()) and "{" not in s and "}" not in s and "%" not in s)

#: Keys guests' data comes under on these platforms (and keys nobody has thought of).
GUEST_KEYS = st.sampled_from(
    ["email", "emailAddress", "user_id", "external_id", "first_name", "phone", "keyValue",
     "ContactKey", "punchh_user_id", "attributes"]
) | st.text(min_size=1, max_size=12)

#: A guest value: text, a number or nested data, all carrying the mark.
GUEST_VALUE: st.SearchStrategy[Any] = st.builds(
    lambda s: f"{GUEST_MARK}{s}", st.text(max_size=20)
) | st.builds(lambda s: {"value": f"{GUEST_MARK}{s}"}, st.text(max_size=10)) | st.builds(
    lambda s: [f"{GUEST_MARK}{s}"], st.text(max_size=10)
)


def guest_fields(reserved: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Guest fields under keys the adapter does not read (those in `reserved` are left out)."""
    return st.dictionaries(
        GUEST_KEYS.filter(lambda k: k not in reserved), GUEST_VALUE, min_size=1, max_size=5
    )
