"""The /v1 admin API end to end: each operation on a real ledger, Punchh sandbox and commit job."""

from __future__ import annotations

import time

import httpx
import pytest
from flask.testing import FlaskClient
from rq.job import Job

from ledger.states import State
from tests.conftest import auth
from tests.helpers import campaigns, dist_request, fault, submit
from wiring.services import Services
from workers.commit import Committer

OPERATOR = {**auth(), "X-Actor": "alice"}


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """One attempt per commit, so a 500 from Punchh makes a `failed` distribution at once."""
    env["COMMIT_MAX_ATTEMPTS"] = "1"
    return env


def state_of(services: Services, dist_id: str) -> str:
    dist = services.ledger.get(dist_id)
    assert dist is not None
    return dist.state


def run_job(services: Services, dist_id: str) -> str:
    """What the worker does with the queued commit job (in-process)."""
    return Committer(services).run(dist_id)


def make_failed(services: Services, sandbox: httpx.Client, key: str = "f-1") -> str:
    fault(sandbox, "campaigns", "500")
    dist_id = submit(services, dist_request(key)).distribution_id
    assert run_job(services, dist_id) == State.FAILED
    return dist_id


def make_unknown(services: Services, sandbox: httpx.Client, mode: str, key: str = "u-1") -> str:
    fault(sandbox, "campaigns", mode)
    dist_id = submit(services, dist_request(key)).distribution_id
    assert run_job(services, dist_id) == State.UNKNOWN
    return dist_id


def make_held(services: Services, key: str = "h-4") -> str:
    # The fan-out guard allows one send key per campaign per hour; the second is held.
    submit(services, dist_request("h-1", source="braze"))
    result = submit(services, dist_request(key, source="braze"))
    assert result.state == State.HELD
    return result.distribution_id


def last_event(client: FlaskClient, dist_id: str) -> dict:  # type: ignore[type-arg]
    shown = client.get(f"/v1/distributions/{dist_id}", headers=auth())
    assert shown.status_code == 200
    return shown.json["events"][-1]  # type: ignore[no-any-return,index]


def test_admin_routes_need_the_api_token(client: FlaskClient, services: Services) -> None:
    assert client.get("/v1/distributions").status_code == 401
    assert client.post("/v1/distributions/x/retry").status_code == 401
    assert client.post("/v1/check", headers=auth("wrong")).status_code == 401


