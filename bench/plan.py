"""What to run: the options, the plan they make (full or smoke), the targets, the stack's secrets.

Everything the benchmark decides before it starts a process lives here; nothing here measures.
"""

from __future__ import annotations

import argparse
import secrets
from dataclasses import dataclass
from pathlib import Path

from bench.load import SFMC_SECRET

#: Drawn per run and handed to the processes the bench starts: no credential lives in code.
BRAZE_TOKEN = secrets.token_urlsafe(24)
API_TOKEN = secrets.token_urlsafe(24)
SANDBOX_KEY = "sandbox-admin-key"
BRAZE_PATH = "/webhooks/braze"
SFMC_PATH = "/sfmc/execute"
KEY_PREFIX = "pc:"

# Targets (issue 7). Printed next to the figures; never asserted.
TARGET_RATIO = 0.60
TARGET_CPU_ABOVE_FLOOR_US = 150.0
TARGET_P99_HALF_MS = 25.0
TARGET_COMMANDS_PER_DUPLICATE = 1.0
TARGET_BYTES_PER_DISTRIBUTION = 2048
TARGET_GROWTH_BYTES = 1024
TARGET_COMMIT_MEDIAN_MS = 250.0
#: The load generator's own share of the machine above which it would distort the figures.
TARGET_WRK_CORES = 0.25
# Audience mode (issue 13): the ratio and latency share the targets above; these are its own.
TARGET_AUDIENCE_BYTES_PER_WAITING_RECIPIENT = 64
#: Committed within the quiet gap plus this many seconds of the send's last recipient.
TARGET_AUDIENCE_COMMIT_LAG_S = 10.0

#: The quiet gap after which the bench's audience sends are over (production's default is
#: SEND_GAP_SECONDS): short, so a measured send commits within the run.
AUDIENCE_QUIET_SECONDS = 5


def option_parser(description: str) -> argparse.ArgumentParser:
    """`python -m bench.run`'s options."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=description)
    parser.add_argument("--smoke", action="store_true", help="a few seconds in all (CI)")
    parser.add_argument("--duration", type=float, help="seconds per load run (10; smoke 1)")
    parser.add_argument("--connections", type=int, help="wrk connections (32)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--rounds", type=int, help="alternated rounds (3; smoke 1)")
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY (2)")
    parser.add_argument("--threads", type=int, default=8, help="GUNICORN_THREADS (8)")
    parser.add_argument("--commit-sends", type=int, help="sends timed to Punchh (20; smoke 3)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep process logs")
    return parser


@dataclass(frozen=True)
class Plan:
    """How long and how hard: the full run, or the smoke run CI uses."""

    duration: float
    connections: int
    wrk_threads: int
    rounds: int
    warmup: float
    web_workers: int
    web_threads: int
    duplicates: int
    commit_sends: int
    mem_distributions: int
    mem_low: int
    mem_high: int
    #: Audience sends measured through the real stack, by recipients.
    audience_sends: tuple[int, ...]
    #: Recipients of the audience send whose waiting identifiers are weighed.
    audience_mem_recipients: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        """Defaults per mode; explicit options win."""
        smoke = bool(args.smoke)
        return cls(
            duration=args.duration or (1.0 if smoke else 10.0),
            connections=args.connections or 32,
            wrk_threads=args.wrk_threads,
            rounds=args.rounds or (1 if smoke else 3),
            warmup=0.0 if smoke else 2.0,
            web_workers=args.workers,
            web_threads=args.threads,
            duplicates=100 if smoke else 1000,
            commit_sends=args.commit_sends or (3 if smoke else 20),
            mem_distributions=100 if smoke else 1000,
            mem_low=200 if smoke else 10_000,
            mem_high=1000 if smoke else 100_000,
            audience_sends=(5_000,) if smoke else (5_000, 100_000),
            audience_mem_recipients=2_000 if smoke else 20_000,
        )


def connector_env(redis_url: str, sandbox_url: str) -> dict[str, str]:
    """The connector's environment: production defaults, pointed at the sandbox."""
    return {
        "REDIS_URL": redis_url,
        "PUNCHH_BASE_URL": sandbox_url,
        "PUNCHH_API_KEY": SANDBOX_KEY,
        "API_TOKEN": API_TOKEN,
        "BRAZE_WEBHOOK_TOKEN": BRAZE_TOKEN,
        "SFMC_JWT_SECRET": SFMC_SECRET,
        "AUDIENCE_QUIET_SECONDS": str(AUDIENCE_QUIET_SECONDS),
        "LOG_LEVEL": "INFO",
    }
