"""Configuration is read once from the environment and fails loudly when incomplete."""

from __future__ import annotations

import pytest

from connector import create_app
from connector.config import DEFAULT_USER_AGENT, ConfigError, Settings

FULL = {
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "PUNCHH_BASE_URL": "https://sandbox.punchh.example/",
    "PUNCHH_API_KEY": "k",
    "API_TOKEN": "a, b ,",
}


def test_reads_required_values_and_defaults() -> None:
    s = Settings.from_env(FULL)
    assert s.punchh_base_url == "https://sandbox.punchh.example"
    assert s.api_tokens == ("a", "b")
    assert s.punchh_user_agent == DEFAULT_USER_AGENT
    assert s.punchh_user_agent.split("/")[1] == "Connector"
    assert s.retention_seconds == 7 * 86400
    assert s.fanout_limit == 3 and s.fanout_window_seconds == 3600
    assert (s.ledger_durability, s.ledger_durability_timeout_ms) == ("auto", 1000)


def test_missing_values_are_all_named() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"REDIS_URL": "redis://x"})
    message = str(info.value)
    for name in ("PUNCHH_BASE_URL", "PUNCHH_API_KEY", "API_TOKEN"):
        assert name in message
    assert "REDIS_URL" not in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("COMMIT_MAX_ATTEMPTS", "many", "COMMIT_MAX_ATTEMPTS must be a int"),
        ("COMMIT_MAX_ATTEMPTS", "0", "COMMIT_MAX_ATTEMPTS must be at least 1"),
        ("RETRY_BASE_SECONDS", "-1", "RETRY_BASE_SECONDS must not be negative"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a redis://"),
        ("PUNCHH_BASE_URL", "punchh.com", "PUNCHH_BASE_URL must start with https://"),
        ("SEND_KEY_TIMEZONE", "Mars/Olympus", "is not a known zone"),
        ("LEDGER_DURABILITY", "sometimes", "LEDGER_DURABILITY must be one of auto, replica"),
        ("LEDGER_DURABILITY_TIMEOUT_MS", "0", "LEDGER_DURABILITY_TIMEOUT_MS must be between 1"),
        ("LEDGER_DURABILITY_TIMEOUT_MS", "9000", "must be between 1 and 4000"),
    ],
)
def test_malformed_values_are_refused(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        Settings.from_env({**FULL, name: value})


def test_app_factory_fails_at_start_up_without_configuration() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL is required"):
        create_app({})


def test_rediss_urls_skip_certificate_checks() -> None:
    from connector.services import connect_redis

    client = connect_redis("rediss://user:pw@redis.example:6380/0")
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == "none"
    explicit = connect_redis("rediss://redis.example:6380/0?ssl_cert_reqs=required")
    assert explicit.connection_pool.connection_kwargs["ssl_cert_reqs"] == "required"


def test_secrets_do_not_show_in_repr() -> None:
    s = Settings.from_env({**FULL, "PUNCHH_API_KEY": "very-secret-key"})
    assert "very-secret-key" not in repr(s)
