"""`/sfmc/simulator`: a local Journey Builder around the real activity UI, for a local stack.

Marketing Cloud cannot run locally, so this page plays Journey Builder's side: it frames the
activity's configuration page (`/sfmc/index.html`) and speaks Postmonger to it as Journey
Builder does (initActivity, tokens, endpoints, interaction, schema, updateActivity), handing it
the token of a local stand-in for Marketing Cloud's tokenContext (the sandbox's `/_sfmc`), so
the pickers list the sandbox's segments and redeemables. "Run the journey" then sends N
contacts as execute calls signed with SFMC_JWT_SECRET, as Journey Builder would, and shows the
one Punchh campaign they made.

It exists only on a local stack: when SFMC_REST_BASE_URL names a local host (the stand-in) and
a JWT secret is set; everywhere else every route here answers 404. It signs bodies for anyone
who can reach it, which is why it is never on in a deployment.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import urlsplit

import jwt
from flask import Blueprint, Response, render_template, request, url_for

from connector.bodies import json_response, parse_json
from connector.sfmc.blueprint import STATIC
from connector.sfmc.definition import LOCAL_HOSTS
from wiring.errors import InvalidBody, NotFound
from wiring.services import current_services as services

bp = Blueprint(
    "sfmc_simulator",
    __name__,
    url_prefix="/sfmc/simulator",
    static_folder=STATIC / "simulator",
    static_url_path="/assets",
)

#: The token the sandbox's Marketing Cloud stand-in vouches for (sandbox/marketing_cloud.py: MC_TOKEN).
STAND_IN_TOKEN = "sandbox-mc-token"  # noqa: S105 - a local stand-in's, not a secret
#: Contacts one run may send: enough to see one send collapse, small enough for a browser.
MAX_CONTACTS = 1000
#: A binding such as {{Context.PublicationId}}: the simulator resolves each to the run's id.
BINDING = re.compile(r"\{\{[^{}]*\}\}")
#: The page loads only its own files, frames only the connector's UI, calls only the connector.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)


@bp.before_request
def _local_stack_only() -> None:
    """404 unless Marketing Cloud is the local stand-in and execute bodies can be signed."""
    settings = services().settings
    host = urlsplit(settings.sfmc_rest_base_url).hostname or ""
    if host not in {h.strip("[]") for h in LOCAL_HOSTS} or not settings.sfmc_jwt_secrets:
        raise NotFound(
            "the Journey Builder simulator runs only on a local stack (`make run`), where "
            "SFMC_REST_BASE_URL is the sandbox's Marketing Cloud stand-in",
        )


@bp.get("/")
def page() -> Response:
    """The simulated Journey Builder canvas: the activity UI framed, and a Run button."""
    # A new journey and activity per page load: every simulated journey is its own send.
    journey_id = str(uuid.uuid4())
    config = {
        "token": STAND_IN_TOKEN,
        "journeyId": journey_id,
        "activityId": str(uuid.uuid4()),
        "interaction": {
            "id": journey_id, "key": "local-journey", "version": 1, "name": "Local journey"
        },
        "schema": [
            {"key": "Event.DEAudience-1.RunId", "name": "RunId", "type": "Text"},
            {"key": "Event.DEAudience-1.ContactKey", "name": "ContactKey", "type": "Text"},
        ],
        "maxContacts": MAX_CONTACTS,
    }
    html = render_template("simulator.html", config=json.dumps(config))
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/bodies")
def bodies() -> Response:
    """Execute bodies for N contacts of one run, signed as Journey Builder signs them."""
    data = parse_json(request.get_data(cache=False))
    if not isinstance(data, dict):
        raise InvalidBody("send a JSON object: activity, journeyId, contacts")
    contacts = data.get("contacts")
    if isinstance(contacts, bool) or not isinstance(contacts, int) or not (
        1 <= contacts <= MAX_CONTACTS
    ):
        raise InvalidBody(f"contacts must be 1 to {MAX_CONTACTS}")
    activity = data.get("activity")
    if not isinstance(activity, dict):
        raise InvalidBody("activity must be the activity Journey Builder saved")
    arguments = activity.get("arguments")
    execute = arguments.get("execute") if isinstance(arguments, dict) else None
    in_arguments = execute.get("inArguments") if isinstance(execute, dict) else None
    if not isinstance(in_arguments, list) or not in_arguments:
        raise InvalidBody("the activity has no inArguments: press Done first")
    run_id = f"run-{uuid.uuid4().hex[:12]}"
    resolved = json.loads(BINDING.sub(run_id, json.dumps(in_arguments)))
    secret = services().settings.sfmc_jwt_secrets[0]
    now = int(time.time())
    signed = [
        jwt.encode(
            {
                "inArguments": resolved,
                "outArguments": [],
                "activityObjectID": str(activity.get("id", "")),
                "activityId": str(activity.get("id", "")),
                "journeyId": str(data.get("journeyId", "")),
                # Journey Builder's id of one contact's pass through the activity (its retries
                # share it): one per contact, so none is taken for a retry of another.
                "definitionInstanceId": str(uuid.uuid4()),
                "activityInstanceId": str(uuid.uuid4()),
                "keyValue": f"simulated-contact-{n}",
                "mode": 0,
                "iat": now,
                "exp": now + 600,
            },
            secret,
            algorithm="HS256",
        )
        for n in range(contacts)
    ]
    return json_response({"run_id": run_id, "bodies": signed})


@bp.get("/distributions/<path:distribution_id>")
def distribution(distribution_id: str) -> Response:
    """The send the run made: state, recipients, the Punchh campaign (no guest data)."""
    record = services().ledger.get(distribution_id)
    if record is None:
        raise NotFound(f"no distribution {distribution_id!r}")
    body = record.as_dict()
    shown = ("distribution_id", "state", "recipients", "campaign_id", "segment", "redeemable",
             "start_time", "last_error")
    answer = {key: body.get(key) for key in shown}
    answer["status_page"] = url_for("status.send_page", distribution_id=distribution_id)
    return json_response(answer)
