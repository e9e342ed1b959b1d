"""Configuration is read once from the environment and fails loudly when incomplete."""

from __future__ import annotations

import pytest

from connector import create_app
from wiring.settings import DEFAULT_USER_AGENT, LOCK_MARGIN_SECONDS, ConfigError, Settings

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
    assert s.fanout_limit == 1 and s.fanout_window_seconds == 3600
    assert s.send_gap_seconds == 1800 and s.send_repeat_hold_seconds == 43200
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
        ("SEND_GAP_SECONDS", "0", "SEND_GAP_SECONDS must be at least 1"),
        ("SEND_REPEAT_HOLD_SECONDS", "60", "must be 0 \\(off\\) or at least SEND_GAP_SECONDS"),
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
    from wiring.services import connect_redis

    client = connect_redis("rediss://user:pw@redis.example:6380/0")
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == "none"
    explicit = connect_redis("rediss://redis.example:6380/0?ssl_cert_reqs=required")
    assert explicit.connection_pool.connection_kwargs["ssl_cert_reqs"] == "required"


def test_secrets_do_not_show_in_repr() -> None:
    s = Settings.from_env({**FULL, "PUNCHH_API_KEY": "very-secret-key"})
    assert "very-secret-key" not in repr(s)


def test_commit_lock_must_outlast_the_punchh_calls_it_covers() -> None:
    """Lock ≥ 2 x (connect + read) + margin: the longer stretch between taking the lock and
    renewing it is resolving, one list page of segments and one of redeemables."""
    slow = {**FULL, "PUNCHH_CONNECT_TIMEOUT": "5", "PUNCHH_READ_TIMEOUT": "20"}
    needed = 2 * (5 + 20) + LOCK_MARGIN_SECONDS
    assert Settings.from_env({**slow, "COMMIT_LOCK_SECONDS": str(needed)}).commit_lock_seconds
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**slow, "COMMIT_LOCK_SECONDS": str(needed - 1)})
    message = str(info.value)
    assert f"COMMIT_LOCK_SECONDS ({needed - 1}) must be at least {needed}" in message
    assert "PUNCHH_CONNECT_TIMEOUT" in message and "PUNCHH_READ_TIMEOUT" in message
    # A slower Punchh needs a longer lock: raising the read timeout alone is refused.
    with pytest.raises(ConfigError, match="COMMIT_LOCK_SECONDS"):
        Settings.from_env({**FULL, "PUNCHH_READ_TIMEOUT": "60"})


def test_shipped_and_test_defaults_pass_the_lock_rule() -> None:
    """The defaults, app.json's values and the tests' base environment all start."""
    import json
    from pathlib import Path

    from tests.conftest import base_env

    assert Settings.from_env(FULL).commit_lock_seconds == 120
    app_env = json.loads((Path(__file__).parent.parent / "app.json").read_text())["env"]
    shipped = {k: v["value"] for k, v in app_env.items() if v.get("value")}
    Settings.from_env({**shipped, **FULL})
    Settings.from_env(base_env("redis://127.0.0.1:6379/14", "http://127.0.0.1:1"))


def test_audience_mode_settings_default_to_the_send_rule() -> None:
    s = Settings.from_env(FULL)
    assert s.audience_quiet == s.send_gap_seconds == 1800
    assert s.audience_late_margin_seconds == 120
    assert s.audience_custom_segment_id_fallback is False
    tuned = Settings.from_env(
        {**FULL, "AUDIENCE_QUIET_SECONDS": "45", "AUDIENCE_CUSTOM_SEGMENT_ID_FALLBACK": "on"}
    )
    assert (tuned.audience_quiet, tuned.audience_custom_segment_id_fallback) == (45, True)


def test_a_late_margin_past_punchhs_lead_would_make_every_late_recipient_late() -> None:
    with pytest.raises(ConfigError, match="AUDIENCE_LATE_MARGIN_SECONDS must be below 900"):
        Settings.from_env({**FULL, "AUDIENCE_LATE_MARGIN_SECONDS": "900"})
