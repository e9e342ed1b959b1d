"""The Braze webhook endpoint: auth, body forms, send keys, test sends, conflicts."""

from __future__ import annotations

import httpx
import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from adapters import braze
from wiring.services import Services

TOKEN = {"Authorization": "Bearer braze-token-1"}
BODY = {
    "punchh_segment": "Lapsed 90 days",
    "punchh_redeemable": "Free Coffee",
    "campaign_id": "cmp-123",
    "campaign_name": "Winback November",
    "send_key": "disp-1",
    "dispatch_id": "disp-1",
    "user_id": "guest-777",
    "email": "guest777@example.com",
}


def hook(client: FlaskClient, body: object = None, **headers: str):  # type: ignore[no-untyped-def]
    return client.post("/webhooks/braze", json=body or BODY, headers={**TOKEN, **headers})


def test_scheduled_send_is_accepted_once_and_counted(
    client: FlaskClient, services: Services
) -> None:
    replies = [hook(client, {**BODY, "user_id": f"g{i}"}) for i in range(5)]
    assert {r.status_code for r in replies} == {202}
    assert replies[0].json["distribution_id"] == "braze:cmp-123:disp-1"
    assert replies[0].json["state"] == "queued"
    assert len(services.queue.get_job_ids()) == 1
    dist = services.ledger.get("braze:cmp-123:disp-1")
    assert dist is not None
    assert dist.int_field("recipients") == 5
    assert dist.fields["key_rule"] == "send_key=dispatch_id"
    assert dist.fields["campaign_name"] == "Braze: Winback November (disp-1)"
    assert "guest" not in str(dist.fields)


def test_both_rotated_tokens_work_and_others_do_not(client: FlaskClient, rdb: redis.Redis) -> None:
    assert hook(client, Authorization="Bearer braze-token-2").status_code == 202
    for bad in ("Bearer braze-token-3", "Bearer ", "braze-token-1", "Bearer test-api-token"):
        reply = hook(client, {**BODY, "send_key": "other"}, Authorization=bad)
        assert reply.status_code == 401
    assert rdb.keys("pc:d:*") == [b"pc:d:braze:cmp-123:disp-1"]


def test_form_encoded_body_works(client: FlaskClient, services: Services) -> None:
    reply = client.post("/webhooks/braze", data=BODY, headers=TOKEN)
    assert reply.status_code == 202
    assert reply.json["distribution_id"] == "braze:cmp-123:disp-1"


def test_canvas_step_without_a_key_follows_its_send(
    client: FlaskClient, services: Services
) -> None:
    body = {
        "punchh_segment": "VIP Guests",
        "punchh_redeemable": "Free Dessert",
        "canvas_id": "cnv-9",
        "canvas_name": "Onboarding",
        "campaign_id": "step-2",
    }
    first = hook(client, body)
    assert first.status_code == 202
    dist_id = first.json["distribution_id"]
    assert dist_id.startswith("braze:cnv-9:step-2:run-")
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.fields["key_rule"] == "gap"
    assert dist.fields["campaign_name"] == f"Braze: Onboarding ({dist.fields['send_key']})"
    # The old documented template (a calendar day per request) follows the same send.
    dated = hook(client, {**body, "send_key": "2026-11-25"})
    assert dated.json["distribution_id"] == dist_id and dated.json["state"] == "queued"
    assert services.ledger.get(dist_id).int_field("recipients") == 2  # type: ignore[union-attr]
    assert len(services.queue.get_job_ids()) == 1


def test_dispatch_id_as_send_key_in_a_canvas_is_refused(
    client: FlaskClient, rdb: redis.Redis
) -> None:
    body = {**BODY, "canvas_id": "cnv-9", "send_key": "d-77", "dispatch_id": "d-77"}
    reply = hook(client, body)
    assert reply.status_code == 400
    message = reply.json["error"]["message"]
    assert "send_key" in message and "inside a Canvas" in message
    assert rdb.keys("pc:d:*") == []
    # Outside a Canvas the same pair is the exact key of a scheduled campaign's send.
    assert hook(client, {**BODY, "send_key": "d-77", "dispatch_id": "d-77"}).status_code == 202


def test_empty_optional_ids_are_absent_not_a_test_send(
    client: FlaskClient, services: Services
) -> None:
    # A plain campaign whose template also carries the Canvas tag: Braze renders it as "".
    reply = hook(client, {**BODY, "canvas_id": "", "canvas_name": " ", "send_key": ""})
    assert reply.status_code == 202
    assert reply.json["distribution_id"].startswith("braze:cmp-123:run-")
    assert len(services.queue.get_job_ids()) == 1
    both_empty = hook(client, {**BODY, "campaign_id": "", "canvas_id": ""})
    assert both_empty.status_code == 400
    assert "campaign_id" in both_empty.json["error"]["message"]


def test_conflicting_send_is_409(client: FlaskClient, services: Services) -> None:
    hook(client)
    clash = hook(client, {**BODY, "punchh_redeemable": "Free Dessert"})
    assert clash.status_code == 409
    assert clash.json["error"]["code"] == "conflict"
    assert "Free Coffee" in clash.json["error"]["message"]
    assert len(services.queue.get_job_ids()) == 1


