"""Pieces every adapter shares: field types and time parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields, validate

from adapters.types import AUDIENCES, MAX_PART_LENGTH, RECIPIENTS_AUDIENCE, SEGMENT_AUDIENCE

#: A campaign ref or send key: printable, no whitespace at the ends, bounded.
_PART = re.compile(r"^[^\x00-\x1f\x7f]+$")


class Name(fields.String):
    """A Punchh or marketing-cloud name: trimmed, non-empty, bounded, printable."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Length(min=1, max=MAX_PART_LENGTH))
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise ValidationError("must not be empty")
        if not _PART.match(text):
            raise ValidationError("must not contain control characters")
        return text


class StartTime(fields.Field[datetime]):
    """ISO 8601 date-time; a value without an offset is taken as UTC."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        return parse_start_time(value)


def parse_start_time(value: Any) -> datetime:
    """Parse an ISO 8601 date-time into an aware UTC datetime, or raise ValidationError."""
    if not isinstance(value, str) or "T" not in value.upper():
        raise ValidationError("must be an ISO 8601 date-time such as 2026-11-25T18:30:00Z")
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError("must be an ISO 8601 date-time such as 2026-11-25T18:30:00Z") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def clean_part(value: str) -> str:
    """Trim a campaign ref or send key; a colon-free form keeps ids unambiguous to read."""
    return value.strip()


#: Marks a field the body did not carry (distinct from an explicit null).
_ABSENT = ("absent",)


def memo_key(data: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The values of `names` (with their types) as a hashable key, or None when one is not.

    Every recipient of one send carries the same values in the fields an adapter reads, so
    parsing can be memoised on them; guest fields are not part of the key.
    """
    key = tuple(
        (type(value), value) for value in (data.get(name, _ABSENT) for name in names)
    )
    try:
        hash(key)
    except TypeError:
        return None
    return key


def from_memo_key(names: tuple[str, ...], key: tuple[Any, ...]) -> dict[str, Any]:
    """The body a memo key was made from (only the named fields)."""
    pairs = zip(names, key, strict=True)
    return {name: value for name, (_, value) in pairs if value is not _ABSENT}


def audience_field(description: str, **kwargs: Any) -> fields.String:
    """Who is gifted: "segment" (the default) or "recipients" (audience mode)."""
    return fields.String(
        load_default=SEGMENT_AUDIENCE,
        validate=validate.OneOf(AUDIENCES),
        metadata={"description": description},
        **kwargs,
    )


def one_audience(
    audience: str | None, segment: str | None, *, field_name: str, recipients: str
) -> None:
    """A Punchh segment to gift, or the send's recipients: exactly one of the two.

    `recipients` says how this platform's marketer asks for the send's recipients.
    """
    if audience == RECIPIENTS_AUDIENCE and segment:
        raise ValidationError(
            f"choose one audience: a Punchh segment, or {recipients}, not both",
            field_name=field_name,
        )
    if audience != RECIPIENTS_AUDIENCE and not segment:
        raise ValidationError(
            f"name the Punchh segment to gift, or {recipients}", field_name=field_name
        )
