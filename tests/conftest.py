"""Shared fixtures: a Redis database of our own, the Punchh sandbox, the app, real processes.

The sandbox process starts only for a test whose fixtures need it. A test marked
`no_sandbox` gets the same settings, services and app pointed at an address where nothing
listens, so a test that reaches Punchh after all fails loudly instead of starting one; a test
that needs settings and nothing else takes `pure_settings` (no Redis, no sandbox).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from connector import create_app
from tests.procs import Proc, free_port, start_gunicorn, start_redis, start_sandbox, start_worker
from wiring.services import Services
from wiring.settings import Settings
from workers import context

#: Tests use their own database index and flush only it (never the shared default db 0).
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
SANDBOX_KEY = "sandbox-admin-key"
API_TOKEN = "test-api-token"
#: Where a test that needs no sandbox finds "Punchh": the discard port, where nothing answers.
OFFLINE_PUNCHH_URL = "http://127.0.0.1:9"
#: The marker that keeps the sandbox process away from a test.
NO_SANDBOX = "no_sandbox"


def needs_sandbox(request: pytest.FixtureRequest) -> bool:
    """Whether this test may start the sandbox (every test but those marked `no_sandbox`)."""
    return request.node.get_closest_marker(NO_SANDBOX) is None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a test marked `no_sandbox` whose fixtures start the sandbox all the same."""
    for item in items:
        if item.get_closest_marker(NO_SANDBOX) and "sandbox_proc" in getattr(
            item, "fixturenames", ()
        ):
            raise pytest.UsageError(
                f"{item.nodeid} is marked {NO_SANDBOX} but its fixtures start the sandbox"
            )


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis URL tests use; skips nothing: Redis must be running."""
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.ping()
    return TEST_REDIS_URL


@pytest.fixture
def rdb(redis_url: str) -> Iterator[redis.Redis]:
    """A clean test database, flushed before and after each test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def sandbox_proc() -> Iterator[Proc]:
    """One Punchh sandbox process for the session."""
    proc = start_sandbox()
    yield proc
    proc.stop()


@pytest.fixture
def sandbox_url(sandbox_proc: Proc) -> str:
    """The running sandbox's base URL (starts it on first use)."""
    return sandbox_proc.url


@pytest.fixture
def sandbox(sandbox_proc: Proc) -> Iterator[httpx.Client]:
    """An HTTP client on the sandbox, reset to its seed before the test."""
    with httpx.Client(base_url=sandbox_proc.url, timeout=10) as client:
        client.post("/_sandbox/reset").raise_for_status()
        yield client


def base_env(
    redis_url: str, sandbox_url: str = OFFLINE_PUNCHH_URL, **extra: str
) -> dict[str, str]:
    """Environment for a connector process pointed at the sandbox and the test Redis."""
    env = {
        "REDIS_URL": redis_url,
        "PUNCHH_BASE_URL": sandbox_url,
        "PUNCHH_API_KEY": SANDBOX_KEY,
        "API_TOKEN": API_TOKEN,
        "BRAZE_WEBHOOK_TOKEN": "braze-token-1,braze-token-2",
        "SFMC_JWT_SECRET": "sfmc-secret-one,sfmc-secret-two",
        "PUNCHH_READ_TIMEOUT": "3",
        "PUNCHH_CONNECT_TIMEOUT": "2",
        "RETRY_BASE_SECONDS": "0.2",
        "RETRY_MAX_SECONDS": "5",
        "COMMIT_MAX_ATTEMPTS": "4",
        "LIST_CACHE_SECONDS": "0",
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


@pytest.fixture
def env(request: pytest.FixtureRequest, redis_url: str) -> dict[str, str]:
    """The connector's environment for this test (mutable before the app is built)."""
    # Asked for by name, not as a parameter, so that a `no_sandbox` test never starts one.
    if needs_sandbox(request):
        return base_env(redis_url, request.getfixturevalue("sandbox_url"))
    return base_env(redis_url)


@pytest.fixture
def settings(request: pytest.FixtureRequest, env: dict[str, str], rdb: redis.Redis) -> Settings:
    """Settings from the test environment, with a clean Redis and a reset sandbox."""
    if needs_sandbox(request):
        request.getfixturevalue("sandbox")
    return Settings.from_env(env)


@pytest.fixture
def pure_settings() -> Settings:
    """Settings for a test that touches neither Redis nor the sandbox."""
    return Settings.from_env(base_env(TEST_REDIS_URL))


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """Services for in-process use (jobs run directly, not through a worker)."""
    built = Services.build(settings)
    context.use(built)
    yield built
    context.use(None)
    built.redis.close()


@pytest.fixture
def app(settings: Settings, services: Services) -> Flask:
    """The Flask app, sharing the in-process services."""
    flask_app = create_app(settings, services=services)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def worker(env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client) -> Iterator[Proc]:
    """A real `python -m workers` process (RQ worker with the scheduler)."""
    proc = start_worker(env)
    yield proc
    proc.stop()


@pytest.fixture
def web(env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client) -> Iterator[Proc]:
    """The connector under gunicorn with the production config."""
    proc = start_gunicorn(env)
    yield proc
    proc.stop()


def auth(token: str = API_TOKEN) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the reliability scenarios' figures after the run."""
    from tests import summary

    if summary.ROWS:
        terminalreporter.section("reliability summary")
        terminalreporter.write_line(summary.render())


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[Proc, int, Path]]:
    """A redis-server of the test's own, on a free port, persisting to an append-only file."""
    port = free_port()
    proc = start_redis(port, tmp_path)
    yield proc, port, tmp_path
    proc.stop()
