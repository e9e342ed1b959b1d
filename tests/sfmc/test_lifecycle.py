"""Save, publish, stop and validate (connector/sfmc/lifecycle.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from tests.sfmc.support import ACTIVITY, JOURNEY, execute, keys, post_jwt, record
from tests.sfmc_sim import lifecycle_claims
from wiring.services import Services

# The fixture secrets are short; Journey Builder's real signing secrets are long.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


# --- lifecycle ----------------------------------------------------------------------------


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
