"""The activity's definition (`GET /sfmc/config.json`) and its configuration UI (`GET /sfmc/`)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from connector.sfmc.blueprint import bp

#: Hosts for which config.json keeps the request's own scheme (local development only).
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})

#: Execute settings, documented in docs/sfmc.md. The answer takes one Redis round trip, so
#: 10 s is generous; JB retries only on network errors, timeouts and 5xx (our 503 when Redis
#: is down), and a retry is harmless because the replay token counts it once.
EXECUTE_TIMEOUT_MS = 10_000
EXECUTE_RETRY_COUNT = 2
EXECUTE_RETRY_DELAY_MS = 1_000
#: Parallel execute calls per activity: enough for a large journey to pass quickly (the
#: arithmetic is in bench/README.md, "SFMC execute concurrency"), yet well inside what two
#: gunicorn workers with 8 threads each can serve.
EXECUTE_CONCURRENT_REQUESTS = 10



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
