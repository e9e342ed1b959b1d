"""Marketing Cloud's side, simulated for tests: tokenContext, JB's signed calls, JB's Postmonger.

- `start_mc()`: a tiny Flask app in a thread answering `GET /platform/v1/tokenContext` for
  known tokens (Marketing Cloud cannot run here; the connector is the real thing).
- `sign()` / `execute_claims()` / `lifecycle_claims()`: bodies as Journey Builder sends them.
- `harness_html()`: a page that plays Journey Builder's side of Postmonger around an iframe of
  the connector's UI, recording what the UI sends back in `window.jb`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

#: The fuel2token the simulated Marketing Cloud vouches for.
GOOD_TOKEN = "mc-fuel2token-0123456789abcdef"
SECRETS = ("sfmc-secret-one", "sfmc-secret-two")
POSTMONGER_JS = (
    Path(__file__).resolve().parent.parent / "connector" / "static" / "sfmc" / "vendor"
    / "postmonger.js"
)


@dataclass
class SimMC:
    """A running simulated Marketing Cloud REST host."""

    server: BaseWSGIServer
    thread: threading.Thread
    tokens: set[str]
    calls: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Its base URL (the tenant's REST base URL)."""
        return f"http://127.0.0.1:{self.server.server_port}"


def mc_app(sim: SimMC) -> Flask:
    """The tokenContext endpoint: 200 for a known bearer token, 401 otherwise."""
    app = Flask("sfmc_sim")

    @app.get("/platform/v1/tokenContext")
    def token_context() -> tuple[Response, int]:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        sim.calls.append("tokenContext")
        if token not in sim.tokens:
            return jsonify({"message": "Not Authorized", "errorcode": 0, "documentation": ""}), 401
        return jsonify(
            {
                "enterprise": {"id": 510000001},
                "organization": {"id": 510000001, "enterprise_id": 510000001},
                "user": {"id": 7000001, "email": "marketer@example.com", "culture": "en-US"},
                "application": {"id": "sim", "package": "punchh-offer"},
            }
        ), 200

    return app


@contextmanager
def start_mc(tokens: tuple[str, ...] = (GOOD_TOKEN,)) -> Iterator[SimMC]:
    """Run the simulated Marketing Cloud in a thread for the duration of the block."""
    sim = SimMC(server=None, thread=None, tokens=set(tokens))  # type: ignore[arg-type]
    sim.server = make_server("127.0.0.1", 0, mc_app(sim), threaded=True)
    sim.thread = threading.Thread(target=sim.server.serve_forever, daemon=True)
    sim.thread.start()
    try:
        yield sim
    finally:
        sim.server.shutdown()
        sim.server.server_close()


# --- Journey Builder's signed calls --------------------------------------------------------


def sign(claims: dict[str, Any], secret: str = SECRETS[0], **headers: Any) -> str:
    """A compact HS256 JWT of `claims`, as Journey Builder signs with the package's secret."""
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def execute_claims(
    *,
    segment: str = "Lapsed 90 days",
    redeemable: str = "Free Coffee",
    journey_id: str = "a4dcaf9f-0000-4000-8000-000000000001",
    activity_id: str = "62d6fed2-0000-4000-8000-000000000002",
    instance: str | None = None,
    key_value: str = "contact-key-0@example.com",
    extra_args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An execute body as captured from Journey Builder (inArguments already resolved)."""
    args: dict[str, Any] = {"punchh_segment": segment, "punchh_redeemable": redeemable}
    args.update(extra_args or {})
    return {
        "inArguments": [args],
        "outArguments": [],
        "activityObjectID": activity_id,
        "journeyId": journey_id,
        "activityId": activity_id,
        "definitionInstanceId": instance or str(uuid.uuid4()),
        "activityInstanceId": str(uuid.uuid4()),
        "keyValue": key_value,
        "mode": 0,
    }


def lifecycle_claims(
    activity_id: str = "62d6fed2-0000-4000-8000-000000000002", **extra: Any
) -> dict[str, Any]:
    """A save / validate / publish / stop body as seen from Journey Builder."""
    body: dict[str, Any] = {
        "activityObjectID": activity_id,
        "interactionId": "a4dcaf9f-0000-4000-8000-000000000001",
        "originalDefinitionId": "0d1c2b3a-0000-4000-8000-000000000003",
        "interactionKey": "punchh-journey-key",
        "interactionVersion": "1",
    }
    body.update(extra)
    return body


# --- Journey Builder's side of Postmonger ----------------------------------------------------

_HARNESS = """<!doctype html>
<html><head><meta charset="utf-8"><title>Journey Builder (simulated)</title>
<script>__POSTMONGER__</script></head>
<body>
<h1>Journey Builder (simulated)</h1>
<iframe id="activity" width="800" height="700"></iframe>
<script>
(function () {
  var saved = __ACTIVITY__;
  var jb = window.jb = {updates: [], seen: []};
  var frame = document.getElementById('activity');
  var session = new Postmonger.Session({connect: frame, from: __ORIGIN__, to: __ORIGIN__});
  // Lets a test press Journey Builder's own buttons (clickedNext, clickedBack, ...).
  jb.trigger = function (event, payload) { session.trigger(event, payload); };
  function answer(request, reply, payload) {
    session.on(request, function () {
      jb.seen.push(request);
      session.trigger(reply, payload);
    });
  }
  session.on('ready', function () {
    jb.seen.push('ready');
    session.trigger('initActivity', JSON.parse(JSON.stringify(saved)));
  });
  answer('requestTokens', 'requestedTokens', __TOKENS__);
  answer('requestEndpoints', 'requestedEndpoints', __ENDPOINTS__);
  answer('requestInteraction', 'requestedInteraction', __INTERACTION__);
  answer('requestSchema', 'requestedSchema', __SCHEMA__);
  session.on('updateActivity', function (activity) {
    jb.seen.push('updateActivity');
    jb.updates.push(activity);
  });
  frame.src = __SRC__;
}());
</script>
</body></html>
"""


def harness_html(
    ui_url: str,
    activity: dict[str, Any],
    *,
    token: str = GOOD_TOKEN,
    mc_url: str = "https://mc.rest.marketingcloudapis.example",
    interaction: dict[str, Any] | None = None,
) -> str:
    """The simulated Journey Builder page framing `ui_url` (the connector's UI)."""
    origin = "/".join(ui_url.split("/")[:3])
    replacements = {
        "__POSTMONGER__": POSTMONGER_JS.read_text(),
        "__ACTIVITY__": json.dumps(activity),
        "__ORIGIN__": json.dumps(origin),
        "__SRC__": json.dumps(ui_url),
        "__TOKENS__": json.dumps(
            {"token": "legacy-soap-token", "fuel2token": token, "expires": 1200, "stackKey": "S7"}
        ),
        "__ENDPOINTS__": json.dumps(
            {"restHost": mc_url, "fuelapiRestHost": mc_url, "stackHost": "s7.exacttarget.com"}
        ),
        "__INTERACTION__": json.dumps(
            interaction
            or {
                "id": "a4dcaf9f-0000-4000-8000-000000000001",
                "key": "punchh-journey-key",
                "version": 1,
                "name": "Win-back",
            }
        ),
        "__SCHEMA__": json.dumps(
            {
                "schema": [
                    {"key": "Event.DEAudience-1.RunId", "name": "RunId", "type": "Text"},
                    {"key": "Event.DEAudience-1.EmailAddress", "name": "EmailAddress",
                     "type": "EmailAddress"},
                ]
            }
        ),
    }
    page = _HARNESS
    for marker, value in replacements.items():
        page = page.replace(marker, value)
    return page
