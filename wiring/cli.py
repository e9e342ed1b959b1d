"""`punchh-connector`: the operator's command line (the same operations as the /v1 admin API).

Exit codes: 0 done, 1 refused or failed (wrong state, not found, a check failed, Redis
unreachable), 2 configuration error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import redis

from ledger import actions, audience_actions, queries
from ledger.actions import ActionResult
from ledger.lockout import unlock_punchh
from ledger.states import State
from ledger.sweep import sweep
from wiring import local_stack, release_check
from wiring.errors import ApiError, InvalidQuery
from wiring.services import Services
from wiring.settings import ConfigError, Settings

OK, REFUSED, CONFIG_ERROR = 0, 1, 2

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


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand and its options."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    acting = argparse.ArgumentParser(add_help=False, parents=[common])
    acting.add_argument("--by", default=None, help="who acts (default: $USER)")
    acting.add_argument("--reason", default="", help="why; recorded on the distribution")
    acting.add_argument("distribution_id", metavar="ID")

    parser = argparse.ArgumentParser(
        prog="punchh-connector",
        description="Operate the Punchh connector: inspect and fix distributions, check setup.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser(
        "check", parents=[common], help="configuration, Redis, Punchh reachability and key"
    )
    check.add_argument("--no-punchh", action="store_true", help="skip the Punchh list call")

    listing = sub.add_parser("list", parents=[common], help="recent distributions, newest first")
    listing.add_argument("--state", action="append", default=[], help="filter (repeatable)")
    listing.add_argument("--source", help="braze, sfmc or api")
    listing.add_argument("--since", help="created at or after (ISO 8601 or epoch)")
    listing.add_argument("--until", help="created at or before (ISO 8601 or epoch)")
    listing.add_argument("--limit", type=int, default=50)

    show = sub.add_parser("show", parents=[common], help="one distribution and its events")
    show.add_argument("distribution_id", metavar="ID")

    sub.add_parser("retry", parents=[acting], help="failed (or rejected) → queued, commit again")
    resolve = sub.add_parser(
        "resolve", parents=[acting], help="settle an unknown one after checking Punchh"
    )
    how = resolve.add_mutually_exclusive_group(required=True)
    how.add_argument("--campaign-id", type=int, help="the Punchh campaign that exists for it")
    how.add_argument(
        "--not-created", action="store_true", help="Punchh has no campaign for it: commit it"
    )
    sub.add_parser("release", parents=[acting], help="held → queued: commit it")
    sub.add_parser("cancel", parents=[acting], help="held/queued/failed/unknown → cancelled")
    sub.add_parser("undo", parents=[acting], help="reverse the last admin action if possible")
    sub.add_parser("end", parents=[acting], help="audience send: over now, deliver and commit")
    sub.add_parser(
        "commit-partial",
        parents=[acting],
        help="failed audience send → queued: gift only the guests already added",
    )
    unlock = sub.add_parser(
        "punchh-unlock",
        parents=[common],
        help="end the Punchh key lockout now (after fixing PUNCHH_API_KEY); retry does not",
    )
    unlock.add_argument("--by", default=None, help="who acts (default: $USER)")
    unlock.add_argument("--reason", default="", help="why; written to the log")
    sub.add_parser("sweep", parents=[common], help="re-queue stale distributions once")
    # Listed for --help only: main() hands everything after "worker" to python -m workers.
    sub.add_parser("worker", help="run an RQ worker: same options as python -m workers")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["worker"]:
        return _worker(arguments[1:])
    args = build_parser().parse_args(arguments)
    out = sys.stdout
    try:
        environ, local = local_stack.cli_environment(dict(os.environ))
        settings = Settings.from_env(environ)
        if local is not None:
            print(f"using the local stack `make run` started ({local}): "
                  f"{where_it_reads(settings.redis_url, settings.key_prefix)}", file=sys.stderr)
        services = Services.build(settings)
        return COMMANDS[args.command](services, args, out)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    except ApiError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": {"code": exc.code, "message": exc.message}}), file=out)
        print(f"refused: {exc.message}", file=sys.stderr)
        if exc.code == "not_found":
            print(f"(looked in {where_it_reads(settings.redis_url, settings.key_prefix)})",
                  file=sys.stderr)
        return REFUSED
    except redis.RedisError as exc:
        print(f"Redis unreachable: {type(exc).__name__}: {exc}", file=sys.stderr)
        return REFUSED


def where_it_reads(redis_url: str, key_prefix: str) -> str:
    """The Redis (password hidden) and key prefix a command reads, for "found nothing" lines."""
    parts = urlsplit(redis_url)
    if parts.password:
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    return f"Redis {urlunsplit(parts)}, key prefix {key_prefix!r}"


def _worker(argv: list[str]) -> int:
    from workers.__main__ import main as worker_main

    try:
        worker_main(argv)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    return OK


# --- commands -----------------------------------------------------------------------------------
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


if __name__ == "__main__":
    sys.exit(main())
