"""`/sfmc`: the Salesforce Marketing Cloud Journey Builder custom activity "Punchh Offer".

- `GET /sfmc/config.json`: the activity's definition, with HTTPS urls built from the request.
- `GET /sfmc/` (and `/sfmc/index.html`) with `/sfmc/assets/…`: the configuration UI.
- `POST /sfmc/{save,validate,publish,stop}`: lifecycle calls (JWT bodies).
- `POST /sfmc/execute`: once per contact (JWT body); always 200 unless the JWT is bad (401),
  the inArguments are unusable (400) or Redis is down (503): any non-200 ejects the contact.
- `/sfmc/api/…`: the UI's own calls, authorised by the marketer's Marketing Cloud token.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from marshmallow import ValidationError

from adapters import sfmc as adapter
from adapters.types import DistributionRequest
from connector.api import punchh_list
from connector.bodies import field_errors, json_body, json_response
from connector.errors import punchh_refusal
from connector.sfmc_activity import ActivityStore
from connector.sfmc_jwt import decode_body
from connector.sfmc_token import require_marketer
from ledger.intake import submit
from ledger.states import IntakeResult, State
from punchh.catalog import Resolution
from punchh.errors import PunchhAuthError, PunchhError, PunchhRejected
from wiring.errors import ApiError, BadRequest, InvalidFields, PunchhUnavailable, Unprocessable
from wiring.services import current_services as services

log = logging.getLogger("connector.sfmc")

bp = Blueprint(
    "sfmc",
    __name__,
    url_prefix="/sfmc",
    static_folder="static/sfmc",
    static_url_path="/assets",
)

#: Marketing Cloud's hosts may frame the UI; nobody else may (see docs/sfmc.md).
FRAME_ANCESTORS = (
    "frame-ancestors 'self' https://*.exacttarget.com https://*.marketingcloudapps.com "
    "https://*.salesforce.com"
)
#: The UI page loads only its own files and calls only the connector.
UI_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; " + FRAME_ANCESTORS
)
#: Hosts for which config.json keeps the request's own scheme (local development only).
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})

#: Execute settings, documented in docs/sfmc.md. The answer takes one Redis round trip, so
#: 10 s is generous; JB retries only on network errors, timeouts and 5xx (our 503 when Redis
#: is down), and a retry is harmless because the replay token counts it once.
EXECUTE_TIMEOUT_MS = 10_000
EXECUTE_RETRY_COUNT = 2
EXECUTE_RETRY_DELAY_MS = 1_000
#: Parallel execute calls per activity: at ~30 ms an answer, 10 at a time is about a million
#: contacts an hour, yet well inside what two gunicorn workers with 8 threads each can serve.
EXECUTE_CONCURRENT_REQUESTS = 10

#: Ledger states worth reporting to the journey as they are (others read accepted/counted).
_REPORTED_STATES = frozenset(
    {State.HELD, State.REJECTED, State.FAILED, State.UNKNOWN, State.CANCELLED}
)


def activities() -> ActivityStore:
    """Activity records in the app's Redis."""
    svc = services()
    return ActivityStore(svc.redis, svc.settings.key_prefix)


@bp.after_request
def _frameable(response: Response) -> Response:
    """Journey Builder frames the UI: allow Marketing Cloud, never send X-Frame-Options."""
    response.headers.pop("X-Frame-Options", None)
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = UI_POLICY
        response.headers["Cache-Control"] = "no-cache"
    else:
        response.headers.setdefault("Content-Security-Policy", FRAME_ANCESTORS)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- the activity's definition and UI -----------------------------------------------------


def base_url() -> str:
    """This blueprint's absolute URL; HTTPS except on a local host (JB requires HTTPS)."""
    host = request.host
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    scheme = request.scheme if hostname.lower() in LOCAL_HOSTS else "https"
    return f"{scheme}://{host}{request.script_root}{bp.url_prefix}"


def _argument_schema(direction: str, names: dict[str, bool]) -> list[dict[str, Any]]:
    """schema.arguments entries: each name with its type, nullability and direction."""
    return [
        {name: {"dataType": "Text", "isNullable": nullable, "direction": direction,
                "access": "visible"}}
        for name, nullable in names.items()
    ]


