"""Operator actions on distributions, shared by the CLI and the `/v1` admin API.

Every action is one compare-and-set state change on the ledger (so it races safely with the
workers), recorded as an event naming who, when and what. The last action is also kept on the
record (`admin_last`: what it changed and the fields it overwrote) so `undo` can reverse it —
only while the state has not moved on since (same state, same `updated_at`): once a worker has
acted on a release or retry, or anything else changed the record, there is nothing safe to
undo.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import redis

from ledger import durability
from ledger.jobs import enqueue_commit
from ledger.states import State
from ledger.store import Distribution
from punchh.errors import PunchhAuthError, PunchhError, PunchhLockedOut
from wiring.errors import BadRequest, Conflict, NotFound
from wiring.services import Services
from wiring.settings import Settings

log = logging.getLogger("connector.admin")

#: The record field holding the last admin action, for undo.
ADMIN_FIELD = "admin_last"
#: States an operator may retry: Punchh provably created nothing in either.
RETRYABLE = (State.FAILED, State.REJECTED)
#: States an operator may cancel: none of them has a POST to Punchh in flight.
CANCELLABLE = (State.HELD, State.QUEUED, State.FAILED, State.UNKNOWN)
#: Longest actor name and reason kept on a record.
MAX_ACTOR = 64
MAX_REASON = 300

_PRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ActionResult:
    """What one admin action did."""

    distribution_id: str
    action: str
    state_before: str
    state: str
    actor: str
    note: str
    job_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


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


def clean_text(value: str | None, limit: int) -> str:
    """Strip control characters and bound the length of operator-supplied text."""
    return _PRINTABLE.sub(" ", value or "").strip()[:limit]


def clean_actor(value: str | None, default: str) -> str:
    """The actor name recorded on events: printable, bounded, never empty."""
    return clean_text(value, MAX_ACTOR) or default


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_time(value: str | None) -> float | None:
    """A time filter: ISO 8601 (no offset means UTC) or epoch seconds; ValueError otherwise."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
    except ValueError as exc:
        raise ValueError(
            "must be ISO 8601 (such as 2026-11-25T18:30:00Z) or epoch seconds"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# --- reads ------------------------------------------------------------------------------------
def get(services: Services, distribution_id: str) -> Distribution:
    """The record, or NotFound."""
    dist = services.ledger.get(distribution_id)
    if dist is None:
        raise NotFound(f"no distribution {distribution_id!r} (or it expired)")
    return dist


def show(services: Services, distribution_id: str) -> dict[str, Any]:
    """The record as the status API shows it, with its events and the undoable action."""
    dist = get(services, distribution_id)
    body = dist.as_dict()
    body["events"] = services.ledger.events(distribution_id)
    last = last_action(dist)
    body["undoable"] = (
        {"action": last["action"], "by": last["by"], "at": _iso(float(last["at"]))}
        if last and _undoable(dist, last)
        else None
    )
    return body


def list_distributions(
    services: Services,
    *,
    states: Iterable[str] = (),
    source: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
) -> list[Distribution]:
    """Most recent first, filtered by state, source and creation time."""
    wanted = [s for s in states if s]
    known = {s.value for s in State}
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise BadRequest(
            f"unknown state {unknown[0]!r}; one of {', '.join(s.value for s in State)}",
            code="invalid_state",
        )
    return services.ledger.recent(
        states=wanted, source=source or None, since=since, until=until, limit=max(1, limit)
    )


# --- actions ----------------------------------------------------------------------------------
def retry(
    services: Services, distribution_id: str, *, actor: str, reason: str = ""
) -> ActionResult:
    """failed (or rejected) → queued with attempts reset, and a commit job queued."""
    dist = get(services, distribution_id)
    _refuse_while_locked_out(services, "retry")
    attempts = dist.int_field("attempts")
    result = _act(
        services,
        dist,
        action="retry",
        to=State.QUEUED,
        allowed_from=RETRYABLE,
        actor=actor,
        reason=reason,
        fields={"attempts": 0, "last_error": "", "next_attempt_at": ""},
        detail=f"attempts reset from {attempts}",
    )
    return _with_job(services, result)


def resolve(
    services: Services,
    distribution_id: str,
    *,
    actor: str,
    campaign_id: int | None = None,
    not_created: bool = False,
    reason: str = "",
) -> ActionResult:
    """unknown → committed with Punchh's campaign id, or (not created) → queued to commit."""
    if (campaign_id is None) == (not not_created):
        raise BadRequest("give exactly one of campaign_id or not_created")
    dist = get(services, distribution_id)
    if not_created:
        _refuse_while_locked_out(services, "resolve --not-created")
    if campaign_id is not None:
        if campaign_id < 1:
            raise BadRequest("campaign_id must be a positive integer")
        return _act(
            services,
            dist,
            action="resolve",
            to=State.COMMITTED,
            allowed_from=(State.UNKNOWN,),
            actor=actor,
            reason=reason,
            fields={"campaign_id": campaign_id, "committed_at": time.time(), "last_error": ""},
            detail=f"operator found Punchh campaign {campaign_id}",
        )
    result = _act(
        services,
        dist,
        action="resolve",
        to=State.QUEUED,
        allowed_from=(State.UNKNOWN,),
        actor=actor,
        reason=reason,
        fields={"last_error": "", "next_attempt_at": ""},
        detail="operator found no campaign in Punchh: commit it",
    )
    return _with_job(services, result)


def release(
    services: Services, distribution_id: str, *, actor: str, reason: str = ""
) -> ActionResult:
    """held → queued, and a commit job queued."""
    dist = get(services, distribution_id)
    _refuse_while_locked_out(services, "release")
    result = _act(
        services,
        dist,
        action="release",
        to=State.QUEUED,
        allowed_from=(State.HELD,),
        actor=actor,
        reason=reason,
        fields={"last_error": ""},
        detail="released from hold",
    )
    return _with_job(services, result)


def cancel(
    services: Services, distribution_id: str, *, actor: str, reason: str = ""
) -> ActionResult:
    """held, queued, failed or unknown → cancelled: nothing more is posted to Punchh."""
    dist = get(services, distribution_id)
    return _act(
        services,
        dist,
        action="cancel",
        to=State.CANCELLED,
        allowed_from=CANCELLABLE,
        actor=actor,
        reason=reason,
        fields={},
        detail=f"cancelled from {dist.state}",
    )


def undo(
    services: Services, distribution_id: str, *, actor: str, reason: str = ""
) -> ActionResult:
    """Reverse the last admin action if nothing has moved the distribution since."""
    dist = get(services, distribution_id)
    last = last_action(dist)
    if not last:
        raise Conflict("no admin action on this distribution to undo", code="cannot_undo")
    if not _undoable(dist, last):
        raise Conflict(
            f"the distribution has moved on since {last['action']} by {last['by']} "
            f"(now {dist.state}); nothing was undone",
            code="cannot_undo",
        )
    target = State(last["from"])
    restore: dict[str, str | int | float] = dict(last.get("restore", {}))
    restore[ADMIN_FIELD] = ""
    note = f"undo {last['action']} by {last['by']}" + (f": {reason}" if reason else "")
    changed, before = services.ledger.transition(
        dist.id,
        target,
        allowed_from=(last["to"],),
        fields=restore,
        actor=actor,
        note=note[:MAX_REASON],
    )
    if not changed:
        raise Conflict(
            f"the distribution moved to {before} meanwhile; nothing undone", code="cannot_undo"
        )
    result = ActionResult(dist.id, "undo", before, target.value, actor, note)
    return _with_job(services, result) if target == State.QUEUED else result


def _refuse_while_locked_out(services: Services, action: str) -> None:
    """Queue no commit while Punchh access is locked out: the job would fail at once.

    Clearing the lockout is its own, explicit action (`punchh-unlock`): an operator who retries
    one distribution has not necessarily fixed the key, and Punchh blocks the IP of a
    deployment that keeps presenting a refused one.
    """
    refusal = services.lockout.current()
    if refusal is not None:
        raise Conflict(
            f"cannot {action} now: {refusal.describe()}; then {action} again",
            code="punchh_locked_out",
        )


@dataclass(frozen=True)
class UnlockResult:
    """What `punchh-unlock` did."""

    cleared: bool
    by: str
    reason: str
    lockout: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def unlock_punchh(services: Services, *, actor: str, reason: str = "") -> UnlockResult:
    """End the Punchh key lockout now: the operator has fixed PUNCHH_API_KEY.

    Punchh is asked again by the next caller; if it still refuses the key, that one refusal
    locks every process out again.
    """
    refusal = services.lockout.clear()
    log.warning(
        "punchh lockout cleared" if refusal else "punchh lockout: nothing to clear",
        extra={"actor": actor, "reason": reason},
    )
    return UnlockResult(
        cleared=refusal is not None,
        by=actor,
        reason=reason,
        lockout=refusal.as_dict() if refusal else None,
    )


def _act(
    services: Services,
    dist: Distribution,
    *,
    action: str,
    to: State,
    allowed_from: tuple[State, ...],
    actor: str,
    reason: str,
    fields: Mapping[str, str | int | float],
    detail: str,
) -> ActionResult:
    """One compare-and-set transition that records the action and what undo needs."""
    if dist.state not in allowed_from:
        raise Conflict(
            f"cannot {action} a distribution in state {dist.state!r} "
            f"(only {', '.join(s.value for s in allowed_from)})",
            code="wrong_state",
        )
    now = time.time()
    restore = {name: dist.fields.get(name, "") for name in fields}
    last = {
        "action": action,
        "from": dist.state,
        "to": to.value,
        "by": actor,
        "at": repr(now),  # equals the record's updated_at after this transition
        "restore": restore,
    }
    note = f"{action}: {detail}" + (f"; reason: {reason}" if reason else "")
    changed, before = services.ledger.transition(
        dist.id,
        to,
        allowed_from=allowed_from,
        fields={**fields, ADMIN_FIELD: json.dumps(last, separators=(",", ":"))},
        actor=actor,
        note=note[:MAX_REASON],
        now=now,
    )
    if not changed:
        raise Conflict(
            f"cannot {action}: the distribution moved to {before!r} meanwhile",
            code="wrong_state",
        )
    return ActionResult(dist.id, action, before, to.value, actor, note)


def _with_job(services: Services, result: ActionResult) -> ActionResult:
    """Queue the commit job for a distribution an action put back in `queued`.

    A crash between the transition and this enqueue leaves a queued record with no job: the
    sweeper re-queues it, as for intake.
    """
    job_id = enqueue_commit(services.queue, services.ledger, result.distribution_id)
    return ActionResult(
        result.distribution_id,
        result.action,
        result.state_before,
        result.state,
        result.actor,
        result.note,
        job_id,
    )


def last_action(dist: Distribution) -> dict[str, Any] | None:
    """The last operator action on the record (undo and alerts read it), if any."""
    raw = dist.fields.get(ADMIN_FIELD)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _undoable(dist: Distribution, last: Mapping[str, Any]) -> bool:
    """Same state and no state change since the action (workers change updated_at)."""
    return dist.state == last.get("to") and dist.fields.get("updated_at") == last.get("at")


# --- check ------------------------------------------------------------------------------------
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
