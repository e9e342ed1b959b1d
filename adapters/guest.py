"""A recipient's guest identifier for audience mode: read, checked, and never echoed."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError

from adapters.types import Guest

#: Punchh user ids are positive integers; 20 digits covers any 64-bit id.
_USER_ID = re.compile(r"^[1-9][0-9]{0,19}$")
#: Deliberately loose: Punchh decides whether an address is a guest (`invalid_identifiers`);
#: this only keeps obvious non-addresses and unrendered templates out of Redis.
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,189}$")
_TEMPLATE = re.compile(r"\{\{|\}\}|\{%|%\}|\$\{|_for_unsent_", re.IGNORECASE)


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def read_guest(user_id: Any, email: Any, *, user_field: str, email_field: str) -> Guest:
    """The recipient's identifier (the user id preferred, as Punchh does), or ValidationError.

    The messages name the field and what to bind to it, never the value that was sent.
    """
    uid, mail = _text(user_id), _text(email)
    if uid and not _TEMPLATE.search(uid):
        if not _USER_ID.match(uid):
            raise ValidationError(
                {user_field: ["must be the guest's Punchh user id, a whole number"]}
            )
        return Guest("user_id", uid)
    if mail and not _TEMPLATE.search(mail):
        if not _EMAIL.match(mail):
            raise ValidationError({email_field: ["must be the guest's email address"]})
        return Guest("email", mail.lower())
    raise ValidationError(
        {
            user_field: [
                f"gifting the send's recipients needs each recipient's Punchh user id in "
                f"{user_field} (or their email in {email_field}); this recipient had neither"
            ]
        }
    )


def guest_or_problem(
    user_id: Any, email: Any, *, user_field: str, email_field: str, refuse: bool
) -> tuple[Guest | None, str]:
    """The identifier; unless told to `refuse` (raise), None and what is wrong with it."""
    try:
        return read_guest(user_id, email, user_field=user_field, email_field=email_field), ""
    except ValidationError as exc:
        if refuse:
            raise
        messages: Any = exc.normalized_messages()  # type: ignore[no-untyped-call]
        return None, "; ".join(f"{k}: {' '.join(v)}" for k, v in messages.items())