def activity_config(base: str) -> dict[str, Any]:
    """The custom activity's config.json for a connector reachable at `base`."""

    def lifecycle(name: str) -> dict[str, Any]:
        return {"url": f"{base}/{name}", "verb": "POST", "useJwt": True}

    return {
        "workflowApiVersion": "1.1",
        "key": "punchh-offer",
        "type": "REST",
        "metaData": {
            "icon": f"{base}/assets/icon.png",
            "iconSmall": f"{base}/assets/icon-small.png",
            "category": "message",
            "isConfigured": False,
            "configOnDrop": True,
        },
        "lang": {
            "en-US": {
                "name": "Punchh Offer",
                "description": "Gift a Punchh redeemable to a Punchh segment, once per run.",
            }
        },
        "arguments": {
            "execute": {
                "inArguments": [],
                "outArguments": [],
                "url": f"{base}/execute",
                "verb": "POST",
                "format": "json",
                "useJwt": True,
                "timeout": EXECUTE_TIMEOUT_MS,
                "retryCount": EXECUTE_RETRY_COUNT,
                "retryDelay": EXECUTE_RETRY_DELAY_MS,
                "concurrentRequests": EXECUTE_CONCURRENT_REQUESTS,
            }
        },
        "configurationArguments": {
            name: lifecycle(name) for name in ("save", "publish", "validate", "stop")
        },
        "wizardSteps": [{"label": "Choose the offer", "key": "offer"}],
        "userInterfaces": {
            "configModal": {"height": 640, "width": 760, "fullscreen": False},
        },
        "schema": {
            "arguments": {
                "execute": {
                    "inArguments": _argument_schema(
                        "in",
                        {
                            "punchh_segment": False,
                            "punchh_redeemable": False,
                            "run_id": True,
                            "start_time": True,
                            "punchh_campaign_name": True,
                        },
                    ),
                    "outArguments": _argument_schema(
                        "out", {"punchh_distribution_id": True, "punchh_status": True}
                    ),
                }
            }
        },
    }


@bp.get("/config.json")
def config_json() -> Response:
    """The activity's definition, pointing back at this host."""
    response = jsonify(activity_config(base_url()))
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/")
@bp.get("/index.html")
def ui() -> Response:
    """The configuration UI Journey Builder frames."""
    return bp.send_static_file("index.html")


# --- JWT-signed calls from Journey Builder ------------------------------------------------


def signed_body() -> dict[str, Any]:
    """The verified, decoded body of a Journey Builder call (401 otherwise)."""
    settings = services().settings
    return decode_body(
        request.get_data(cache=False),
        request.mimetype or "",
        settings.sfmc_jwt_secrets,
        allow_plain_json=settings.sfmc_allow_plain_json,
    )


def lifecycle_call(event: str) -> tuple[adapter.Lifecycle, dict[str, str]]:
    """Verify, parse and record one lifecycle call; returns it and the activity's record."""
    claims = signed_body()
    try:
        life = adapter.parse_lifecycle(claims)
    except ValidationError as exc:
        raise field_errors(exc) from exc
    record = activities().record_event(event, life)
    log.info(
        "sfmc lifecycle",
        extra={
            "event": event,
            "activity_id": life.activity_object_id,
            "interaction_id": life.interaction_id,
            "interaction_version": life.interaction_version,
        },
    )
    return life, record


@bp.post("/save")
def save() -> Response:
    """Journey saved: note it (and adopt a draft offer)."""
    lifecycle_call("save")
    return jsonify({})


@bp.post("/publish")
def publish() -> Response:
    """Journey activated: note it."""
    lifecycle_call("publish")
    return jsonify({})


@bp.post("/stop")
def stop() -> Response:
    """Journey version stopped: the activity's record says so (see docs/sfmc.md)."""
    lifecycle_call("stop")
    return jsonify({})


@bp.post("/validate")
def validate_activity() -> Response:
    """Refuse activation unless the configured segment and redeemable resolve in Punchh."""
    life, record = lifecycle_call("validate")
    segment, redeemable = record.get("segment"), record.get("redeemable")
    if life.segment and life.redeemable:
        segment, redeemable = life.segment, life.redeemable
    try:
        if not (segment and redeemable):
            drafts = activities().drafts_count(life)
            hint = (
                f"{drafts} Punchh Offer activities in this journey were set up before it was "
                "first saved: open each one and click Done again"
                if drafts > 1
                else "open the Punchh Offer activity, pick a segment and a redeemable, "
                "and click Done"
            )
            raise BadRequest(f"no Punchh offer is configured yet: {hint}", code="not_configured")
        resolution = resolve_or_refuse(segment, redeemable, invalid=BadRequest)
    except ApiError as exc:
        if life.activity_object_id:
            # Kept on the record so an operator can see why activation was refused.
            activities().update(
                life.activity_object_id,
                {"validated": "refused", "validation_error": exc.message[:500]},
            )
        log.info(
            "sfmc validate refused",
            extra={"activity_id": life.activity_object_id, "code": exc.code},
        )
        raise
    if life.activity_object_id:
        activities().update(
            life.activity_object_id,
            {
                "validated": "ok",
                "validation_error": "",
                "segment_id": str(resolution.segment_id),
                "redeemable_uuid": resolution.redeemable_uuid,
            },
        )
    return jsonify({})


