"""`python -m bench.run [--smoke] [--duration S] [--connections C] [--json out.json]`

Starts the real stack — a private redis-server, the Punchh sandbox, the connector under
gunicorn with the production gunicorn.conf.py, an RQ worker — plus two floors (bare Flask apps
under the same gunicorn configuration: one that only answers 202, one that makes one Redis
round trip first), and measures in one run (see bench/README.md):

1. intake throughput and latency, Braze fan-out, SFMC executes and Braze audience mode, floor
   alternated with each;
2. gunicorn CPU per request, connector and floor, and their ratio and difference;
3. p99 latency at half of the maximum throughput (rate-limited wrk);
4. Redis round trips per duplicate webhook (INFO commandstats and MONITOR);
5. Redis memory per distribution and its growth with one send's recipients (own redis-server);
6. first webhook → Punchh POST with an idle worker; RSS of web and worker processes;
7. audience sends through the real stack: Punchh calls per send, commit after the quiet gap,
   identifiers left in Redis; bytes per identifier waiting for its batch (own redis-server).

Every figure is printed next to its target; nothing is asserted. Every process started is
stopped on the way out, on success, failure, Ctrl-C or SIGTERM.

The parts: `bench.plan` (what to run), `bench.rig` (the started processes), `bench.measure`
(wrk runs with CPU accounting), `bench.round_trips`, `bench.commit_latency` and `bench.memory`
(the other measurements), `bench.report` (summaries, the table, missing figures). This module
runs them in order.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bench import memory
from bench.audience import one_send
from bench.commit_latency import commit_latency, committed_footprint
from bench.load import WrkMissing, wrk_path
from bench.measure import LoadRuns
from bench.plan import AUDIENCE_QUIET_SECONDS, Plan, connector_env, option_parser
from bench.report import figures_missing, summarise, summarise_reference, table
from bench.rig import Rig
from bench.round_trips import round_trips
from stack import Stack
from wiring.settings import Settings


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def collect(plan: Plan, stack: Stack, say: Callable[[str], None]) -> dict[str, Any]:
    """All measurements over one stack, in order; returns the results document."""
    res: dict[str, Any] = {}
    res["machine"] = {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "wrk": wrk_path(),
    }
    res["plan"] = plan.__dict__
    rig = Rig.start(plan, stack, say)
    res["sfmc_status"] = rig.sfmc_status
    load = LoadRuns(plan, rig, say)
    load.throughput()
    res["runs"] = [r.as_dict() for r in load.runs]
    res["throughput"] = {"braze": summarise(load.runs, "braze")}
    res["floor_plus_one_round_trip"] = summarise_reference(load.runs)
    if rig.sfmc_ok:
        res["throughput"]["sfmc"] = summarise(load.runs, "sfmc")
    res["throughput"]["audience"] = summarise(load.runs, "audience")
    res["half_max"] = {}
    for kind in res["throughput"]:
        say(f"half of max throughput: {kind}")
        res["half_max"][kind] = load.half_max(kind, res["throughput"][kind]["rps"])
    res["commandstats"] = {}
    for kind in res["throughput"]:
        say(f"redis commands per duplicate: {kind}")
        res["commandstats"][kind] = round_trips(
            rig, kind, plan.duplicates, load.last_braze, load.last_sfmc
        )
    say(f"first webhook -> Punchh POST, {plan.commit_sends} sends")
    res["commit"], committed = commit_latency(rig, plan.commit_sends)
    res["committed_footprint_bytes"] = committed_footprint(rig, committed)
    res["audience_sends"] = []
    for n in plan.audience_sends:
        say(f"audience send of {n:,} recipients (quiet gap {AUDIENCE_QUIET_SECONDS} s)")
        res["audience_sends"].append(one_send(rig, plan, n, AUDIENCE_QUIET_SECONDS))
    res["redis_connections"] = rig.redis_connections()
    res["rss"] = {"before_load": load.rss_before_load, "after_load": rig.rss()}
    say(
        f"memory: {plan.mem_distributions} distributions, "
        f"{plan.mem_low:,} -> {plan.mem_high:,} recipients (own redis-server)"
    )
    mem_redis = stack.redis("redis-memory")
    settings = Settings.from_env(connector_env(mem_redis.url, rig.sandbox.url))
    res["memory"] = memory.measure(
        settings,
        distributions=plan.mem_distributions,
        low=plan.mem_low,
        high=plan.mem_high,
        audience_recipients=plan.audience_mem_recipients,
    )
    res["machine"]["loadavg_at_end"] = os.getloadavg()
    return res


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM / SIGHUP: unwind so every started process is stopped."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write the JSON if asked."""
    args = option_parser(__doc__.split("\n")[0]).parse_args(argv)
    plan = Plan.from_args(args)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    try:
        wrk_path()
    except WrkMissing as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    log_dir = Path(os.environ.get("BENCH_LOG_DIR") or f"/tmp/pc-bench-{uuid.uuid4().hex[:8]}")
    log_dir.mkdir(parents=True, exist_ok=True)
    failed = True
    try:
        with Stack(log_dir) as stack:
            results = collect(plan, stack, say)
        failed = False
    finally:
        if failed:
            print(f"bench: failed; process logs kept in {log_dir}", file=sys.stderr)
        elif not args.keep_logs:
            for item in log_dir.iterdir():
                item.unlink()
            log_dir.rmdir()
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    results["missing_figures"] = figures_missing(results)
    print(table(results))
    if results["missing_figures"]:
        print("missing figures: " + ", ".join(results["missing_figures"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    say(f"done in {results['elapsed_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
