"""The release check (`punchh-connector check`, `POST /v1/check`): what a deploy must verify.

Configuration without secrets, a Redis that never evicts a ledger record, where a Redis crash
could lose writes, Punchh reachability and key validity, and settings that must not reach
production. The Procfile's release phase runs it (without the Punchh call) and fails the deploy
when any check fails.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis

from ledger import durability
from punchh.errors import PunchhAuthError, PunchhError, PunchhLockedOut
from wiring.services import Services
from wiring.settings import Settings


@dataclass(frozen=True)
class CheckItem:
    """One line of `check`: what was checked, whether it passed, and why."""

    name: str
    ok: bool
    detail: str
    #: Passed, but something an operator should read (e.g. where a crash could lose writes).
    warning: bool = False


@dataclass
class CheckReport:
    """Every check `check` ran."""

    items: list[CheckItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(item.ok for item in self.items)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "checks": [asdict(item) for item in self.items]}


def describe_url(url: str) -> str:
    """A URL without credentials, path or query: safe to print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    db = parts.path if parts.scheme.startswith("redis") and parts.path not in ("", "/") else ""
    return f"{parts.scheme}://{host}{port}{db}"


def check_configuration(settings: Settings) -> CheckItem:
    """Settings loaded (they fail loudly otherwise): summarise them without secrets."""
    parts = [
        f"Punchh {describe_url(settings.punchh_base_url)}",
        f"Redis {describe_url(settings.redis_url)}",
        f"{len(settings.api_tokens)} API token(s)",
        f"{len(settings.braze_webhook_tokens)} Braze token(s)",
        f"{len(settings.sfmc_jwt_secrets)} SFMC secret(s)",
        "alerts " + ("on" if settings.alert_webhook_url else "off"),
        f"queue {settings.queue_name!r}",
    ]
    return CheckItem("configuration", True, ", ".join(parts))


def check_redis(services: Services) -> CheckItem:
    """PING, the server version, and an eviction policy that never drops a ledger record."""
    try:
        services.redis.ping()
        info: dict[str, Any] = services.redis.info()
    except redis.RedisError as exc:
        return CheckItem("redis", False, f"unreachable: {type(exc).__name__}: {exc}")
    version = info.get("redis_version", "?")
    policy = str(info.get("maxmemory_policy", "unknown"))
    if policy != "noeviction":
        # volatile-* policies evict keys with a TTL, and committed records carry one: a late
        # recipient would then create the send again and it would be posted a second time.
        return CheckItem(
            "redis",
            False,
            f"Redis {version} may evict keys under memory pressure (maxmemory-policy {policy}): "
            "a distribution it drops, even a committed one, can be created and posted to "
            "Punchh again; set maxmemory-policy noeviction",
        )
    return CheckItem("redis", True, f"Redis {version} answers (maxmemory-policy noeviction)")


def check_durability(services: Services) -> CheckItem:
    """Persistence, replicas and LEDGER_DURABILITY: where a Redis crash could lose writes."""
    try:
        found = durability.facts(services.redis)
        chosen = durability.resolve(services.redis, services.settings.ledger_durability)
    except durability.DurabilityUnavailable as exc:
        return CheckItem("durability", False, str(exc))
    except redis.RedisError as exc:
        return CheckItem("durability", False, f"unreachable: {type(exc).__name__}: {exc}")
    parts = [
        f"LEDGER_DURABILITY={services.settings.ledger_durability} waits for "
        + {"both": "a replica and the AOF fsync", "replica": "a replica (WAIT)",
           "aof": "the AOF fsync (WAITAOF)", "none": "nothing"}[chosen.name],
        f"{found['replicas']} connected replica(s)",
        "appendonly " + (f"yes (appendfsync {found['fsync'] or 'not reported'})"
                         if found["aof"] else "no"),
        "RDB snapshots " + ("not reported" if found["save"] is None
                            else f"'{found['save']}'" if found["save"] else "off"),
    ]
    if found["role"] != "master":
        return CheckItem(
            "durability", False, f"REDIS_URL points at a {found['role']}, not the primary"
        )
    warnings = []
    if found["replicas"] == 0 and not found["aof"]:
        warnings.append(
            "a Redis crash loses every write since the last snapshot (all of them without "
            "snapshots): accepted sends can vanish and a forgotten `committing` can post a "
            "campaign twice; add a replica or turn on appendonly"
        )
    elif chosen.name == "none":
        warnings.append(
            "nothing confirms the ledger's writes: a failover or crash right after a write "
            "can forget it (accepted sends lost, a campaign posted twice); use "
            "LEDGER_DURABILITY=auto"
        )
    if found["aof"] and not chosen.aof and found["fsync"] != "always":
        warnings.append(
            f"the AOF is fsynced {'every second' if found['fsync'] == 'everysec' else 'by the OS'}"
            " and not waited for (WAITAOF needs Redis 7.2): a crash of Redis itself can lose "
            "the last writes"
            + ("; the replica covers a failover" if chosen.replica else "")
        )
    detail = "; ".join(parts)
    if warnings:
        detail += ". WARNING: " + " WARNING: ".join(warnings)
    return CheckItem("durability", True, detail, warning=bool(warnings))


def check_punchh(services: Services) -> CheckItem:
    """One list call (segments, per_page=1): reachability and key validity."""
    try:
        services.punchh.list_page("segments", per_page=1)
    except PunchhLockedOut as exc:
        return CheckItem("punchh", False, exc.message)  # not asked: it says when and what next
    except PunchhAuthError as exc:
        return CheckItem("punchh", False, f"Punchh refused the API key: {exc.message}")
    except PunchhError as exc:
        return CheckItem("punchh", False, f"Punchh list call failed: {exc.message}")
    return CheckItem(
        "punchh",
        True,
        f"{describe_url(services.settings.punchh_base_url)} answered the segment list; "
        "the key is accepted",
    )


def check_unsigned_sfmc(settings: Settings) -> CheckItem | None:
    """SFMC_ALLOW_PLAIN_JSON, when on: a failure unless the deployment is for development.

    Unsigned execute calls mean anyone who can reach /sfmc/execute (a public URL: Journey
    Builder needs one) can forge contacts and make Punchh gift a whole segment. A warning in a
    release log is read too late, so the release phase fails; a development deployment says
    so explicitly with DEPLOYMENT_ENVIRONMENT=development.
    """
    if not settings.sfmc_allow_plain_json:
        return None
    if settings.deployment_environment == "development":
        return CheckItem(
            "sfmc",
            True,
            "SFMC_ALLOW_PLAIN_JSON is on: unsigned execute calls are accepted "
            "(DEPLOYMENT_ENVIRONMENT=development)",
        )
    return CheckItem(
        "sfmc",
        False,
        "SFMC_ALLOW_PLAIN_JSON is on: anyone who can reach /sfmc/execute can forge execute "
        "calls and make Punchh gift a segment. Turn it off, or set "
        "DEPLOYMENT_ENVIRONMENT=development if this deployment is for development only",
    )


def check(services: Services, *, punchh: bool = True) -> CheckReport:
    """Configuration, Redis, and (unless told not to) Punchh reachability and key validity."""
    report = CheckReport(
        [check_configuration(services.settings), check_redis(services), check_durability(services)]
    )
    unsigned = check_unsigned_sfmc(services.settings)
    if unsigned is not None:
        report.items.append(unsigned)
    if punchh:
        report.items.append(check_punchh(services))
    return report