def resolve_or_refuse(segment: str, redeemable: str, *, invalid: type[ApiError]) -> Resolution:
    """Both Punchh ids, or an ApiError the marketer can act on (`invalid`: the offer is wrong)."""
    try:
        return services().catalog.resolve_pair(segment, redeemable)
    except PunchhError as exc:
        raise punchh_refusal(
            exc,
            rejected=lambda e: invalid(f"Punchh Offer: {e.message}", code="invalid_configuration"),
            unavailable=_offer_unchecked,
        ) from exc


def _offer_unchecked(exc: PunchhError) -> ApiError:
    """Punchh could not be asked about the offer: ask again in a minute."""
    return PunchhUnavailable(
        "Punchh could not be reached to check the offer; try again in a minute",
        headers={"Retry-After": "30"},
    )


@bp.post("/execute")
def execute() -> Response:
    """One contact reached the activity: count it into its run's distribution."""
    g.source = adapter.SOURCE  # for the access log and the refusal counters
    claims = signed_body()
    try:
        parsed = adapter.parse_execute(claims)
    except ValidationError as exc:
        error = field_errors(exc)
        # Field names only: the values may be contact data bound by the marketer.
        log.warning("sfmc execute refused", extra={"fields": sorted(error.fields or {})})
        raise error from exc
    req = parsed.request
    if parsed.test:
        g.outcome = "test"
        return jsonify(
            {"punchh_distribution_id": req.distribution_id, "punchh_status": test_status(req)}
        )
    result = submit(services(), req)
    g.distribution_id = result.distribution_id
    g.outcome = result.outcome
    return json_response(execute_answer(result))


def execute_answer(result: IntakeResult) -> dict[str, str]:
    """The outArguments for one counted contact (the view and the intake lane share it)."""
    if result.outcome in ("counted", "replay"):
        log.debug(
            "sfmc execute duplicate",
            extra={"distribution_id": result.distribution_id, "outcome": result.outcome},
        )
    return {"punchh_distribution_id": result.distribution_id, "punchh_status": status_of(result)}


def status_of(result: IntakeResult) -> str:
    """The punchh_status outArgument for one intake result."""
    if result.conflict:
        return "conflict"
    if result.state in _REPORTED_STATES:
        return result.state
    return "accepted" if result.outcome == "created" else "counted"


def test_status(req: DistributionRequest) -> str:
    """Validation only (punchh_test): resolve the names, queue nothing."""
    try:
        services().catalog.resolve_pair(req.segment, req.redeemable)
    except PunchhAuthError as exc:
        # The key, not the offer, is wrong (and a lockout may have kept Punchh from being asked).
        log.warning(
            "sfmc test execute: Punchh refused the key",
            extra={"distribution_id": req.distribution_id, "error": type(exc).__name__},
        )
        return "unavailable"
    except PunchhRejected as exc:
        log.info(
            "sfmc test execute: invalid",
            extra={"distribution_id": req.distribution_id, "reason": exc.message},
        )
        return "invalid"
    except PunchhError as exc:
        log.warning(
            "sfmc test execute: Punchh unavailable",
            extra={"distribution_id": req.distribution_id, "error": type(exc).__name__},
        )
        return "unavailable"
    return "valid"


# --- the UI's own API (Marketing Cloud token) --------------------------------------------


def _marketer() -> None:
    """Only a marketer signed in to Marketing Cloud may use the UI's endpoints."""
    svc = services()
    require_marketer(svc.settings, svc.redis, request.headers.get("Authorization"))


@bp.get("/api/segments")
def api_segments() -> Response:
    """Punchh segments matching ?query= for the picker."""
    _marketer()
    return punchh_list("segments")


@bp.get("/api/redeemables")
def api_redeemables() -> Response:
    """Punchh redeemables matching ?query= for the picker."""
    _marketer()
    return punchh_list("redeemables")


@bp.post("/api/activities/<activity_ref>")
def api_store_activity(activity_ref: str) -> Response:
    """The UI's Done: check the offer in Punchh and remember it for `validate`."""
    _marketer()
    body = json_body(request)
    try:
        config = adapter.parse_activity_config(body)
    except ValidationError as exc:
        raise field_errors(exc) from exc
    if len(activity_ref) > 200:
        raise InvalidFields("the activity id is too long")
    resolution = resolve_or_refuse(config.segment, config.redeemable, invalid=Unprocessable)
    store = activities()
    if config.draft:
        interaction = config.interaction_key or config.interaction_id
        assert interaction is not None and config.activity_key is not None  # the adapter checked
        store.store_draft(interaction, config.activity_key, config)
        stored = "draft"
    else:
        store.store_config(activity_ref, config)
        stored = "activity"
    log.info(
        "sfmc activity configured",
        extra={
            "activity_id": activity_ref,
            "stored": stored,
            "segment": config.segment,
            "redeemable": config.redeemable,
        },
    )
    return jsonify({"activity": activity_ref, "stored": stored, **resolution.as_dict()})
