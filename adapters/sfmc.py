"""Salesforce Marketing Cloud Journey Builder: execute and lifecycle bodies → connector shapes.

Pure: no Flask, Redis or HTTP. The JWT has already been verified and decoded by the endpoint;
this module sees the claims. Guest data (`keyValue`, any contact field bound as an inArgument)
is never read into the result: the schemas exclude unknown keys and only name what we keep.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from adapters.common import (
    Name,
    StartTime,
    audience_field,
    clean_part,
    from_memo_key,
    memo_key,
    one_audience,
)
from adapters.guest import guest_or_problem
from adapters.types import (
    GAP_RULE,
    MAX_PART_LENGTH,
    DistributionRequest,
    Guest,
)

SOURCE = "sfmc"

#: An inArgument binding Journey Builder did not resolve, e.g. "{{Context.PublicationId}}".
UNRESOLVED = re.compile(r"^\{\{.*\}\}$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def present_only(data: dict[str, Any]) -> dict[str, Any]:
    """Journey Builder sends "" for an unset or unbound inArgument: treat it as absent."""
    return {k: v for k, v in data.items() if v is not None and not _blank(v)}


def _blank(value: Any) -> bool:
    """Whitespace-only text."""
    return isinstance(value, str) and not value.strip()


def optional_text(value: str | None) -> str | None:
    """Trimmed text, or None when nothing is left."""
    text = value.strip() if value else ""
    return text or None


class RunId(fields.Field[str]):
    """A run id bound by the marketer: text or a number (data-extension columns may be either)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError("must be text or a whole number")
        text = clean_part(str(value))
        if UNRESOLVED.match(text):
            raise ValidationError(
                "is an unresolved binding: Journey Builder sent the template text itself"
            )
        if len(text) > MAX_PART_LENGTH:
            raise ValidationError(f"must be at most {MAX_PART_LENGTH} characters")
        if _CONTROL.search(text):
            raise ValidationError("must not contain control characters")
        return text


class InArgumentsSchema(Schema):
    """The activity's inArguments, merged into one object; anything else (guest data) dropped."""

    class Meta:
        unknown = EXCLUDE

    punchh_segment = Name(load_default=None, metadata={"description": "Punchh segment name"})
    punchh_redeemable = Name(required=True, metadata={"description": "Punchh redeemable name"})
    punchh_audience = audience_field("the journey's contacts (recipients) or a segment")
    run_id = RunId(load_default=None, allow_none=True)
    start_time = StartTime(load_default=None, allow_none=True)
    punchh_campaign_name = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=255)
    )
    punchh_test = fields.Boolean(load_default=False, allow_none=True)

    @validates_schema
    def _one_audience(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_audience(data.get("punchh_audience"), data.get("punchh_segment"), "punchh_segment")


def check_audience(audience: str | None, segment: str | None, field_name: str) -> None:
    """A segment to gift, or the journey's contacts: exactly one of the two."""
    one_audience(
        audience, segment, field_name=field_name,
        recipients="choose to gift the contacts of this journey",
    )


class ExecuteSchema(Schema):
    """The decoded execute body: ids of the activity and of this contact's pass, inArguments."""

    class Meta:
        unknown = EXCLUDE

    in_arguments = fields.List(
        fields.Dict(keys=fields.String()), data_key="inArguments", required=True
    )
    journey_id = Name(data_key="journeyId", required=True)
    activity_id = Name(data_key="activityId", load_default=None)
    activity_object_id = Name(data_key="activityObjectID", load_default=None)
    definition_instance_id = fields.String(
        data_key="definitionInstanceId",
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=MAX_PART_LENGTH),
    )


@dataclass(frozen=True)
class Execute:
    """One execute call: the request for the intake, and whether it is validation-only."""

    request: DistributionRequest
    test: bool
    #: Audience mode: this contact's identifier (never stored beyond its batch).
    guest: Guest | None = None
    #: Audience-mode test without a usable identifier: what a real contact would be refused.
    guest_problem: str = ""


def merge_in_arguments(items: Any) -> dict[str, Any]:
    """inArguments is a list of objects; merge them into one, later objects winning."""
    if not isinstance(items, list):
        raise ValidationError({"inArguments": ["must be a list of objects"]})
    merged: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ValidationError({"inArguments": ["must be a list of objects"]})
        merged.update(item)
    return merged


def replay_token(activity_id: str, definition_instance_id: str) -> str:
    """Names one contact's pass through one activity without naming the contact."""
    raw = f"{activity_id}:{definition_instance_id}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _prefixed(exc: ValidationError, prefix: str) -> ValidationError:
    """Re-raise field errors as `inArguments.<name>` so the marketer sees where to look."""
    messages: Any = exc.normalized_messages()  # type: ignore[no-untyped-call]
    return ValidationError({f"{prefix}.{name}": problem for name, problem in messages.items()})


