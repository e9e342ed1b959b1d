"""Settings read once from the environment; missing required values fail at start-up."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wiring.version import __version__

DEFAULT_USER_AGENT = f"PunchhConnector/Connector/{__version__}"
#: LEDGER_DURABILITY's values (ledger/durability.py explains each).
DURABILITY_MODES = ("auto", "replica", "aof", "both", "none")
#: Longest LEDGER_DURABILITY_TIMEOUT_MS: under the Redis client's 5 s socket timeout.
MAX_DURABILITY_TIMEOUT_MS = 4000

#: Punchh calls a commit attempt may make, each at its full connect + read timeout, between
#: taking the per-distribution lock and renewing it: the worker takes the lock, resolves both
#: names (one list page of segments, one of redeemables), then renews the lock before the
#: POST, which is one call. Resolving is the longer stretch, so it sets the rule.
LOCKED_PUNCHH_CALLS = 2
#: Headroom on top of the Punchh calls for the ledger writes around them and for scheduling.
LOCK_MARGIN_SECONDS = 5
#: What DEPLOYMENT_ENVIRONMENT may say; only the release check reads it.
DEPLOYMENT_ENVIRONMENTS = ("production", "development")
#: Punchh refuses a start time less than this far ahead (documented: 15 minutes).
PUNCHH_MIN_LEAD_SECONDS = 900


class ConfigError(RuntimeError):
    """The environment does not describe a runnable connector."""


def _split(value: str) -> tuple[str, ...]:
    """Comma-separated list, blanks dropped: several tokens or secrets allow rotation."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Everything the web tier and the workers need to know about their environment."""

    redis_url: str
    punchh_base_url: str
    punchh_api_key: str = field(repr=False)
    api_tokens: tuple[str, ...] = field(repr=False)
    punchh_user_agent: str = DEFAULT_USER_AGENT
    braze_webhook_tokens: tuple[str, ...] = field(default=(), repr=False)
    sfmc_jwt_secrets: tuple[str, ...] = field(default=(), repr=False)
    sfmc_rest_base_url: str = ""
    sfmc_allow_plain_json: bool = False
    deployment_environment: str = "production"
    sfmc_token_cache_seconds: int = 300
    sfmc_dedupe_seconds: int = 120
    punchh_connect_timeout: float = 5.0
    punchh_read_timeout: float = 20.0
    punchh_per_page: int = 50
    start_time_margin_seconds: int = 120
    commit_max_attempts: int = 8
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 600.0
    commit_lock_seconds: int = 120
    list_cache_seconds: int = 60
    retention_days: int = 7
    fanout_limit: int = 1
    fanout_window_seconds: int = 3600
    send_gap_seconds: int = 1800
    send_repeat_hold_seconds: int = 43200
    send_key_timezone: str = "UTC"
    audience_quiet_seconds: int = 0
    audience_late_margin_seconds: int = 120
    audience_custom_segment_id_fallback: bool = False
    max_body_bytes: int = 64 * 1024
    queue_name: str = "punchh"
    key_prefix: str = "pc:"
    sweep_stale_seconds: int = 60
    auth_lockout_seconds: int = 600
    alert_webhook_url: str = ""
    trusted_proxy_count: int = 1
    log_level: str = "INFO"
    ledger_durability: str = "auto"
    ledger_durability_timeout_ms: int = 1000

    @property
    def retention_seconds(self) -> int:
        """How long a finished distribution stays readable."""
        return self.retention_days * 86400

    @property
    def min_commit_lock_seconds(self) -> int:
        """The shortest COMMIT_LOCK_SECONDS that outlasts the Punchh calls it covers."""
        calls = LOCKED_PUNCHH_CALLS * (self.punchh_connect_timeout + self.punchh_read_timeout)
        return math.ceil(calls) + LOCK_MARGIN_SECONDS

    @property
    def audience_quiet(self) -> int:
        """How long an audience send goes without a recipient before it is over and committed."""
        return self.audience_quiet_seconds or self.send_gap_seconds

    @property
    def timezone(self) -> ZoneInfo:
        """The zone in which a followed send's key names the moment it began."""
        return ZoneInfo(self.send_key_timezone)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the environment; raise ConfigError naming every missing or malformed value."""
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is required")
            return value

        def number(name: str, default: Any, kind: type[int] | type[float]) -> Any:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                problems.append(f"{name} must be a {kind.__name__}, got {raw!r}")
                return default
            if value < 0:
                problems.append(f"{name} must not be negative")
            return value

        def flag(name: str) -> bool:
            return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}

        defaults = {f.name: f.default for f in fields(cls)}
        settings = cls(
            redis_url=required("REDIS_URL"),
            punchh_base_url=required("PUNCHH_BASE_URL").rstrip("/"),
            punchh_api_key=required("PUNCHH_API_KEY"),
            api_tokens=_split(required("API_TOKEN")),
            punchh_user_agent=env.get("PUNCHH_USER_AGENT", "").strip() or DEFAULT_USER_AGENT,
            braze_webhook_tokens=_split(env.get("BRAZE_WEBHOOK_TOKEN", "")),
            sfmc_jwt_secrets=_split(env.get("SFMC_JWT_SECRET", "")),
            sfmc_rest_base_url=env.get("SFMC_REST_BASE_URL", "").strip().rstrip("/"),
            sfmc_allow_plain_json=flag("SFMC_ALLOW_PLAIN_JSON"),
            deployment_environment=(
                env.get("DEPLOYMENT_ENVIRONMENT", "").strip().lower() or "production"
            ),
            sfmc_token_cache_seconds=number(
                "SFMC_TOKEN_CACHE_SECONDS", defaults["sfmc_token_cache_seconds"], int
            ),
            sfmc_dedupe_seconds=number("SFMC_DEDUPE_SECONDS", defaults["sfmc_dedupe_seconds"], int),
            punchh_connect_timeout=number(
                "PUNCHH_CONNECT_TIMEOUT", defaults["punchh_connect_timeout"], float
            ),
            punchh_read_timeout=number(
                "PUNCHH_READ_TIMEOUT", defaults["punchh_read_timeout"], float
            ),
            punchh_per_page=number("PUNCHH_PER_PAGE", defaults["punchh_per_page"], int),
            start_time_margin_seconds=number(
                "START_TIME_MARGIN_SECONDS", defaults["start_time_margin_seconds"], int
            ),
            commit_max_attempts=number("COMMIT_MAX_ATTEMPTS", defaults["commit_max_attempts"], int),
            retry_base_seconds=number("RETRY_BASE_SECONDS", defaults["retry_base_seconds"], float),
            retry_max_seconds=number("RETRY_MAX_SECONDS", defaults["retry_max_seconds"], float),
            commit_lock_seconds=number("COMMIT_LOCK_SECONDS", defaults["commit_lock_seconds"], int),
            list_cache_seconds=number("LIST_CACHE_SECONDS", defaults["list_cache_seconds"], int),
            retention_days=number("RETENTION_DAYS", defaults["retention_days"], int),
            fanout_limit=number("FANOUT_LIMIT", defaults["fanout_limit"], int),
            fanout_window_seconds=number(
                "FANOUT_WINDOW_SECONDS", defaults["fanout_window_seconds"], int
            ),
            send_gap_seconds=number("SEND_GAP_SECONDS", defaults["send_gap_seconds"], int),
            send_repeat_hold_seconds=number(
                "SEND_REPEAT_HOLD_SECONDS", defaults["send_repeat_hold_seconds"], int
            ),
            send_key_timezone=env.get("SEND_KEY_TIMEZONE", "").strip() or "UTC",
            audience_quiet_seconds=number(
                "AUDIENCE_QUIET_SECONDS", defaults["audience_quiet_seconds"], int
            ),
            audience_late_margin_seconds=number(
                "AUDIENCE_LATE_MARGIN_SECONDS", defaults["audience_late_margin_seconds"], int
            ),
            audience_custom_segment_id_fallback=flag("AUDIENCE_CUSTOM_SEGMENT_ID_FALLBACK"),
            max_body_bytes=number("MAX_BODY_BYTES", defaults["max_body_bytes"], int),
            queue_name=env.get("QUEUE_NAME", "").strip() or "punchh",
            key_prefix=env.get("KEY_PREFIX", "").strip() or "pc:",
            sweep_stale_seconds=number("SWEEP_STALE_SECONDS", defaults["sweep_stale_seconds"], int),
            auth_lockout_seconds=number(
                "AUTH_LOCKOUT_SECONDS", defaults["auth_lockout_seconds"], int
            ),
            alert_webhook_url=env.get("ALERT_WEBHOOK_URL", "").strip(),
            trusted_proxy_count=number("TRUSTED_PROXY_COUNT", defaults["trusted_proxy_count"], int),
            log_level=(env.get("LOG_LEVEL", "").strip() or "INFO").upper(),
            ledger_durability=env.get("LEDGER_DURABILITY", "").strip().lower() or "auto",
            ledger_durability_timeout_ms=number(
                "LEDGER_DURABILITY_TIMEOUT_MS", defaults["ledger_durability_timeout_ms"], int
            ),
        )
        if settings.punchh_base_url and not settings.punchh_base_url.startswith(
            ("http://", "https://")
        ):
            problems.append("PUNCHH_BASE_URL must start with https:// (or http:// for a sandbox)")
        if settings.redis_url and not settings.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            problems.append("REDIS_URL must be a redis://, rediss:// or unix:// URL")
        if settings.commit_max_attempts < 1:
            problems.append("COMMIT_MAX_ATTEMPTS must be at least 1")
        if settings.ledger_durability not in DURABILITY_MODES:
            problems.append(
                f"LEDGER_DURABILITY must be one of {', '.join(DURABILITY_MODES)}, "
                f"got {settings.ledger_durability!r}"
            )
        if not 1 <= settings.ledger_durability_timeout_ms <= MAX_DURABILITY_TIMEOUT_MS:
            # WAIT blocks the Redis connection: it must end well inside the socket timeout.
            problems.append(
                f"LEDGER_DURABILITY_TIMEOUT_MS must be between 1 and {MAX_DURABILITY_TIMEOUT_MS}"
            )
        if settings.fanout_limit < 1:
            problems.append("FANOUT_LIMIT must be at least 1")
        if settings.send_gap_seconds < 1:
            problems.append("SEND_GAP_SECONDS must be at least 1")
        if 0 < settings.send_repeat_hold_seconds < settings.send_gap_seconds:
            # A send that is still open is never repeated, so a hold shorter than the gap
            # could never act: a setting that means nothing is a mistake worth naming.
            problems.append(
                "SEND_REPEAT_HOLD_SECONDS must be 0 (off) or at least SEND_GAP_SECONDS"
            )
        if settings.audience_late_margin_seconds >= PUNCHH_MIN_LEAD_SECONDS:
            # The commit's start time is at least 15 minutes ahead: a margin that long would
            # make every recipient arriving after the commit late.
            problems.append(
                f"AUDIENCE_LATE_MARGIN_SECONDS must be below {PUNCHH_MIN_LEAD_SECONDS}"
            )
        if settings.deployment_environment not in DEPLOYMENT_ENVIRONMENTS:
            problems.append(
                f"DEPLOYMENT_ENVIRONMENT must be one of {', '.join(DEPLOYMENT_ENVIRONMENTS)}, "
                f"got {settings.deployment_environment!r}"
            )
        if settings.commit_lock_seconds < settings.min_commit_lock_seconds:
            # A lock that lapses while its worker still waits on Punchh lets the sweeper hand
            # the send to another run: during resolving that run wins and the first attempt is
            # wasted; during the POST the second run finds `committing` and declares it
            # `unknown`, paging an operator for a campaign that was in fact being made.
            problems.append(
                f"COMMIT_LOCK_SECONDS ({settings.commit_lock_seconds}) must be at least "
                f"{settings.min_commit_lock_seconds}: {LOCKED_PUNCHH_CALLS} x "
                "(PUNCHH_CONNECT_TIMEOUT + PUNCHH_READ_TIMEOUT) + "
                f"{LOCK_MARGIN_SECONDS} s, so a worker still waiting on Punchh keeps its lock"
            )
        try:
            settings.timezone  # noqa: B018 - validates the zone name once, at start-up
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"SEND_KEY_TIMEZONE {settings.send_key_timezone!r} is not a known zone")
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return settings

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some values changed (tests and the CLI use this)."""
        return replace(self, **changes)
