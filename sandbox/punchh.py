"""Punchh's Headless Offers behaviour: paging, search, campaign validation and reply shapes.

Everything here follows shared/reference/punchh-api.md; where that file says [guess], the
choice made is named in a comment so the connector's tests know what they rely on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sandbox.state import JSON, Redeemable, Seed

UNAUTHORIZED: JSON = {"error": "You need to sign in or sign up before continuing."}
NO_PERMISSION: JSON = {"no_permission_error": "Insufficient Privileges to access this resource"}
USER_AGENT_REQUIRED: JSON = {
    "error": "User-Agent header is required (IntegratorName/IntegrationType/Version)."
}
# Punchh's docs cut this message short with "..."; the key (with its space) is what matters.
FEATURE_DISABLED: JSON = {
    "errors": {
        "disabled _feature": "Your current loyalty program configuration does not support "
        "this feature. ..."
    }
}
AFTER_EXPIRY = "Start time should be less than or equal to redeemable effective expiry time"

DEFAULT_PER_PAGE = 10
"""Page size when ``per_page`` is absent or unusable (undocumented: a guess)."""

MAX_PER_PAGE = 50
"""Larger ``per_page`` values are clamped to this (undocumented: a guess)."""

MIN_LEAD = timedelta(minutes=15)
"""Punchh refuses a campaign start time less than this far ahead of its now."""

REQUIRED_FIELDS = (
    "redeemable_uuid",
    "segment_id",
    "category",
    "campaign_type",
    "name",
    "start_time",
)
"""Required commit fields, in the order their absence is reported."""

START_TIME_FORMAT = "%Y-%m-%d %I:%M %p"
"""How the commit reply shows start_time, e.g. ``2021-09-14 06:44 PM``."""

# A full ISO 8601 date-time: date, "T", time (seconds optional), optional Z or offset.
# A space separator, AM/PM, a date alone or a time alone do not match.
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?"
)

T = TypeVar("T")


class ApiError(Exception):
    """A Punchh error reply: status and JSON body."""

    def __init__(self, status: int, body: JSON) -> None:
        """Keep the status and the exact body Punchh would send."""
        super().__init__(status, body)
        self.status = status
        self.body = body


def check_caller(user_agent: str, authorization: str, api_keys: Mapping[str, str]) -> None:
    """Raise the reply for a missing User-Agent, a bad key, or a key without permission.

    The User-Agent is checked first: Punchh rejects such requests before looking at the key.
    """
    if not user_agent.strip():
        raise ApiError(400, USER_AGENT_REQUIRED)
    scheme, _, key = authorization.strip().partition(" ")
    role = api_keys.get(key.strip()) if scheme.lower() == "bearer" else None
    if role is None:
        raise ApiError(401, UNAUTHORIZED)
    if role != "admin":
        # The status is undocumented; 403 is the natural reading of the message.
        raise ApiError(403, NO_PERMISSION)


def _positive_int(value: object) -> int | None:
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
    page = _positive_int(merged.get("page")) or 1
    per_page = min(_positive_int(merged.get("per_page")) or DEFAULT_PER_PAGE, max_per_page)
    return ("" if query is None else str(query)), page, per_page


def page_of(items: Sequence[T], page: int, per_page: int) -> list[T]:
    """One 1-based page of items; past the end it is empty."""
    start = (page - 1) * per_page
    return list(items[start : start + per_page])


def search(items: Iterable[T], query: str, *texts: str) -> list[T]:
    """Items where any named text attribute contains ``query``, case-insensitively."""
    needle = query.casefold()
    return [item for item in items if any(needle in getattr(item, t).casefold() for t in texts)]


def parse_start_time(value: object) -> datetime | None:
    """Parse an ISO 8601 date-time to aware UTC; no offset means UTC. None if not ISO."""
    if not isinstance(value, str) or not _ISO_DATETIME.fullmatch(value.strip()):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:  # shaped right but impossible, e.g. month 13
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _is_empty(value: object) -> bool:
    """Absent or empty, as Punchh's "missing or the value is empty" check sees it.

    A whitespace-only name is not empty here: it gets "Name can't be blank" later.
    """
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def _invalid(key: str, message: str) -> ApiError:
    """A 422 with the object form of ``errors``."""
    return ApiError(422, {"errors": {key: message}})


def _segment_id(value: object) -> int | None:
    """The segment id as an int, accepting a digit string the way Rails would."""
    return _positive_int(value)


@dataclass(frozen=True)
class ValidCampaign:
    """A commit body that passed every check."""

    start_time: datetime
    segment_id: int
    redeemable: Redeemable


def validate_campaign(body: JSON, seed: Seed, now: datetime) -> ValidCampaign:
    """Check a commit body in Punchh's order, raising the first error Punchh would answer."""
    for name in REQUIRED_FIELDS:
        if _is_empty(body.get(name)):
            raise ApiError(
                400, {"error": f"Required parameter missing or the value is empty: {name}"}
            )
    if body["category"] != "gift_redeemable":
        raise _invalid("invalid_category", "Invalid category.")
    if body["campaign_type"] != "mass_gifting":
        raise _invalid("invalid_campaign_type", "Invalid campaign type.")
    start_time = parse_start_time(body["start_time"])
    if start_time is None:
        raise _invalid("invalid_format", "Invalid Start Time format. Please use ISO8601")
    if start_time < now + MIN_LEAD:
        # Punchh's own sentence reads "at least 15 ahead"; the sandbox names the unit, so
        # nobody reading it locally has to guess (the key is Punchh's).
        raise _invalid(
            "invalid_start_time",
            "Campaign start time should be at least 15 minutes ahead from now.",
        )
    segment_id = _segment_id(body["segment_id"])
    if segment_id is None or seed.segment(segment_id) is None:
        raise _invalid("invalid_segment", "Invalid segment id.")
    uuid = body["redeemable_uuid"]
    redeemable = seed.redeemable(uuid) if isinstance(uuid, str) else None
    if redeemable is None:
        raise _invalid("invalid_redeemable", "Invalid redeemable uuid.")
    # From here on Punchh answers with the string form of "errors" (model validations).
    state = redeemable.state_at(now)
    if state != "active":
        raise ApiError(422, {"errors": f"Redeemable is {state}."})
    if redeemable.expires_at is not None and start_time > redeemable.expires_at:
        raise ApiError(422, {"errors": AFTER_EXPIRY})
    if not str(body["name"]).strip():
        raise ApiError(422, {"errors": "Name can't be blank"})
    return ValidCampaign(start_time=start_time, segment_id=segment_id, redeemable=redeemable)


def commit_reply(campaign_id: int, valid: ValidCampaign, body: JSON, seed: Seed) -> JSON:
    """The documented 200 body; start_time shown in the business's timezone."""
    return {
        "redeemable_id": valid.redeemable.redeemable_id,
        "redeemable_image_url": valid.redeemable.image_url,
        "redeemable_properties": valid.redeemable.properties,
        "campaign_id": campaign_id,
        "external_source_id": body.get("external_campaign_id"),
        "start_time": valid.start_time.astimezone(seed.timezone).strftime(START_TIME_FORMAT),
        "timezone": seed.timezone.key,
    }
