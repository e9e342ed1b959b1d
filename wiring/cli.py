"""`punchh-connector`: the operator's command line (the same operations as the /v1 admin API).

Exit codes: 0 done, 1 refused or failed (wrong state, not found, a check failed, Redis
unreachable), 2 configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import redis

from wiring import local_stack
from wiring.cli_commands import COMMANDS, OK, REFUSED, where_it_reads
from wiring.errors import ApiError
from wiring.services import Services
from wiring.settings import ConfigError, Settings

#: Exit code for a configuration error (0 and 1 are the commands' own: wiring/cli_commands.py).
CONFIG_ERROR = 2
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


def _worker(argv: list[str]) -> int:
    from workers.__main__ import main as worker_main

    try:
        worker_main(argv)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    return OK


# --- commands -----------------------------------------------------------------------------------


if __name__ == "__main__":
    sys.exit(main())