# Built once: constructing a schema deep-copies every declared field, a cost per request
# that bench/profile_intake.py measures.
_IN_ARGUMENTS = InArgumentsSchema()
_EXECUTE = ExecuteSchema()
#: The execute fields the memoised part reads; `definitionInstanceId` (one per contact) and
#: guest fields are handled outside it.
_EXECUTE_IDS = ("journeyId", "activityId", "activityObjectID")
_ARGUMENT_NAMES = tuple(_IN_ARGUMENTS.fields)
#: Journey runs in flight at once per process that parse without touching marshmallow again.
MEMO_SIZE = 256


def load_in_arguments(items: Any) -> dict[str, Any]:
    """Merge and validate the inArguments; blank strings count as absent."""
    merged = present_only(merge_in_arguments(items))
    try:
        loaded: dict[str, Any] = _IN_ARGUMENTS.load(merged)
        return loaded
    except ValidationError as exc:
        raise _prefixed(exc, "inArguments") from exc


def parse_execute(body: Any) -> Execute:
    """Validate a decoded execute body into a DistributionRequest, or raise ValidationError.

    Pure, so everything but the per-contact replay token is memoised on the fields it reads:
    every contact of one run carries the same ones.
    """
    if not isinstance(body, dict):
        raise ValidationError({"_body": ["the decoded body must be a JSON object"]})
    instance = body.get("definitionInstanceId")
    if instance is not None and (
        not isinstance(instance, str) or len(instance) > MAX_PART_LENGTH
    ):
        raise ValidationError(
            {"definitionInstanceId": [f"must be text of at most {MAX_PART_LENGTH} characters"]}
        )
    in_arguments = body.get("inArguments")
    ids_key = memo_key(body, _EXECUTE_IDS)
    args_key = (
        memo_key(merge_in_arguments(in_arguments), _ARGUMENT_NAMES)
        if isinstance(in_arguments, list) and all(isinstance(i, dict) for i in in_arguments)
        else None
    )
    if ids_key is None or args_key is None:
        parsed = _parse_execute(body)
    else:
        parsed = _parse_execute_memo(ids_key, args_key)
    execute = parsed.execute
    if instance and instance.strip() and parsed.activity_id:
        token = replay_token(parsed.activity_id, instance.strip())
        execute = replace(execute, request=replace(execute.request, replay_token=token))
    if execute.request.gifts_recipients:
        return with_guest(execute, merge_in_arguments(in_arguments))
    return execute


#: Audience mode's guest inArguments: read outside the schema (and its memo), one contact at
#: a time, bound by the marketer to data-extension columns.
USER_ID_ARGUMENT = "punchh_user_id"
EMAIL_ARGUMENT = "email"


def with_guest(execute: Execute, merged: dict[str, Any]) -> Execute:
    """Add the contact's identifier, or say what is wrong with it.

    Never refused: any answer but a 200 ejects the contact from the journey, so a contact
    without a usable identifier is counted as missing on its send instead (and a test told).
    """
    guest, problem = guest_or_problem(
        merged.get(USER_ID_ARGUMENT),
        merged.get(EMAIL_ARGUMENT),
        user_field=f"inArguments.{USER_ID_ARGUMENT}",
        email_field=f"inArguments.{EMAIL_ARGUMENT}",
        refuse=False,
    )
    return replace(execute, guest=guest, guest_problem=problem)


@dataclass(frozen=True)
class _Parsed:
    execute: Execute
    activity_id: str


@lru_cache(maxsize=MEMO_SIZE)
def _parse_execute_memo(ids_key: tuple[Any, ...], args_key: tuple[Any, ...]) -> _Parsed:
    body = from_memo_key(_EXECUTE_IDS, ids_key)
    body["inArguments"] = [from_memo_key(_ARGUMENT_NAMES, args_key)]
    return _parse_execute(body)


def _parse_execute(body: dict[str, Any]) -> _Parsed:
    ids = _EXECUTE.load(body)
    activity_id: str | None = ids["activity_id"] or ids["activity_object_id"]
    if not activity_id:
        raise ValidationError({"activityId": ["Missing data for required field."]})
    args = load_in_arguments(ids["in_arguments"])
    # A run id that renders blank for one contact is absent (see `present_only`): that contact
    # follows the activity's open send, which is the bound run's send while it is going on,
    # rather than becoming a send of its own (docs/send-identity.md).
    run_id: str | None = args["run_id"]
    send_key, key_rule = (run_id, "run_id") if run_id else ("", GAP_RULE)
    campaign_name: str | None = args["punchh_campaign_name"]
    request = DistributionRequest(
        source=SOURCE,
        campaign_ref=f"{ids['journey_id']}:{activity_id}",
        send_key=send_key,
        key_rule=key_rule,
        segment=args["punchh_segment"] or "",
        redeemable=args["punchh_redeemable"],
        start_time=args["start_time"],
        campaign_name=optional_text(campaign_name),
        audience=args["punchh_audience"],
    )
    return _Parsed(Execute(request=request, test=bool(args["punchh_test"])), activity_id)


def to_request(body: Any) -> DistributionRequest:
    """The DistributionRequest of one execute call (see `parse_execute`)."""
    return parse_execute(body).request
