"""Salesforce Marketing Cloud Journey Builder: execute and lifecycle bodies → connector shapes.

Pure: no Flask, Redis or HTTP. The JWT has already been verified and decoded by the endpoint;
this module sees the claims. Guest data (`keyValue`, any contact field bound as an inArgument)
is never read into the result: the schemas exclude unknown keys and only name what we keep.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from adapters.common import Name, StartTime, clean_part, from_memo_key, memo_key
from adapters.types import GAP_RULE, MAX_PART_LENGTH, DistributionRequest

SOURCE = "sfmc"

#: An inArgument binding Journey Builder did not resolve, e.g. "{{Context.PublicationId}}".
_UNRESOLVED = re.compile(r"^\{\{.*\}\}$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _present(data: dict[str, Any]) -> dict[str, Any]:
    """Journey Builder sends "" for an unset or unbound inArgument: treat it as absent."""
    return {k: v for k, v in data.items() if v is not None and not _blank(v)}


def _blank(value: Any) -> bool:
    """Whitespace-only text."""
    return isinstance(value, str) and not value.strip()


def _optional_text(value: str | None) -> str | None:
    """Trimmed text, or None when nothing is left."""
    text = value.strip() if value else ""
    return text or None


class RunId(fields.Field[str]):
    """A run id bound by the marketer: text or a number (data-extension columns may be either)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError("must be text or a whole number")
        text = clean_part(str(value))
        if _UNRESOLVED.match(text):
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

    punchh_segment = Name(required=True, metadata={"description": "Punchh segment name"})
    punchh_redeemable = Name(required=True, metadata={"description": "Punchh redeemable name"})
    run_id = RunId(load_default=None, allow_none=True)
    start_time = StartTime(load_default=None, allow_none=True)
    punchh_campaign_name = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=255)
    )
    punchh_test = fields.Boolean(load_default=False, allow_none=True)


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


class LifecycleSchema(Schema):
    """A save / validate / publish / stop body; every field optional (the shape is 'seen')."""

    class Meta:
        unknown = EXCLUDE

    activity_object_id = Name(data_key="activityObjectID", load_default=None)
    interaction_id = Name(data_key="interactionId", load_default=None)
    interaction_key = Name(data_key="interactionKey", load_default=None)
    original_definition_id = Name(data_key="originalDefinitionId", load_default=None)
    interaction_version = fields.Raw(data_key="interactionVersion", load_default=None)
    is_published = fields.Raw(data_key="isPublished", load_default=None)
    arguments = fields.Dict(load_default=None, allow_none=True)


class ActivityConfigSchema(Schema):
    """What the configuration UI stores on Done, so `validate` has something to check."""

    class Meta:
        unknown = EXCLUDE

    segment = Name(required=True)
    redeemable = Name(required=True)
    run_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    start_time = StartTime(load_default=None, allow_none=True)
    campaign_name = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=255)
    )
    activity_key = Name(load_default=None, allow_none=True)
    interaction_id = Name(load_default=None, allow_none=True)
    interaction_key = Name(load_default=None, allow_none=True)
    draft = fields.Boolean(load_default=False)


@dataclass(frozen=True)
class Execute:
    """One execute call: the request for the intake, and whether it is validation-only."""

    request: DistributionRequest
    test: bool


@dataclass(frozen=True)
class Lifecycle:
    """A lifecycle call's non-guest facts, and the offer names when the body carried them."""

    activity_object_id: str | None
    interaction_id: str | None
    interaction_key: str | None
    original_definition_id: str | None
    interaction_version: str | None
    is_published: bool
    segment: str | None
    redeemable: str | None

    def record_fields(self) -> dict[str, str]:
        """The fields worth keeping on the activity's record (none is guest data)."""
        out = {
            "interaction_id": self.interaction_id,
            "interaction_key": self.interaction_key,
            "original_definition_id": self.original_definition_id,
            "interaction_version": self.interaction_version,
        }
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class ActivityConfig:
    """The offer a marketer picked in the UI for one activity."""

    segment: str
    redeemable: str
    run_id: str | None
    start_time: datetime | None
    campaign_name: str | None
    activity_key: str | None
    interaction_id: str | None
    interaction_key: str | None
    #: The journey was never saved, so the activity has no id yet (see connector/sfmc/activity.py).
    draft: bool = False


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
_LIFECYCLE = LifecycleSchema()
_ACTIVITY_CONFIG = ActivityConfigSchema()
#: The execute fields the memoised part reads; `definitionInstanceId` (one per contact) and
#: guest fields are handled outside it.
_EXECUTE_IDS = ("journeyId", "activityId", "activityObjectID")
_ARGUMENT_NAMES = tuple(_IN_ARGUMENTS.fields)
#: Journey runs in flight at once per process that parse without touching marshmallow again.
MEMO_SIZE = 256