def test_list_filters_by_state_source_time_and_limit(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    submit(services, dist_request("a-1"))
    time.sleep(0.01)
    middle = time.time()
    submit(services, dist_request("b-1", source="braze"))
    failed = make_failed(services, sandbox, "a-2")

    everything = client.get("/v1/distributions", headers=auth()).json
    assert everything["count"] == 3
    assert everything["items"][0]["distribution_id"] == failed  # newest first

    def ids(query: str) -> set[str]:
        reply = client.get(f"/v1/distributions?{query}", headers=auth())
        assert reply.status_code == 200, reply.json
        return {d["distribution_id"] for d in reply.json["items"]}

    assert ids("state=failed") == {failed}
    assert ids("state=failed,queued") == {failed, "api:camp-1:a-1", "braze:camp-1:b-1"}
    assert ids("source=braze") == {"braze:camp-1:b-1"}
    assert ids(f"since={middle}") == {"braze:camp-1:b-1", failed}
    assert ids(f"until={middle}") == {"api:camp-1:a-1"}
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    assert ids(f"since={iso}") == set()
    assert len(ids("limit=1")) == 1
    for bad in ("state=nope", "limit=0", "limit=x", "since=yesterday"):
        reply = client.get(f"/v1/distributions?{bad}", headers=auth())
        assert reply.status_code == 400, bad
        assert reply.json["error"]["code"] in {"invalid_state", "invalid_query"}


def test_retry_failed_commits_it_and_records_who(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    dist_id = make_failed(services, sandbox)
    assert campaigns(sandbox) == []
    reply = client.post(
        f"/v1/distributions/{dist_id}/retry", json={"reason": "Punchh is back"}, headers=OPERATOR
    )
    assert reply.status_code == 200, reply.json
    assert reply.json["state_before"] == "failed" and reply.json["state"] == "queued"
    assert reply.json["job_id"] and reply.json["actor"] == "alice"
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.int_field("attempts") == 0
    event = last_event(client, dist_id)
    assert event["by"] == "alice" and event["to"] == "queued"
    assert "attempts reset from 1" in event["note"] and "Punchh is back" in event["note"]
    job = Job.fetch(reply.json["job_id"], connection=services.redis)
    assert job.args == (dist_id,) or list(job.args) == [dist_id]
    assert reply.json["job_id"] in services.queue.get_job_ids()

    assert run_job(services, dist_id) == State.COMMITTED
    assert len(campaigns(sandbox)) == 1
    again = client.post(f"/v1/distributions/{dist_id}/retry", headers=OPERATOR)
    assert again.status_code == 409
    assert again.json["error"]["code"] == "wrong_state"


def test_retry_leaves_a_recent_auth_lockout_to_an_explicit_unlock(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    lockout = f"{services.settings.key_prefix}punchh:auth_refused"
    dist_id = make_failed(services, sandbox)
    services.redis.set(lockout, "Punchh answered 401", ex=600)
    refused = client.post(f"/v1/distributions/{dist_id}/retry", headers=OPERATOR)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "punchh_locked_out"
    assert "punchh-unlock" in refused.json["error"]["message"]
    assert services.redis.exists(lockout)
    assert services.ledger.get(dist_id).state == State.FAILED  # type: ignore[union-attr]
    unlock = client.post("/v1/punchh/unlock", headers=OPERATOR)
    assert unlock.status_code == 200 and unlock.json["cleared"] is True
    assert not services.redis.exists(lockout)
    assert client.post(f"/v1/distributions/{dist_id}/retry", headers=OPERATOR).status_code == 200
    assert run_job(services, dist_id) == State.COMMITTED


def test_resolve_with_campaign_id_and_undo(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    # Punchh created the campaign, then the connection dropped: the connector cannot know.
    dist_id = make_unknown(services, sandbox, "commit_drop")
    made = campaigns(sandbox)
    assert len(made) == 1
    found = made[0]["campaign_id"]

    both = client.post(
        f"/v1/distributions/{dist_id}/resolve",
        json={"campaign_id": found, "not_created": True},
        headers=OPERATOR,
    )
    assert both.status_code == 400
    assert client.post(f"/v1/distributions/{dist_id}/resolve", headers=OPERATOR).status_code == 400

    reply = client.post(
        f"/v1/distributions/{dist_id}/resolve", json={"campaign_id": found}, headers=OPERATOR
    )
    assert reply.status_code == 200, reply.json
    shown = client.get(f"/v1/distributions/{dist_id}", headers=auth()).json
    assert shown["state"] == "committed" and shown["campaign_id"] == found
    assert shown["last_error"] is None

    undone = client.post(
        f"/v1/distributions/{dist_id}/undo", json={"reason": "wrong id"}, headers=OPERATOR
    )
    assert undone.status_code == 200, undone.json
    shown = client.get(f"/v1/distributions/{dist_id}", headers=auth()).json
    assert shown["state"] == "unknown" and shown["campaign_id"] is None
    assert "may exist in Punchh" in shown["last_error"] or shown["last_error"]
    assert [e["by"] for e in shown["events"][-2:]] == ["alice", "alice"]
    assert shown["events"][-1]["note"].startswith("undo resolve")
    # Nothing left to undo; the job for an unknown distribution never posts again.
    assert client.post(f"/v1/distributions/{dist_id}/undo", headers=OPERATOR).status_code == 409
    assert run_job(services, dist_id) == State.UNKNOWN
    assert len(campaigns(sandbox)) == 1


def test_resolve_not_created_commits_once(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    dist_id = make_unknown(services, sandbox, "504")  # 504: Punchh created nothing here
    assert campaigns(sandbox) == []
    reply = client.post(
        f"/v1/distributions/{dist_id}/resolve", json={"not_created": True}, headers=OPERATOR
    )
    assert reply.status_code == 200, reply.json
    assert reply.json["state"] == "queued" and reply.json["job_id"]
    assert run_job(services, dist_id) == State.COMMITTED
    assert len(campaigns(sandbox)) == 1
    # Once the job ran, the resolve cannot be undone.
    late = client.post(f"/v1/distributions/{dist_id}/undo", headers=OPERATOR)
    assert late.status_code == 409
    assert late.json["error"]["code"] == "cannot_undo"


def test_release_held_then_commit(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    dist_id = make_held(services)
    reply = client.post(f"/v1/distributions/{dist_id}/release", headers=OPERATOR)
    assert reply.status_code == 200, reply.json
    assert reply.json["state"] == "queued"
    assert run_job(services, dist_id) == State.COMMITTED
    made = [c for c in campaigns(sandbox) if c["body"]["external_campaign_id"] == dist_id]
    assert len(made) == 1


def test_undo_release_before_the_job_runs_puts_it_back_on_hold(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    dist_id = make_held(services)
    assert client.post(f"/v1/distributions/{dist_id}/release", headers=OPERATOR).status_code == 200
    # Recipients keep arriving meanwhile: counting them does not block the undo.
    submit(services, dist_request("h-4", source="braze"))
    undone = client.post(f"/v1/distributions/{dist_id}/undo", headers=OPERATOR)
    assert undone.status_code == 200, undone.json
    assert undone.json["state"] == "held"
    assert run_job(services, dist_id) == State.HELD  # the released job finds it held: no-op
    assert not [c for c in campaigns(sandbox) if c["body"]["external_campaign_id"] == dist_id]


def test_cancel_held_and_queued_and_undo(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    held = make_held(services)
    reply = client.post(
        f"/v1/distributions/{held}/cancel", json={"reason": "per-guest key"}, headers=OPERATOR
    )
    assert reply.status_code == 200, reply.json
    assert state_of(services, held) == State.CANCELLED
    assert client.post(f"/v1/distributions/{held}/release", headers=OPERATOR).status_code == 409
    undone = client.post(f"/v1/distributions/{held}/undo", headers=OPERATOR)
    assert undone.status_code == 200 and undone.json["state"] == "held"

    queued = submit(services, dist_request("q-1")).distribution_id
    assert client.post(f"/v1/distributions/{queued}/cancel", headers=OPERATOR).status_code == 200
    assert run_job(services, queued) == State.CANCELLED  # its job finds it cancelled
    assert campaigns(sandbox) == []
    # Undo after the job looked at it: still only `cancelled` → `queued`, and a new job.
    undone = client.post(f"/v1/distributions/{queued}/undo", headers=OPERATOR)
    assert undone.status_code == 200 and undone.json["job_id"]
    assert run_job(services, queued) == State.COMMITTED
    assert len(campaigns(sandbox)) == 1


def test_cancel_refuses_a_committed_distribution(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    dist_id = submit(services, dist_request("c-1")).distribution_id
    run_job(services, dist_id)
    reply = client.post(f"/v1/distributions/{dist_id}/cancel", headers=OPERATOR)
    assert reply.status_code == 409
    assert "committed" in reply.json["error"]["message"]


def test_actions_on_a_missing_distribution_are_404(
    client: FlaskClient, services: Services
) -> None:
    for action in ("retry", "release", "cancel", "undo"):
        reply = client.post(f"/v1/distributions/api:nope:x/{action}", headers=OPERATOR)
        assert reply.status_code == 404, action
        assert reply.json["error"]["code"] == "not_found"


def test_ids_with_slashes_route_to_the_action(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    dist_id = make_held(services, key="2026/11/25/retry")
    assert dist_id.endswith("2026/11/25/retry")
    shown = client.get(f"/v1/distributions/{dist_id}", headers=auth())
    assert shown.status_code == 200 and shown.json["state"] == "held"
    reply = client.post(f"/v1/distributions/{dist_id}/cancel", headers=OPERATOR)
    assert reply.status_code == 200 and reply.json["distribution_id"] == dist_id


def test_actor_defaults_to_api_and_is_sanitised(
    client: FlaskClient, services: Services
) -> None:
    held = make_held(services)
    client.post(f"/v1/distributions/{held}/cancel", headers=auth())
    assert last_event(client, held)["by"] == "api"
    noisy = {**auth(), "X-Actor": "bob\x07" + "x" * 99}
    client.post(f"/v1/distributions/{held}/undo", headers=noisy)
    by = last_event(client, held)["by"]
    assert by.startswith("bob") and len(by) <= 64 and "\x07" not in by


def test_action_body_must_be_json_with_known_fields(
    client: FlaskClient, services: Services
) -> None:
    held = make_held(services)
    typo = client.post(f"/v1/distributions/{held}/cancel", json={"reasn": "x"}, headers=OPERATOR)
    assert typo.status_code == 400
    text = client.post(
        f"/v1/distributions/{held}/cancel",
        data="reason",
        headers={**OPERATOR, "Content-Type": "text/plain"},
    )
    assert text.status_code == 415


def test_check_reports_each_part(client: FlaskClient, services: Services) -> None:
    reply = client.post("/v1/check", headers=auth())
    assert reply.status_code == 200
    body = reply.json
    assert body["ok"] is True
    assert [c["name"] for c in body["checks"]] == [
        "configuration", "redis", "durability", "punchh"
    ]
    text = str(body)
    for secret in ("test-api-token", "sandbox-admin-key", "braze-token-1", "sfmc-secret-one"):
        assert secret not in text
    skipped = client.post("/v1/check", json={"punchh": False}, headers=auth()).json
    assert [c["name"] for c in skipped["checks"]] == ["configuration", "redis", "durability"]


def test_check_names_a_refused_punchh_key(
    env: dict[str, str], client: FlaskClient, services: Services
) -> None:
    services.settings = services.settings.with_overrides(punchh_api_key="wrong-key")
    services._punchh = None  # rebuilt with the wrong key
    body = client.post("/v1/check", headers=auth()).json
    assert body["ok"] is False
    punchh = body["checks"][-1]
    assert punchh["name"] == "punchh" and not punchh["ok"]
    assert "refused the API key" in punchh["detail"]
    assert "wrong-key" not in str(body)
