"""The configuration UI's API behind the Marketing Cloud token (connector/sfmc/ui_api.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import redis
from flask.testing import FlaskClient

from connector import create_app
from tests.sfmc.support import ACTIVITY, post_jwt, record
from tests.sfmc_sim import (
    GOOD_TOKEN,
    SimMC,
    lifecycle_claims,
    start_mc,
)
from wiring.services import Services
from wiring.settings import Settings

# The fixture secrets are short; Journey Builder's real signing secrets are long.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


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