@pytest.mark.parametrize(
    "change",
    [
        {
            "dispatch_id": "dispatch_id_for_unsent_campaign",
            "send_key": "dispatch_id_for_unsent_campaign",
        },
        {"send_key": "{{campaign.${dispatch_id}}}"},
        {"canvas_id": "{{canvas.${api_id}}}"},
    ],
)
def test_test_sends_validate_and_commit_nothing(
    client: FlaskClient, services: Services, rdb: redis.Redis, sandbox: httpx.Client, change: dict
) -> None:  # type: ignore[type-arg]
    reply = hook(client, {**BODY, **change})
    assert reply.status_code == 200
    assert reply.json["test_send"] is True and reply.json["valid"] is True
    assert reply.json["segment"]["segment_id"] == 1306904
    assert rdb.keys("pc:d:*") == []
    assert services.queue.get_job_ids() == []


def test_test_send_reports_unknown_names(client: FlaskClient, rdb: redis.Redis) -> None:
    body = {**BODY, "send_key": "dispatch_id_for_unsent_campaign"}
    body["punchh_redeemable"] = "Free Cofee"
    reply = hook(client, body)
    assert reply.status_code == 200
    assert reply.json["valid"] is False
    assert 'no Punchh redeemable is named "Free Cofee"' in reply.json["problems"][0]
    assert "Free Coffee" in reply.json["problems"][0]  # the suggestion
    assert rdb.keys("pc:d:*") == []


def test_did_you_mean_names_every_close_name(client: FlaskClient, rdb: redis.Redis) -> None:
    """Every equally close name is offered, most alike first, not the first three found."""
    test_send = {**BODY, "send_key": "dispatch_id_for_unsent_campaign"}
    body = {**test_send, "punchh_segment": "Lapsed 120 days"}
    (problem,) = hook(client, body).json["problems"]
    for name in ("Lapsed 30 days", "Lapsed 60 days", "Lapsed 90 days"):
        assert repr(name) in problem, problem
    # A word most names share ("Free") is no sign of which one was meant.
    body = {**test_send, "punchh_redeemable": "Free Cofee"}
    (problem,) = hook(client, body).json["problems"]
    assert problem.index("'Free Coffee'") < problem.index("'Free Cookie'"), problem
    assert "Free Guacamole" not in problem, problem


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in BODY.items() if k != "punchh_segment"}, "punchh_segment"),
        ({**BODY, "punchh_redeemable": ""}, "punchh_redeemable"),
        ({k: v for k, v in BODY.items() if k != "campaign_id"}, "campaign_id"),
        ({**BODY, "start_time": "next tuesday"}, "start_time"),
        ({**BODY, "send_key": "x" * 300}, "send_key"),
    ],
)
def test_unusable_bodies_get_field_errors(
    client: FlaskClient, rdb: redis.Redis, body: dict, field: str  # type: ignore[type-arg]
) -> None:
    reply = hook(client, body)
    assert reply.status_code == 400
    assert field in reply.json["error"]["fields"]
    assert field in reply.json["error"]["message"]
    assert rdb.keys("pc:d:*") == []


def test_wrong_content_type_and_oversize(client: FlaskClient, rdb: redis.Redis) -> None:
    reply = client.post(
        "/webhooks/braze", data="hello", headers={**TOKEN, "Content-Type": "text/plain"}
    )
    assert reply.status_code == 415
    big = client.post("/webhooks/braze", json={**BODY, "bio": "x" * 70_000}, headers=TOKEN)
    assert big.status_code == 413
    assert rdb.keys("pc:d:*") == []


def test_guest_fields_never_reach_the_request() -> None:
    call = braze.parse({**BODY, "attributes": {"phone": "555"}})
    text = repr(call.request)
    for guest in ("guest-777", "guest777@example.com", "555"):
        assert guest not in text


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from([*BODY.keys(), "canvas_id", "start_time", "punchh_campaign_name", "x"]),
        st.one_of(st.text(max_size=300), st.integers(), st.none(), st.lists(st.integers())),
    )
)
def test_adapter_either_maps_or_names_the_problem(body: dict) -> None:  # type: ignore[type-arg]
    try:
        call = braze.parse(body)
    except ValidationError as exc:
        assert exc.messages
        return
    req = call.request
    assert req.source == "braze"
    assert req.segment.strip() == req.segment and req.segment
    assert len(req.send_key) <= 200 and len(req.campaign_ref) <= 401


def test_a_wrong_token_is_told_which_token_the_route_wants(client: FlaskClient) -> None:
    """The API token on the Braze route, or a Braze token on /v1: say which token belongs."""
    from tests.conftest import API_TOKEN

    api_on_braze = hook(client, Authorization=f"Bearer {API_TOKEN}")
    assert api_on_braze.status_code == 401
    message = api_on_braze.json["error"]["message"]
    assert "BRAZE_WEBHOOK_TOKEN" in message and "API_TOKEN" in message, message
    assert API_TOKEN not in message

    unknown = hook(client, Authorization="Bearer not-a-token-we-know")
    assert unknown.status_code == 401
    assert "BRAZE_WEBHOOK_TOKEN" in unknown.json["error"]["message"]
    assert "API_TOKEN" not in unknown.json["error"]["message"]

    braze_on_api = client.get("/v1/distributions", headers=TOKEN)
    assert braze_on_api.status_code == 401
    message = braze_on_api.json["error"]["message"]
    assert "BRAZE_WEBHOOK_TOKEN" in message and "wants the API_TOKEN" in message, message


def test_an_accepted_send_tells_the_marketer_where_refusals_appear(client: FlaskClient) -> None:
    """A 202 cannot know Punchh's verdict on the names yet: it says where to look for it."""
    reply = hook(client, {**BODY, "punchh_segment": "Lapsed 120 days"})
    assert reply.status_code == 202
    assert "docs/braze.md" in reply.json["next"]
