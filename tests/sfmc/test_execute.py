"""One contact reaching the activity (connector/sfmc/execute.py)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from connector import create_app
from tests.sfmc.support import ACTIVITY, JOURNEY, JWT_TYPE, execute, post_jwt
from tests.sfmc_sim import (
    execute_claims,
    sign,
)
from wiring.services import Services
from wiring.settings import Settings

# The fixture secrets are short; Journey Builder's real signing secrets are long.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


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