def load_in_arguments(items: Any) -> dict[str, Any]:
    """Merge and validate the inArguments; blank strings count as absent."""
    merged = _present(merge_in_arguments(items))
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
    if instance and instance.strip() and parsed.activity_id:
        token = replay_token(parsed.activity_id, instance.strip())
        return Execute(replace(parsed.execute.request, replay_token=token), parsed.execute.test)
    return parsed.execute


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
    # A run id that renders blank for one contact is absent (see `_present`): that contact
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
        segment=args["punchh_segment"],
        redeemable=args["punchh_redeemable"],
        start_time=args["start_time"],
        campaign_name=_optional_text(campaign_name),
    )
    return _Parsed(Execute(request=request, test=bool(args["punchh_test"])), activity_id)


def to_request(body: Any) -> DistributionRequest:
    """The DistributionRequest of one execute call (see `parse_execute`)."""
    return parse_execute(body).request


def parse_lifecycle(body: Any) -> Lifecycle:
    """Validate a decoded lifecycle body; offer names come from arguments.execute.inArguments."""
    if not isinstance(body, dict):
        raise ValidationError({"_body": ["the decoded body must be a JSON object"]})
    data = _LIFECYCLE.load(body)
    segment = redeemable = None
    execute = (data["arguments"] or {}).get("execute")
    in_args = execute.get("inArguments") if isinstance(execute, dict) else None
    if isinstance(in_args, list) and in_args:
        merged = merge_in_arguments(in_args)
        seg, red = merged.get("punchh_segment"), merged.get("punchh_redeemable")
        # Only literal names count: a {{binding}} cannot be checked before a contact arrives.
        if isinstance(seg, str) and seg.strip() and not _UNRESOLVED.match(seg.strip()):
            segment = seg.strip()
        if isinstance(red, str) and red.strip() and not _UNRESOLVED.match(red.strip()):
            redeemable = red.strip()
    version = data["interaction_version"]
    published = data["is_published"]
    return Lifecycle(
        activity_object_id=data["activity_object_id"],
        interaction_id=data["interaction_id"],
        interaction_key=data["interaction_key"],
        original_definition_id=data["original_definition_id"],
        interaction_version=str(version)[:50] if version is not None else None,
        is_published=published is True or str(published).lower() == "true",
        segment=segment,
        redeemable=redeemable,
    )


def parse_activity_config(body: Any) -> ActivityConfig:
    """Validate the UI's Done payload, or raise ValidationError."""
    if not isinstance(body, dict):
        raise ValidationError({"_body": ["the body must be a JSON object"]})
    data = _ACTIVITY_CONFIG.load(_present(body))
    if data["draft"]:
        problems: dict[str, list[str]] = {}
        if not data["activity_key"]:
            problems["activity_key"] = ["a draft needs the activity's key"]
        if not (data["interaction_key"] or data["interaction_id"]):
            problems["interaction_key"] = [
                "a draft needs the journey's key or id: save the journey, then click Done again"
            ]
        if problems:
            raise ValidationError(problems)
    run_id: str | None = data["run_id"]
    name: str | None = data["campaign_name"]
    return ActivityConfig(
        segment=data["segment"],
        redeemable=data["redeemable"],
        run_id=_optional_text(run_id),
        start_time=data["start_time"],
        campaign_name=_optional_text(name),
        activity_key=data["activity_key"],
        interaction_id=data["interaction_id"],
        interaction_key=data["interaction_key"],
        draft=bool(data["draft"]),
    )
