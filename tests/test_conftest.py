"""The shared fixtures: a test marked `no_sandbox` runs the app on Redis without a sandbox."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
from flask.testing import FlaskClient

from tests.conftest import NO_SANDBOX, OFFLINE_PUNCHH_URL, auth, pytest_collection_modifyitems
from wiring.services import Services
from wiring.settings import Settings

HERE = "tests/test_conftest.py"


@pytest.mark.no_sandbox
def test_the_intake_runs_without_punchh(client: FlaskClient, services: Services) -> None:
    assert services.settings.punchh_base_url == OFFLINE_PUNCHH_URL
    body = {"segment": "Lapsed 90 days", "redeemable": "Free Coffee"}
    reply = client.post("/v1/distributions", json=body, headers={**auth(), "Idempotency-Key": "k"})
    assert reply.status_code == 202, reply.json
    assert services.ledger.get("api:default:k") is not None
    assert client.get("/readyz").status_code == 200


def test_pure_settings_need_neither_redis_nor_a_sandbox(pure_settings: Settings) -> None:
    assert pure_settings.punchh_base_url == OFFLINE_PUNCHH_URL


def test_pure_tests_start_no_sandbox_process() -> None:
    chosen = [f"{HERE}::test_the_intake_runs_without_punchh", "tests/punchh/test_catalog.py"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--setup-show", *chosen],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "sandbox_proc" not in run.stdout  # the fixture that starts the process


@pytest.mark.parametrize(
    ("fixtures", "refused"),
    [(["client", "settings", "rdb"], False), (["worker", "sandbox", "sandbox_proc"], True)],
    ids=["the-app-on-redis", "a-worker"],
)
def test_a_no_sandbox_test_that_asks_for_the_sandbox_is_refused(
    fixtures: list[str], refused: bool
) -> None:
    marked = pytest.mark.no_sandbox.mark
    item = SimpleNamespace(
        nodeid="tests/test_x.py::test_x",
        fixturenames=fixtures,
        get_closest_marker=lambda name: marked if name == NO_SANDBOX else None,
    )
    if refused:
        with pytest.raises(pytest.UsageError, match="test_x is marked no_sandbox"):
            pytest_collection_modifyitems([item])  # type: ignore[list-item]
    else:
        pytest_collection_modifyitems([item])  # type: ignore[list-item]
