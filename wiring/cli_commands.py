"""The CLI's commands: each reads or acts on the ledger and prints what it found or did.

wiring/cli.py parses the command line and maps errors to exit codes; the operations are the
same as the /v1 admin API's (both call the ledger's actions).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Callable
from functools import partial
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from ledger import actions, audience_actions, queries
from ledger.actions import ActionResult
from ledger.lockout import unlock_punchh
from ledger.states import State
from ledger.sweep import sweep
from wiring import release_check
from wiring.errors import InvalidQuery
from wiring.services import Services

OK, REFUSED = 0, 1


def where_it_reads(redis_url: str, key_prefix: str) -> str:
    """The Redis (password hidden) and key prefix a command reads, for "found nothing" lines."""
    parts = urlsplit(redis_url)
    if parts.password:
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    return f"Redis {urlunsplit(parts)}, key prefix {key_prefix!r}"

#: Columns of `list`: (title, key in the record's dict, width or 0 for the rest of the line).
LIST_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("CREATED", "created_at", 20),
    ("STATE", "state", 10),
    ("SOURCE", "source", 6),
    ("RECIPIENTS", "recipients", 10),
    ("CAMPAIGN", "campaign_id", 10),
    ("ID", "distribution_id", 0),
)


def default_actor() -> str:
    """Who is acting: $USER, else the login name, else "cli"."""
    try:
        name = os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        name = ""
    return actions.clean_actor(name, "cli")



def _check(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    report = release_check.check(services, punchh=not args.no_punchh)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2), file=out)
    else:
        for item in report.items:
            mark = "FAILED" if not item.ok else "WARN" if item.warning else "ok"
            print(f"{mark:<7}{item.name:<15}{item.detail}", file=out)
    return OK if report.ok else REFUSED


def _list(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    try:
        since = queries.parse_time(args.since)
        until = queries.parse_time(args.until)
    except ValueError as exc:
        raise InvalidQuery(f"--since/--until {exc}") from exc
    states = [s.strip() for value in args.state for s in value.split(",")]
    found = queries.list_distributions(
        services.ledger, states=states, source=args.source, since=since, until=until,
        limit=args.limit,
    )
    rows = [dist.as_dict() for dist in found]
    if args.json:
        print(json.dumps(rows, indent=2), file=out)
        return OK
    print(_table_row({key: title for title, key, _ in LIST_COLUMNS}), file=out)
    for row in rows:
        print(_table_row(row), file=out)
    if not rows:
        # An empty list most often means the wrong database or prefix: say which was read.
        where = where_it_reads(services.settings.redis_url, services.settings.key_prefix)
        print(f"(no distributions match in {where})", file=out)
    return OK


def _table_row(row: dict[str, Any]) -> str:
    cells = []
    for _, key, width in LIST_COLUMNS:
        value = row.get(key)
        text = "-" if value is None or value == "" else str(value)
        cells.append(text.ljust(width) if width else text)
    return "  ".join(cells)


def _show(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    body = queries.show(services.ledger, args.distribution_id)
    if args.json:
        print(json.dumps(body, indent=2), file=out)
        return OK
    events = body.pop("events")
    trace = body.pop("trace")
    undoable = body.pop("undoable")
    for key, value in body.items():
        if value not in (None, ""):
            print(f"{key:<22}{value}", file=out)
    if trace:
        print(f"{'trace':<22}{json.dumps(trace, sort_keys=True)}", file=out)
    if undoable:
        line = f"{undoable['action']} by {undoable['by']} at {undoable['at']}"
        print(f"{'undoable':<22}{line}", file=out)
    print("events:", file=out)
    for event in events:
        state = f"→ {event['to']}" if event.get("to") else ""
        note = event.get("note", "")
        print(f"  {event.get('at', '?')}  {event.get('by', '?'):<16}{state:<14}{note}", file=out)
    return OK


#: Each admin action, bound to what it works on.
ACTIONS: dict[str, Callable[[Services], Callable[..., ActionResult]]] = {
    "retry": lambda s: partial(actions.retry, s.ledger, s.queue, s.lockout),
    "resolve": lambda s: partial(actions.resolve, s.ledger, s.queue, s.lockout),
    "release": lambda s: partial(actions.release, s.ledger, s.queue, s.lockout),
    "cancel": lambda s: partial(actions.cancel, s.ledger),
    "undo": lambda s: partial(actions.undo, s.ledger, s.queue),
    "end": lambda s: partial(audience_actions.end_send, s.ledger, s.queue),
    "commit-partial": lambda s: partial(audience_actions.commit_partial, s.ledger, s.queue),
}


def _action(name: str) -> Callable[[Services, argparse.Namespace, TextIO], int]:
    def run(services: Services, args: argparse.Namespace, out: TextIO) -> int:
        actor = actions.clean_actor(args.by, default_actor())
        reason = actions.clean_text(args.reason, actions.MAX_REASON)
        extra = (
            {"campaign_id": args.campaign_id, "not_created": args.not_created}
            if name == "resolve" else {}
        )
        operation = ACTIONS[name](services)
        result = operation(args.distribution_id, actor=actor, reason=reason, **extra)
        if args.json:
            print(json.dumps(result.as_dict(), indent=2), file=out)
        else:
            job = f" (commit job {result.job_id})" if result.job_id else ""
            print(
                f"{result.action} {result.distribution_id}: "
                f"{result.state_before} → {result.state}{job}",
                file=out,
            )
            if result.state == State.QUEUED:
                print(f"follow it with: punchh-connector show {result.distribution_id}", file=out)
        return OK

    return run


def _unlock(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    result = unlock_punchh(
        services.lockout,
        actor=actions.clean_actor(args.by, default_actor()),
        reason=actions.clean_text(args.reason, actions.MAX_REASON),
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2), file=out)
    elif result.lockout is not None:
        print(
            f"cleared the Punchh lockout set at {result.lockout['refused_at']} "
            f"({result.lockout['reason']}); the next call asks Punchh again",
            file=out,
        )
    else:
        print("no Punchh lockout stood; nothing cleared", file=out)
    return OK


def _sweep(services: Services, args: argparse.Namespace, out: TextIO) -> int:
    stale = services.settings.sweep_stale_seconds
    count = sweep(services.ledger, services.queue, stale_seconds=stale)
    print(json.dumps({"requeued": count}) if args.json else f"re-queued {count}", file=out)
    return OK


COMMANDS: dict[str, Callable[[Services, argparse.Namespace, TextIO], int]] = {
    "check": _check,
    "list": _list,
    "show": _show,
    "retry": _action("retry"),
    "resolve": _action("resolve"),
    "release": _action("release"),
    "cancel": _action("cancel"),
    "undo": _action("undo"),
    "end": _action("end"),
    "commit-partial": _action("commit-partial"),
    "punchh-unlock": _unlock,
    "sweep": _sweep,
}
