"""SFMC Journey Builder's definition side: lifecycle bodies and the activity's saved choices.

Pure, like adapters/sfmc.py: the offer names and audience a marketer picked, and the
journey's ids; never a contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from adapters.common import Name, StartTime, audience_field
from adapters.sfmc import (
    EMAIL_ARGUMENT,
    UNRESOLVED,
    USER_ID_ARGUMENT,
    check_audience,
    merge_in_arguments,
    optional_text,
    present_only,
)
from adapters.types import RECIPIENTS_AUDIENCE, SEGMENT_AUDIENCE


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

    segment = Name(load_default=None)
    redeemable = Name(required=True)
    audience = audience_field("the journey's contacts (recipients) or a segment")
    guest_binding = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=500)
    )
    run_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    start_time = StartTime(load_default=None, allow_none=True)
    campaign_name = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=255)
    )
    activity_key = Name(load_default=None, allow_none=True)
    interaction_id = Name(load_default=None, allow_none=True)
    interaction_key = Name(load_default=None, allow_none=True)
    draft = fields.Boolean(load_default=False)

    @validates_schema
    def _one_audience(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_audience(data.get("audience"), data.get("segment"), "segment")
        if data.get("audience") == RECIPIENTS_AUDIENCE:
            problem = binding_problem(data.get("guest_binding"))
            if problem:
                raise ValidationError(problem, field_name="guest_binding")


def binding_problem(binding: str | None) -> str | None:
    """Why a guest-identifier binding cannot name each contact's guest, or None."""
    text = (binding or "").strip()
    if not text:
        return (
            "bind each contact's Punchh user id (or email): pick the data extension column "
            "that holds it"
        )
    if not UNRESOLVED.match(text):
        return (
            "the guest identifier must be a binding such as "
            "{{Contact.Attribute.Guests.punchh_user_id}}: a fixed value would name one guest "
            "for every contact"
        )
    return None


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
    #: SEGMENT_AUDIENCE, or RECIPIENTS_AUDIENCE (the journey's contacts are gifted).
    audience: str = SEGMENT_AUDIENCE
    #: Audience mode: the identifier inArgument's binding, when the body carried one.
    guest_binding: str | None = None

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
    #: SEGMENT_AUDIENCE, or RECIPIENTS_AUDIENCE: the journey's contacts are gifted.
    audience: str = SEGMENT_AUDIENCE
    #: Audience mode: the binding that names each contact's guest (never a value).
    guest_binding: str | None = None
    #: The journey was never saved, so the activity has no id yet (see connector/sfmc/activity.py).
    draft: bool = False


# Built once: constructing a schema deep-copies every declared field.
_LIFECYCLE = LifecycleSchema()
_ACTIVITY_CONFIG = ActivityConfigSchema()


def parse_lifecycle(body: Any) -> Lifecycle:
    """Validate a decoded lifecycle body; offer names come from arguments.execute.inArguments."""
    if not isinstance(body, dict):
        raise ValidationError({"_body": ["the decoded body must be a JSON object"]})
    data = _LIFECYCLE.load(body)
    segment = redeemable = binding = None
    audience = SEGMENT_AUDIENCE
    execute = (data["arguments"] or {}).get("execute")
    in_args = execute.get("inArguments") if isinstance(execute, dict) else None
    if isinstance(in_args, list) and in_args:
        merged = merge_in_arguments(in_args)
        seg, red = merged.get("punchh_segment"), merged.get("punchh_redeemable")
        # Only literal names count: a {{binding}} cannot be checked before a contact arrives.
        if isinstance(seg, str) and seg.strip() and not UNRESOLVED.match(seg.strip()):
            segment = seg.strip()
        if isinstance(red, str) and red.strip() and not UNRESOLVED.match(red.strip()):
            redeemable = red.strip()
        if merged.get("punchh_audience") == RECIPIENTS_AUDIENCE:
            audience = RECIPIENTS_AUDIENCE
            found = merged.get(USER_ID_ARGUMENT) or merged.get(EMAIL_ARGUMENT)
            binding = str(found)[:500] if found else ""
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
        audience=audience,
        guest_binding=binding,
    )


def parse_activity_config(body: Any) -> ActivityConfig:
    """Validate the UI's Done payload, or raise ValidationError."""
    if not isinstance(body, dict):
        raise ValidationError({"_body": ["the body must be a JSON object"]})
    data = _ACTIVITY_CONFIG.load(present_only(body))
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
        segment=data["segment"] or "",
        audience=data["audience"],
        guest_binding=optional_text(data["guest_binding"]),
        redeemable=data["redeemable"],
        run_id=optional_text(run_id),
        start_time=data["start_time"],
        campaign_name=optional_text(name),
        activity_key=data["activity_key"],
        interaction_id=data["interaction_id"],
        interaction_key=data["interaction_key"],
        draft=bool(data["draft"]),
    )
