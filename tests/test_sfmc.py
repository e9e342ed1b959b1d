"""The SFMC custom activity: config.json, JWT, lifecycle, validate, execute and the UI's API."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import redis
from flask.testing import FlaskClient
from marshmallow import ValidationError

from adapters import sfmc as adapter
from connector import create_app
from tests.sfmc_sim import (
    GOOD_TOKEN,
    SECRETS,
    SimMC,
    execute_claims,
    lifecycle_claims,
    sign,
    start_mc,
)
from wiring.services import Services
from wiring.settings import Settings

ACTIVITY = "62d6fed2-0000-4000-8000-000000000002"
JOURNEY = "a4dcaf9f-0000-4000-8000-000000000001"
JWT_TYPE = {"Content-Type": "application/jwt"}

# The fixture secrets are short; Journey Builder's real signing secrets are long.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def post_jwt(client: FlaskClient, path: str, claims: dict[str, Any], **kw: Any):  # type: ignore[no-untyped-def]
    return client.post(f"/sfmc/{path}", data=sign(claims, **kw), headers=JWT_TYPE)


def execute(client: FlaskClient, **kw: Any):  # type: ignore[no-untyped-def]
    return post_jwt(client, "execute", execute_claims(**kw))


def keys(rdb: redis.Redis) -> list[str]:
    """Every key but the shared metrics hash (refusals are counted there, by design)."""
    return sorted(k.decode() for k in rdb.keys("*") if k != b"pc:m")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


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


# --- JWT ----------------------------------------------------------------------------------


def test_jwt_signed_with_either_secret_is_accepted(client: FlaskClient) -> None:
    for secret in SECRETS:
        body = lifecycle_claims(activity_id=f"act-{secret}")
        reply = post_jwt(client, "save", body, secret=secret)
        assert reply.status_code == 200, reply.json
        assert reply.json == {}


def test_jwt_in_a_json_wrapper_or_text_plain_is_accepted(client: FlaskClient) -> None:
    token = sign(lifecycle_claims())
    assert client.post("/sfmc/save", data=token, content_type="text/plain").status_code == 200
    wrapped = client.post("/sfmc/save", json={"jwt": token})
    assert wrapped.status_code == 200


def _bad_tokens() -> dict[str, bytes | str]:
    claims = execute_claims()
    good = sign(claims)
    head, payload, sig = good.split(".")
    tampered_claims = {**claims, "inArguments": [{"punchh_segment": "VIP Guests",
                                                   "punchh_redeemable": "Free Coffee"}]}
    tampered = f"{head}.{b64(json.dumps(tampered_claims).encode())}.{sig}"
    none_header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    rs_header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return {
        "tampered": tampered,
        "wrong key": sign(claims, secret="not-the-secret"),
        "alg none": f"{none_header}.{payload}.",
        "HS512": jwt.encode(claims, SECRETS[0], algorithm="HS512"),
        "RS256-shaped": f"{rs_header}.{payload}.{sig}",
        "expired": sign({**claims, "exp": int(time.time()) - 3600}),
        "not yet valid": sign({**claims, "nbf": int(time.time()) + 3600}),
        "not a JWT": "hello there",
        "two parts": f"{head}.{payload}",
        "garbage parts": "abc.def.ghi",
        "empty": "",
    }


BAD_CASES = ["tampered", "wrong key", "alg none", "HS512", "RS256-shaped", "expired",
             "not yet valid", "not a JWT", "two parts", "garbage parts", "empty"]


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("path", ["execute", "save", "validate", "publish", "stop"])
def test_bad_jwts_get_401_and_change_nothing(
    client: FlaskClient, rdb: redis.Redis, case: str, path: str
) -> None:
    before = keys(rdb)
    token = _bad_tokens()[case]
    reply = client.post(f"/sfmc/{path}", data=token, headers=JWT_TYPE)
    assert reply.status_code == 401, (case, reply.json)
    assert reply.json["error"]["code"] == "invalid_jwt"
    assert reply.json["error"]["message"]
    assert keys(rdb) == before


def test_401_reasons_are_short_and_specific(client: FlaskClient) -> None:
    bad = _bad_tokens()
    assert sorted(bad) == sorted(BAD_CASES)
    reasons = {
        case: client.post("/sfmc/execute", data=bad[case], headers=JWT_TYPE).json["error"][
            "message"
        ]
        for case in ("expired", "wrong key", "alg none", "HS512")
    }
    assert reasons["expired"] == "the JWT has expired"
    assert "does not match" in reasons["wrong key"]
    assert "'none'" in reasons["alg none"]
    assert "'HS512'" in reasons["HS512"]
    assert all(len(r) < 80 for r in reasons.values())


def test_valid_exp_is_accepted(client: FlaskClient) -> None:
    claims = {**execute_claims(), "exp": int(time.time()) + 300, "iat": int(time.time())}
    assert post_jwt(client, "execute", claims).status_code == 200


def test_plain_json_is_refused_unless_allowed(
    client: FlaskClient, settings: Settings, rdb: redis.Redis
) -> None:
    body = execute_claims()
    refused = client.post("/sfmc/execute", json=body)
    assert refused.status_code == 401
    assert "plain JSON" in refused.json["error"]["message"]
    assert keys(rdb) == []
    dev = create_app(
        settings.with_overrides(sfmc_allow_plain_json=True),
        services=Services.build(settings.with_overrides(sfmc_allow_plain_json=True)),
    ).test_client()
    accepted = dev.post("/sfmc/execute", json=body)
    assert accepted.status_code == 200
    assert accepted.json["punchh_status"] == "accepted"
    # Even then a JWT is still verified, and a bad one still refused.
    assert dev.post(
        "/sfmc/execute", data=sign(body, secret="wrong"), headers=JWT_TYPE
    ).status_code == 401


def test_no_secret_configured_is_401(settings: Settings, rdb: redis.Redis) -> None:
    bare = settings.with_overrides(sfmc_jwt_secrets=())
    app = create_app(bare, services=Services.build(bare))
    reply = app.test_client().post(
        "/sfmc/execute", data=sign(execute_claims()), headers=JWT_TYPE
    )
    assert reply.status_code == 401
    assert "SFMC_JWT_SECRET" in reply.json["error"]["message"]


# --- lifecycle ----------------------------------------------------------------------------


def record(rdb: redis.Redis, activity: str = ACTIVITY) -> dict[str, str]:
    raw = rdb.hgetall(f"pc:sfmc:act:{activity}")
    return {k.decode(): v.decode() for k, v in raw.items()}


def test_save_publish_stop_record_the_activity_without_guest_data(
    client: FlaskClient, rdb: redis.Redis
) -> None:
    body = lifecycle_claims(keyValue="contact-key-9@example.com", emailAddress="x@example.com")
    assert post_jwt(client, "save", body).json == {}
    rec = record(rdb)
    assert rec["last_event"] == "save"
    assert rec["interaction_id"] == JOURNEY
    assert rec["interaction_key"] == "punchh-journey-key"
    assert rec["interaction_version"] == "1"
    assert "save_at" in rec
    assert post_jwt(client, "publish", {**body, "isPublished": True}).status_code == 200
    assert record(rdb)["last_event"] == "publish"
    assert record(rdb)["stopped"] == "0"
    assert post_jwt(client, "stop", body).status_code == 200
    rec = record(rdb)
    assert rec["last_event"] == "stop" and rec["stopped"] == "1" and "stop_at" in rec
    assert 0 < rdb.ttl(f"pc:sfmc:act:{ACTIVITY}") <= 180 * 86400
    everything = json.dumps(rec)
    assert "contact-key-9" not in everything and "x@example.com" not in everything
    assert keys(rdb) == [f"pc:sfmc:act:{ACTIVITY}"]


def test_stop_does_not_cancel_an_accepted_distribution(
    client: FlaskClient, services: Services
) -> None:
    first = execute(client, extra_args={"run_id": "r-1"})
    assert first.json["punchh_status"] == "accepted"
    post_jwt(client, "stop", lifecycle_claims())
    dist = services.ledger.get(first.json["punchh_distribution_id"])
    assert dist is not None and dist.state == "queued"
    assert len(services.queue.get_job_ids()) == 1


# --- validate -----------------------------------------------------------------------------


def with_offer(segment: str, redeemable: str) -> dict[str, Any]:
    return lifecycle_claims(
        arguments={"execute": {"inArguments": [
            {"punchh_segment": segment}, {"punchh_redeemable": redeemable},
        ]}}
    )


def test_validate_accepts_a_good_offer_from_the_body(client: FlaskClient, rdb: redis.Redis) -> None:
    reply = post_jwt(client, "validate", with_offer("Lapsed 90 days", "Free Coffee"))
    assert reply.status_code == 200, reply.json
    assert reply.json == {}
    rec = record(rdb)
    assert rec["validated"] == "ok"
    assert rec["segment"] == "Lapsed 90 days"
    assert rec["segment_id"] == "1306904"
    assert rec["config_source"] == "lifecycle"


@pytest.mark.parametrize(
    ("segment", "redeemable", "needle"),
    [
        ("Lapsed 9000 days", "Free Coffee", 'no Punchh segment is named "Lapsed 9000 days"'),
        ("Lapsed 90 days", "Free Caviar", 'no Punchh redeemable is named "Free Caviar"'),
        ("Weekend Regulars", "Free Coffee", "2 Punchh segments are named"),
    ],
)
def test_validate_refuses_unknown_or_ambiguous_names(
    client: FlaskClient, rdb: redis.Redis, segment: str, redeemable: str, needle: str
) -> None:
    reply = post_jwt(client, "validate", with_offer(segment, redeemable))
    assert reply.status_code == 400
    assert reply.json["error"]["code"] == "invalid_configuration"
    assert needle in reply.json["error"]["message"]
    assert record(rdb)["validated"] == "refused"
    assert needle in record(rdb)["validation_error"]
    assert rdb.keys("pc:d:*") == []


def test_validate_without_any_configuration_asks_for_done(client: FlaskClient) -> None:
    reply = post_jwt(client, "validate", lifecycle_claims(activity_id="never-configured"))
    assert reply.status_code == 400
    assert reply.json["error"]["code"] == "not_configured"
    assert "click Done" in reply.json["error"]["message"]


def test_validate_ignores_unresolved_bindings_in_the_body(client: FlaskClient) -> None:
    reply = post_jwt(client, "validate", with_offer("{{Event.DE.Segment}}", "Free Coffee"))
    assert reply.status_code == 400
    assert reply.json["error"]["code"] == "not_configured"


# --- the UI's API: Marketing Cloud token --------------------------------------------------


@pytest.fixture
def mc() -> Iterator[SimMC]:
    with start_mc() as sim:
        yield sim


@pytest.fixture
def ui(settings: Settings, rdb: redis.Redis, mc: SimMC) -> FlaskClient:
    """The app with SFMC_REST_BASE_URL pointing at the simulated Marketing Cloud."""
    configured = settings.with_overrides(sfmc_rest_base_url=mc.url)
    return create_app(configured, services=Services.build(configured)).test_client()


def bearer(token: str = GOOD_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_ui_lists_need_a_marketing_cloud_token(
    ui: FlaskClient, mc: SimMC, rdb: redis.Redis
) -> None:
    assert ui.get("/sfmc/api/segments").status_code == 401
    refused = ui.get("/sfmc/api/segments", headers=bearer("stolen-or-expired"))
    assert refused.status_code == 401
    assert refused.json["error"]["code"] == "invalid_token"
    segments = ui.get("/sfmc/api/segments?query=Lapsed", headers=bearer())
    assert segments.status_code == 200
    names = [s["name"] for s in segments.json["items"]]
    assert "Lapsed 90 days" in names
    redeemables = ui.get("/sfmc/api/redeemables", headers=bearer())
    assert "Free Coffee" in [r["name"] for r in redeemables.json["items"]]
    # The positive answer is cached under a hash: one tokenContext call for the good token.
    assert mc.calls.count("tokenContext") == 2
    digest = hashlib.sha256(GOOD_TOKEN.encode()).hexdigest()
    assert rdb.exists(f"pc:sfmc:tok:{digest}")
    for key in rdb.keys("*"):
        assert GOOD_TOKEN.encode() not in key
        if rdb.type(key) == b"string":
            assert GOOD_TOKEN.encode() not in rdb.get(key)


def test_ui_api_without_rest_base_url_says_so(client: FlaskClient) -> None:
    reply = client.get("/sfmc/api/segments", headers=bearer())
    assert reply.status_code == 503
    assert reply.json["error"]["message"] == "SFMC_REST_BASE_URL is not configured"


def test_done_stores_the_offer_and_validate_finds_it(ui: FlaskClient, rdb: redis.Redis) -> None:
    body = {"segment": "VIP Guests", "redeemable": "$5 Off", "run_id": "{{Context.PublicationId}}",
            "activity_key": "REST-1"}
    stored = ui.post(f"/sfmc/api/activities/{ACTIVITY}", json=body, headers=bearer())
    assert stored.status_code == 200, stored.json
    assert stored.json["stored"] == "activity"
    assert stored.json["segment"]["segment_id"] == 1306978
    assert record(rdb)["run_id"] == "{{Context.PublicationId}}"
    assert post_jwt(ui, "validate", lifecycle_claims()).status_code == 200
    assert record(rdb)["validated"] == "ok"


def test_done_refuses_an_ambiguous_segment(ui: FlaskClient, rdb: redis.Redis) -> None:
    body = {"segment": "Weekend Regulars", "redeemable": "Free Coffee"}
    reply = ui.post(f"/sfmc/api/activities/{ACTIVITY}", json=body, headers=bearer())
    assert reply.status_code == 422
    assert "Weekend Regulars" in reply.json["error"]["message"]
    assert record(rdb) == {}
    assert ui.post(f"/sfmc/api/activities/{ACTIVITY}", json=body).status_code == 401


def test_a_draft_from_a_never_saved_journey_is_adopted_on_save(
    ui: FlaskClient, rdb: redis.Redis
) -> None:
    body = {"segment": "Loyalty Members", "redeemable": "Free Dessert", "draft": True,
            "activity_key": "REST-1", "interaction_key": "punchh-journey-key"}
    reply = ui.post("/sfmc/api/activities/REST-1", json=body, headers=bearer())
    assert reply.json["stored"] == "draft"
    assert post_jwt(ui, "save", lifecycle_claims()).status_code == 200
    rec = record(rdb)
    assert rec["segment"] == "Loyalty Members" and rec["activity_key"] == "REST-1"
    assert post_jwt(ui, "validate", lifecycle_claims()).status_code == 200
    missing = ui.post("/sfmc/api/activities/REST-2", json={**body, "interaction_key": ""},
                      headers=bearer())
    assert missing.status_code == 400
    assert "interaction_key" in missing.json["error"]["fields"]


# --- execute ------------------------------------------------------------------------------


def test_execute_answers_200_with_out_arguments(client: FlaskClient, services: Services) -> None:
    reply = execute(client)
    assert reply.status_code == 200
    dist_id = reply.json["punchh_distribution_id"]
    assert dist_id.startswith(f"sfmc:{JOURNEY}:{ACTIVITY}:run-")
    assert reply.json == {"punchh_distribution_id": dist_id, "punchh_status": "accepted"}
    dist = services.ledger.get(dist_id)
    assert dist is not None
    assert dist.fields["key_rule"] == "gap"
    again = execute(client)
    assert again.json == {"punchh_distribution_id": dist_id, "punchh_status": "counted"}
    assert services.ledger.get(dist_id).int_field("recipients") == 2  # type: ignore[union-attr]
    assert len(services.queue.get_job_ids()) == 1


def test_run_id_names_the_send_and_is_trimmed(client: FlaskClient, services: Services) -> None:
    reply = execute(client, extra_args={"run_id": "  2026-05-01-spring ",
                                        "punchh_campaign_name": "Spring",
                                        "start_time": "2030-01-01T10:00:00Z"})
    dist_id = f"sfmc:{JOURNEY}:{ACTIVITY}:2026-05-01-spring"
    assert reply.json["punchh_distribution_id"] == dist_id
    dist = services.ledger.get(dist_id)
    assert dist is not None
    assert dist.fields["key_rule"] == "run_id"
    assert dist.fields["campaign_name"] == "Spring"
    assert dist.fields["start_time_requested"] == "2030-01-01T10:00:00Z"
    numeric = execute(client, extra_args={"run_id": 42})
    assert numeric.json["punchh_distribution_id"].endswith(":42")


def test_retried_execute_is_counted_once(client: FlaskClient, services: Services) -> None:
    first = execute(client, instance="instance-1", extra_args={"run_id": "r"})
    for _ in range(3):
        retry = execute(client, instance="instance-1", extra_args={"run_id": "r"})
        assert retry.status_code == 200
        assert retry.json["punchh_distribution_id"] == first.json["punchh_distribution_id"]
    other = execute(client, instance="instance-2", extra_args={"run_id": "r"})
    assert other.json["punchh_status"] == "counted"
    dist = services.ledger.get(first.json["punchh_distribution_id"])
    assert dist is not None and dist.int_field("recipients") == 2


def test_execute_never_stores_contact_data(client: FlaskClient, rdb: redis.Redis) -> None:
    execute(
        client,
        key_value="contact-key-77@example.com",
        extra_args={"emailAddress": "guest77@example.com", "FirstName": "Ada", "run_id": "r"},
    )
    for key in rdb.keys("*"):
        kind = rdb.type(key)
        blob = repr(rdb.hgetall(key) if kind == b"hash" else rdb.dump(key)) + key.decode()
        for needle in ("contact-key-77", "guest77", "Ada"):
            assert needle not in blob, (key, needle)


@pytest.mark.parametrize(
    ("claims_change", "field"),
    [
        ({"inArguments": [{"punchh_redeemable": "Free Coffee"}]}, "inArguments.punchh_segment"),
        ({"inArguments": [{"punchh_segment": "Lapsed 90 days", "punchh_redeemable": " "}]},
         "inArguments.punchh_redeemable"),
        ({"inArguments": [{"punchh_segment": 7, "punchh_redeemable": "Free Coffee"}]},
         "inArguments.punchh_segment"),
        ({"inArguments": [{"punchh_segment": "Lapsed 90 days", "punchh_redeemable": "Free Coffee",
                           "start_time": "tomorrow"}]}, "inArguments.start_time"),
        ({"inArguments": [{"punchh_segment": "Lapsed 90 days", "punchh_redeemable": "Free Coffee",
                           "run_id": "{{Context.PublicationId}}"}]}, "inArguments.run_id"),
        ({"inArguments": [{"punchh_segment": "Lapsed 90 days", "punchh_redeemable": "Free Coffee",
                           "run_id": "x" * 201}]}, "inArguments.run_id"),
        ({"inArguments": {"punchh_segment": "Lapsed 90 days"}}, "inArguments"),
        ({"inArguments": ["nope"]}, "inArguments"),
        ({"journeyId": None}, "journeyId"),
        ({"activityId": None, "activityObjectID": None}, "activityId"),
    ],
)
def test_unusable_in_arguments_are_400_with_field_errors(
    client: FlaskClient, rdb: redis.Redis, claims_change: dict[str, Any], field: str
) -> None:
    claims = {**execute_claims(), **claims_change}
    claims = {k: v for k, v in claims.items() if v is not None}
    reply = post_jwt(client, "execute", claims)
    assert reply.status_code == 400, reply.json
    assert reply.json["error"]["code"] == "invalid_fields"
    assert field in reply.json["error"]["fields"], reply.json
    assert rdb.keys("pc:d:*") == []


def test_conflict_is_200_so_the_contact_stays(client: FlaskClient, services: Services) -> None:
    execute(client, extra_args={"run_id": "r"})
    clash = execute(client, redeemable="Free Dessert", extra_args={"run_id": "r"})
    assert clash.status_code == 200
    assert clash.json["punchh_status"] == "conflict"
    dist = services.ledger.get(clash.json["punchh_distribution_id"])
    assert dist is not None and dist.int_field("conflicts") == 1
    assert dist.fields["redeemable"] == "Free Coffee"
    assert len(services.queue.get_job_ids()) == 1


def test_per_contact_run_ids_are_held_by_the_fanout_guard(
    client: FlaskClient, services: Services, rdb: redis.Redis
) -> None:
    replies = [execute(client, extra_args={"run_id": f"contact-{n}"}).json for n in range(6)]
    statuses = [r["punchh_status"] for r in replies]
    assert statuses[0] == "accepted"
    assert statuses[1:] == ["held"] * 5
    assert len(services.queue.get_job_ids()) == 1
    # Every per-contact key after the first is folded into one held send, not one each.
    held = {r["punchh_distribution_id"] for r in replies[1:]}
    assert held == {f"sfmc:{JOURNEY}:{ACTIVITY}:contact-1"}
    dist = services.ledger.get(held.pop())
    assert dist is not None
    assert dist.int_field("recipients") == 5 and dist.int_field("folded_sends") == 4
    assert len(rdb.keys("pc:d:*")) == 2


def test_blank_run_id_is_counted_on_the_open_run(client: FlaskClient, services: Services) -> None:
    run = execute(client, extra_args={"run_id": "RUN-42"}).json["punchh_distribution_id"]
    for blank in ("", "   "):
        reply = execute(client, extra_args={"run_id": blank})
        assert reply.json == {"punchh_distribution_id": run, "punchh_status": "counted"}
    assert services.ledger.get(run).int_field("recipients") == 3  # type: ignore[union-attr]
    assert len(services.queue.get_job_ids()) == 1


def test_punchh_test_is_validation_only(
    client: FlaskClient, services: Services, rdb: redis.Redis
) -> None:
    good = execute(client, extra_args={"punchh_test": True})
    assert good.status_code == 200
    assert good.json["punchh_status"] == "valid"
    bad = execute(client, segment="Nope", extra_args={"punchh_test": "true"})
    assert bad.json["punchh_status"] == "invalid"
    assert rdb.keys("pc:d:*") == []
    assert services.queue.get_job_ids() == []


def test_redis_down_is_503_with_retry_after(settings: Settings, sandbox: Any) -> None:
    down = settings.with_overrides(redis_url="redis://127.0.0.1:1/0")
    app = create_app(down, services=Services.build(down))
    reply = app.test_client().post(
        "/sfmc/execute", data=sign(execute_claims()), headers=JWT_TYPE
    )
    assert reply.status_code == 503
    assert reply.headers["Retry-After"]


# --- the adapter, directly ---------------------------------------------------------------


def test_adapter_merges_in_arguments_and_drops_guest_fields() -> None:
    body = execute_claims(
        instance="i-1",
        extra_args={"emailAddress": "g@example.com"},
    )
    body["inArguments"].append({"punchh_redeemable": "Free Dessert", "run_id": ""})
    req = adapter.to_request(body)
    assert req.redeemable == "Free Dessert"  # later objects win
    assert req.send_key == "" and req.follows_send
    assert req.key_rule == "gap"
    assert req.campaign_ref == f"{JOURNEY}:{ACTIVITY}"
    expected = hashlib.sha256(f"{ACTIVITY}:i-1".encode()).hexdigest()[:32]
    assert req.replay_token == expected
    assert "g@example.com" not in repr(req) and "contact-key" not in repr(req)


def test_adapter_refuses_a_non_object() -> None:
    with pytest.raises(ValidationError):
        adapter.to_request([])
