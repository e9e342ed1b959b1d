"""Config.json and the pages Journey Builder frames (connector/sfmc/definition.py)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

# The fixture secrets are short; Journey Builder's real signing secrets are long.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


# --- config.json and the UI ------------------------------------------------------------


def test_config_json_describes_a_jwt_rest_activity_on_https(client: FlaskClient) -> None:
    reply = client.get("/sfmc/config.json", base_url="http://connector.example.com")
    assert reply.status_code == 200
    assert "max-age=60" in reply.headers["Cache-Control"]
    cfg = reply.json
    base = "https://connector.example.com/sfmc"
    assert cfg["type"] == "REST"
    assert cfg["workflowApiVersion"] == "1.1"
    assert cfg["metaData"]["icon"] == f"{base}/assets/icon.png"
    ex = cfg["arguments"]["execute"]
    assert ex["url"] == f"{base}/execute"
    assert ex["useJwt"] is True and ex["verb"] == "POST" and ex["format"] == "json"
    assert (ex["timeout"], ex["retryCount"], ex["retryDelay"], ex["concurrentRequests"]) == (
        10000, 2, 1000, 10,
    )
    assert 1000 <= ex["timeout"] <= 100000 and 0 <= ex["retryCount"] <= 5
    for name in ("save", "publish", "validate", "stop"):
        assert cfg["configurationArguments"][name] == {
            "url": f"{base}/{name}", "verb": "POST", "useJwt": True,
        }
    schema = cfg["schema"]["arguments"]["execute"]
    ins = {next(iter(a)): next(iter(a.values())) for a in schema["inArguments"]}
    outs = {next(iter(a)): next(iter(a.values())) for a in schema["outArguments"]}
    assert set(ins) == {"punchh_segment", "punchh_redeemable", "run_id", "start_time",
                        "punchh_campaign_name"}
    assert ins["punchh_segment"]["direction"] == "in"
    assert set(outs) == {"punchh_distribution_id", "punchh_status"}
    assert all(o["direction"] == "out" and o["dataType"] == "Text" for o in outs.values())
    assert cfg["lang"]["en-US"]["name"] == "Punchh Offer"


def test_config_json_honours_forwarded_proto_and_localhost(client: FlaskClient) -> None:
    local = client.get("/sfmc/config.json", base_url="http://localhost:5000").json
    assert local["arguments"]["execute"]["url"] == "http://localhost:5000/sfmc/execute"
    routed = client.get(
        "/sfmc/config.json",
        base_url="http://127.0.0.1:5000",
        headers={"X-Forwarded-Proto": "https"},
    ).json
    assert routed["arguments"]["execute"]["url"] == "https://127.0.0.1:5000/sfmc/execute"
    forwarded_host = client.get(
        "/sfmc/config.json",
        base_url="http://10.0.0.5:8000",
        headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": "punchh.example.org"},
    ).json
    # JB only calls HTTPS endpoints: a public host is always written as https.
    assert forwarded_host["arguments"]["execute"]["url"] == "https://punchh.example.org/sfmc/execute"


def test_ui_pages_are_served_and_frameable_by_marketing_cloud(client: FlaskClient) -> None:
    for path in ("/sfmc/", "/sfmc/index.html"):
        page = client.get(path)
        assert page.status_code == 200
        assert page.mimetype == "text/html"
        assert "X-Frame-Options" not in page.headers
        csp = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self' https://*.exacttarget.com" in csp
        assert "https://*.marketingcloudapps.com" in csp
        assert b"assets/vendor/postmonger.js" in page.data
    for asset, kind in (
        ("app.js", "javascript"),
        ("style.css", "text/css"),
        ("icon.png", "image/png"),
        ("icon-small.png", "image/png"),
        ("vendor/postmonger.js", "javascript"),
        ("vendor/LICENSE", ""),
    ):
        reply = client.get(f"/sfmc/assets/{asset}")
        assert reply.status_code == 200, asset
        assert kind in reply.content_type
        reply.close()
