"""Audience mode at the doors: Braze (JSON, form, test sends), SFMC execute, and the guard
that an identifier is never echoed, logged or kept outside its send's pending list."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from ledger.states import State
from tests.helpers import leaked, redis_dump
from tests.sfmc_sim import execute_claims, sign
from wiring.services import Services

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

TOKEN = {"Authorization": "Bearer braze-token-1"}
AUDIENCE = {
    "punchh_audience": "recipients",
    "punchh_redeemable": "Free Coffee",
    "campaign_id": "cmp-aud",
    "send_key": "run-7",
}
SECRET_IDS = ["880007", "quiet.guest@example.com", "880008"]


def hook(client: FlaskClient, body: dict[str, Any], *, form: bool = False):  # type: ignore[no-untyped-def]
    if form:
        return client.post("/webhooks/braze", data=body, headers=TOKEN)
    return client.post("/webhooks/braze", json=body, headers=TOKEN)


def pending(services: Services, dist_id: str) -> int:
    return services.ledger.audience.waiting(dist_id).total


def test_braze_json_and_form_bodies_store_each_identifier_with_its_count(
    client: FlaskClient, services: Services, rdb: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    first = hook(client, {**AUDIENCE, "punchh_user_id": SECRET_IDS[0]})
    second = hook(client, {**AUDIENCE, "email": SECRET_IDS[1]}, form=True)
    assert (first.status_code, second.status_code) == (202, 202)
    dist_id = first.json["distribution_id"]
    assert dist_id == second.json["distribution_id"] == "braze:cmp-aud:run-7"
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.fields["audience"] == "recipients"
    assert dist.fields["segment"] == "" and dist.int_field("recipients") == 2
    assert pending(services, dist_id) == 2
    # Only the pending list holds them: not the record, not the job, not a log line.
    record_and_jobs = redis_dump(rdb).replace(
        b"\n".join(rdb.lrange(services.ledger.audience.pending_key(dist_id), 0, -1)), b""
    )
    assert leaked(record_and_jobs, SECRET_IDS[:2]) == []
    assert leaked(caplog.text, SECRET_IDS) == []
    assert leaked(first.get_data(as_text=True) + second.get_data(as_text=True), SECRET_IDS) == []


def test_a_recipient_without_an_identifier_is_refused_by_field_never_by_value(
    client: FlaskClient, services: Services, rdb: redis.Redis
) -> None:
    missing = hook(client, AUDIENCE)
    assert missing.status_code == 400
    assert "punchh_user_id" in missing.json["error"]["fields"]
    bad = hook(client, {**AUDIENCE, "punchh_user_id": "not-a-number-880007"})
    assert bad.status_code == 400 and "880007" not in bad.get_data(as_text=True)
    assert rdb.keys("pc:d:*") == []  # bad input changes nothing


def test_an_audience_and_a_segment_on_one_send_is_a_conflict(
    client: FlaskClient, services: Services
) -> None:
    assert hook(client, {**AUDIENCE, "punchh_user_id": "1"}).status_code == 202
    body = {k: v for k, v in AUDIENCE.items() if k != "punchh_audience"}
    clash = hook(client, {**body, "punchh_segment": "Lapsed 90 days"})
    assert clash.status_code == 409
    assert pending(services, "braze:cmp-aud:run-7") == 1


def test_a_braze_test_send_checks_the_offer_and_says_what_is_missing(
    client: FlaskClient, services: Services
) -> None:
    test = {**AUDIENCE, "campaign_id": "campaign_id_for_unsent_campaign"}
    without = hook(client, test)
    assert without.status_code == 200
    report = without.json
    assert report["test_send"] and report["committed"] is False
    assert report["redeemable"]["found"] is True and "segment" not in report
    assert report["valid"] is False
    assert "punchh_user_id" in report["problems"][0]
    with_id = hook(client, {**test, "punchh_user_id": SECRET_IDS[0]}).json
    assert with_id["valid"] is True and with_id["audience"]["guest_identifier"] == "user_id"
    assert SECRET_IDS[0] not in str(with_id)
    assert services.redis.keys("pc:d:*") == []


def sfmc_execute(client: FlaskClient, **args: Any):  # type: ignore[no-untyped-def]
    claims = execute_claims(
        segment="", extra_args={"punchh_audience": "recipients", "run_id": "r1", **args}
    )
    jwt = {"Content-Type": "application/jwt"}
    return client.post("/sfmc/execute", data=sign(claims), headers=jwt)


def test_sfmc_execute_counts_the_contact_and_stores_only_its_identifier(
    client: FlaskClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    answer = sfmc_execute(client, punchh_user_id=SECRET_IDS[2])
    assert answer.status_code == 200
    dist_id = answer.json["punchh_distribution_id"]
    assert pending(services, dist_id) == 1
    # A contact with no identifier stays in the journey (200) and is counted as missing.
    unbound = sfmc_execute(client, punchh_user_id="{{Contact.Attribute.Guests.punchh_user_id}}")
    assert unbound.status_code == 200 and unbound.json["punchh_status"] == "no_identifier"
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.int_field("audience_missing") == 1
    test = sfmc_execute(client, punchh_test=True)
    assert test.json["punchh_status"] == "invalid"
    valid = sfmc_execute(client, punchh_test=True, punchh_user_id="5")
    assert valid.json["punchh_status"] == "valid"
    assert pending(services, dist_id) == 1
    assert leaked(caplog.text, SECRET_IDS) == []


def open_send(client: FlaskClient, key: str = "aud-1") -> str:
    from tests.conftest import API_TOKEN

    reply = client.post(
        "/v1/distributions",
        json={"audience": "recipients", "redeemable": "Free Coffee"},
        headers={"Authorization": f"Bearer {API_TOKEN}", "Idempotency-Key": key},
    )
    assert reply.status_code == 202, reply.json
    return str(reply.json["distribution_id"])


def v1(client: FlaskClient, path: str, body: Any = None):  # type: ignore[no-untyped-def]
    from tests.conftest import API_TOKEN

    return client.post(
        f"/v1/distributions/{path}", json=body, headers={"Authorization": f"Bearer {API_TOKEN}"}
    )


def test_v1_opens_a_send_takes_recipients_in_calls_of_1000_and_ends_it(
    client: FlaskClient, services: Services
) -> None:
    dist_id = open_send(client)
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.int_field("audience_missing") == 0
    added = v1(client, f"{dist_id}/recipients", {"user_ids": [880001, "880002"],
                                                   "emails": ["guest3@example.com"]})
    assert added.status_code == 202
    assert added.json == {"distribution_id": dist_id, "state": "queued", "accepted": 3, "late": 0}
    assert pending(services, dist_id) == 3
    too_many = v1(client, f"{dist_id}/recipients", {"user_ids": list(range(1, 1002))})
    assert too_many.status_code == 400 and pending(services, dist_id) == 3
    bad = v1(client, f"{dist_id}/recipients", {"emails": ["secret-not-an-address"]})
    assert bad.status_code == 400 and "secret-not-an-address" not in bad.get_data(as_text=True)
    ended = v1(client, f"{dist_id}/end", {"reason": "all sent"})
    assert ended.status_code == 200 and ended.json["job_id"]
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.fields["ended"] == "1"


def test_v1_refuses_recipients_for_a_segment_send_and_after_a_cancel(
    client: FlaskClient, services: Services
) -> None:
    from tests.conftest import API_TOKEN

    segment = client.post(
        "/v1/distributions",
        json={"segment": "Lapsed 90 days", "redeemable": "Free Coffee"},
        headers={"Authorization": f"Bearer {API_TOKEN}", "Idempotency-Key": "seg-1"},
    ).json["distribution_id"]
    refused = v1(client, f"{segment}/recipients", {"user_ids": [1]})
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "not_an_audience_send"
    assert v1(client, "nope/recipients", {"user_ids": [1]}).status_code == 404
    dist_id = open_send(client, "aud-2")
    v1(client, f"{dist_id}/recipients", {"user_ids": [880001, 880002]})
    assert v1(client, f"{dist_id}/cancel").status_code == 200
    assert pending(services, dist_id) == 0  # a cancelled send's guests are forgotten at once
    assert v1(client, f"{dist_id}/recipients", {"user_ids": [1]}).status_code == 409


def test_commit_partial_needs_a_failed_audience_send_with_guests_added(
    client: FlaskClient, services: Services
) -> None:
    dist_id = open_send(client, "aud-3")
    v1(client, f"{dist_id}/recipients", {"user_ids": [880001, 880002, 880003]})
    early = v1(client, f"{dist_id}/commit-partial")
    assert early.status_code == 409
    services.ledger.transition(dist_id, State.FAILED, fields={"audience_added": 1})
    partial = v1(client, f"{dist_id}/commit-partial", {"reason": "Punchh keeps refusing"})
    assert partial.status_code == 200, partial.json
    assert partial.json["state"] == "queued" and partial.json["job_id"]
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.int_field("audience_not_added") == 3
    assert pending(services, dist_id) == 0


def test_sfmc_validate_checks_the_offer_and_the_identifier_binding_not_a_segment(
    client: FlaskClient,
) -> None:
    from tests.sfmc_sim import lifecycle_claims

    def validate(args: dict[str, Any]):  # type: ignore[no-untyped-def]
        claims = lifecycle_claims(arguments={"execute": {"inArguments": [args]}})
        return client.post(
            "/sfmc/validate", data=sign(claims), headers={"Content-Type": "application/jwt"}
        )

    offer = {"punchh_audience": "recipients", "punchh_redeemable": "Free Coffee"}
    unbound = validate(offer)
    assert unbound.status_code == 400
    assert "bind each contact's Punchh user id" in unbound.json["error"]["message"]
    fixed = validate({**offer, "punchh_user_id": "880001"})
    assert fixed.status_code == 400 and "fixed value" in fixed.json["error"]["message"]
    bound = validate({**offer, "email": "{{Contact.Attribute.Guests.email}}"})
    assert bound.status_code == 200, bound.json
    unknown = validate({**offer, "punchh_redeemable": "No Such Offer",
                        "punchh_user_id": "{{Contact.Attribute.Guests.punchh_user_id}}"})
    assert unknown.status_code == 400 and "No Such Offer" in unknown.json["error"]["message"]


def test_the_send_page_and_v1_show_the_audience_counts_never_an_identifier(
    client: FlaskClient, services: Services
) -> None:
    from tests.conftest import API_TOKEN

    dist_id = open_send(client, "aud-page")
    v1(client, f"{dist_id}/recipients", {"user_ids": [880001, 880002], "emails": [SECRET_IDS[1]]})
    shown = client.get(f"/v1/distributions/{dist_id}",
                       headers={"Authorization": f"Bearer {API_TOKEN}"}).json
    assert shown["audience"]["waiting"] == 3 and shown["audience"]["added"] == 0
    assert shown["audience"]["custom_segment_id"] is None
    page = client.get(f"/status/send/{dist_id}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    text = page.get_data(as_text=True)
    assert "Gifts this send's own recipients" in text and "3 on their way" in text
    assert leaked(text + str(shown), ["880001", SECRET_IDS[1]]) == []
