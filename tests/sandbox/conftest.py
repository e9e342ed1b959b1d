"""Sandbox fixtures: a fresh app's test client, and one app served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from flask.testing import FlaskClient

from sandbox.app import create_app
from tests.sandbox.support import ADMIN, serving


@pytest.fixture
def sb() -> FlaskClient:
    """A test client on a fresh sandbox built from the packaged seed."""
    return create_app().test_client()


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """A threaded werkzeug server on a free port, in this process, for the module."""
    with serving() as url:
        yield url


@pytest.fixture
def live(served: str) -> Iterator[httpx.Client]:
    """An httpx client on the served sandbox, reset first."""
    with httpx.Client(base_url=served, headers=ADMIN, timeout=5) as client:
        client.post("/_sandbox/reset").raise_for_status()
        yield client
