"""`python -m bench.run [--smoke] [--duration S] [--connections C] [--json out.json]`

Starts the real stack — a private redis-server, the Punchh sandbox, the connector under
gunicorn with the production gunicorn.conf.py, an RQ worker — plus two floors (bare Flask apps
under the same gunicorn configuration: one that only answers 202, one that makes one Redis
round trip first), and measures in one run (see bench/README.md):

1. intake throughput and latency, Braze fan-out and SFMC executes, floor alternated with each;
2. gunicorn CPU per request, connector and floor, and their ratio and difference;
3. p99 latency at half of the maximum throughput (rate-limited wrk);
4. Redis round trips per duplicate webhook (INFO commandstats and MONITOR);
5. Redis memory per distribution and its growth with one send's recipients (own redis-server);
6. first webhook → Punchh POST with an idle worker; RSS of web and worker processes.

Every figure is printed next to its target; nothing is asserted. Every process started is
stopped on the way out, on success, failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, cast

import httpx
import redis

from bench import memory
from bench.load import (
    SFMC_SECRET,
    SfmcRun,
    WrkMissing,
    WrkResult,
    braze_body,
    braze_send,
    run_wrk,
    sfmc_tokens,
    sign,
    tokens_needed,
    wrk_path,
)
from stack import Proc, Stack, client_ports, cpu_seconds, rss_bytes, wait_until
from wiring.settings import Settings

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
        )


# --- machine --------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    # guest time is already inside user time
    return (sum(parts[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# --- one measured run -----------------------------------------------------------------------


@dataclass
class Run:
    """One wrk run against one target, with the CPU every party used during it."""

    target: str  # floor-braze | braze | floor-sfmc | sfmc
    wrk: WrkResult
    server_cpu: float
    redis_cpu: float
    worker_cpu: float
    machine_cpu: float
    extra: dict[str, Any]

    @property
    def cpu_us_per_request(self) -> float:
        """gunicorn master + workers CPU per completed request, in microseconds."""
        return self.server_cpu / self.wrk.requests * 1e6 if self.wrk.requests else float("nan")

    @property
    def other_cores(self) -> float:
        """Cores used by processes outside the benchmark during the run (other users)."""
        ours = self.server_cpu + self.redis_cpu + self.worker_cpu + self.wrk.wrk_cpu_seconds
        return max(0.0, (self.machine_cpu - ours) / self.wrk.seconds) if self.wrk.seconds else 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "target": self.target,
            **self.wrk.as_dict(),
            "gunicorn_cpu_us_per_request": round(self.cpu_us_per_request, 1),
            "redis_cpu_us_per_request": round(self.redis_cpu / max(1, self.wrk.requests) * 1e6, 1),
            "gunicorn_cores": round(self.server_cpu / self.wrk.seconds, 3),
            "other_processes_cores": round(self.other_cores, 3),
            **self.extra,
        }


class Monitor:
    """Redis MONITOR in a thread, for a `with` block: who sent which command."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.entries: list[dict[str, Any]] = []
        self.token = f"bench-monitor-stop-{uuid.uuid4().hex}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        with self.client.monitor() as monitor:  # type: ignore[no-untyped-call]
            self._ready.set()
            for entry in monitor.listen():
                if self.token in entry["command"]:
                    return
                self.entries.append(entry)

    def __enter__(self) -> Monitor:
        self._thread.start()
        self._ready.wait(5)
        time.sleep(0.05)  # MONITOR's OK is read before the first command is relayed
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.echo(self.token)
        self._thread.join(10)

    def _count(self, lua: bool, ports: set[int] | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.entries:
            if (entry.get("client_type") == "lua") != lua:
                continue
            if ports is not None and int(entry.get("client_port") or 0) not in ports:
                continue
            name = entry["command"].split(" ", 1)[0].lower()
            if name in {"config", "info", "echo"}:
                continue  # the benchmark's own
            out[name] = out.get(name, 0) + 1
        return out

    def client_commands(self, ports: set[int] | None = None) -> dict[str, int]:
        """Commands sent by clients (from these ports): one round trip each, unpipelined."""
        return self._count(lua=False, ports=ports)

    def script_commands(self) -> dict[str, int]:
        """Commands run by Lua scripts inside Redis."""
        return self._count(lua=True)


class Bench:
    """The whole benchmark over one started stack."""

    def __init__(self, plan: Plan, stack: Stack, log: Callable[[str], None]) -> None:
        self.plan = plan
        self.stack = stack
        self.say = log
        self.results: dict[str, Any] = {}

    # --- setup ------------------------------------------------------------------------------
    def start(self) -> None:
        """Redis, sandbox, connector, floor, worker; check the floor really is the floor."""
        st, plan = self.stack, self.plan
        self.redis_proc = st.redis("redis")
        self.sandbox = st.sandbox()
        self.env = connector_env(self.redis_proc.url, self.sandbox.url)
        self.web = st.gunicorn(
            "connector", self.env, workers=plan.web_workers, threads=plan.web_threads
        )
        self.floor = st.gunicorn(
            "floor",
            self.env,
            workers=plan.web_workers,
            threads=plan.web_threads,
            app="bench.floor:app",
        )
        self.floor_redis = st.gunicorn(
            "floor-redis",
            self.env,
            workers=plan.web_workers,
            threads=plan.web_threads,
            app="bench.floor:redis_app",
        )
        self.worker = st.worker(self.env)
        self.rdb = redis.Redis.from_url(self.redis_proc.url)
        self.http = httpx.Client(timeout=30)
        # `gunicorn -c gunicorn.conf.py bench.floor:app` must serve the floor, not the
        # connector (the config names connector.wsgi:app): an unauthenticated webhook proves it.
        answers = [
            self.http.post(server.url + BRAZE_PATH, json={}).status_code
            for server in (self.floor, self.floor_redis, self.web)
        ]
        if answers != [202, 202, 401]:
            raise RuntimeError(f"floor/connector mix-up: floor, floor+redis, connector {answers}")
        self.sfmc_status = self.probe_sfmc()
        self.say(
            f"stack up: redis {self.redis_proc.url}, sandbox {self.sandbox.url}, "
            f"connector {self.web.url}, floor {self.floor.url}; logs in {st.log_dir}; "
            f"sfmc: {self.sfmc_status}"
        )

    def probe_sfmc(self) -> str:
        """'ok', or why the SFMC scenarios cannot run ('endpoint missing (404)')."""
        run = SfmcRun.new("probe")
        answer = self.http.post(
            self.web.url + SFMC_PATH,
            content=sign(run.payload(0)),
            headers={"Content-Type": "application/jwt"},
        )
        if answer.status_code == 404:
            return "endpoint missing (404)"
        if answer.status_code != 200:
            return f"endpoint answered {answer.status_code}: {answer.text[:200]}"
        return "ok"

    @property
    def sfmc_ok(self) -> bool:
        """Whether the SFMC scenarios run."""
        return self.sfmc_status == "ok"

    # --- measuring --------------------------------------------------------------------------
    def measure(
        self,
        target: str,
        url: str,
        kind: str,
        env: dict[str, str],
        *,
        duration: float | None = None,
        delay_ms: float = 0.0,
        server: Proc | None = None,
    ) -> Run:
        """One wrk run with CPU accounting around it."""
        plan = self.plan
        server = server or self.server_for(target)
        server_pids = server.family()
        worker_pids = self.worker.family()
        before = (
            cpu_seconds(server_pids),
            cpu_seconds([self.redis_proc.pid]),
            cpu_seconds(worker_pids),
            machine_busy_seconds(),
        )
        result = run_wrk(
            url,
            kind,
            threads=plan.wrk_threads,
            connections=plan.connections,
            duration=duration or plan.duration,
            env=env,
            delay_ms=delay_ms,
        )
        after = (
            cpu_seconds(server_pids),
            cpu_seconds([self.redis_proc.pid]),
            cpu_seconds(worker_pids),
            machine_busy_seconds(),
        )
        if len(server.family()) != len(server_pids):
            raise RuntimeError(f"{server.name}: a worker died or was replaced during the run")
        return Run(
            target,
            result,
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2],
            after[3] - before[3],
            {},
        )

    def server_for(self, target: str) -> Proc:
        """floor-redis, floor-<kind> or the connector."""
        if target == "floor-redis":
            return self.floor_redis
        return self.floor if target.startswith("floor") else self.web

    def braze_run(self, target: str, **kw: Any) -> Run:
        """Braze fan-out: one new send, a different recipient per request."""
        campaign, send_key = braze_send()
        env = {"BENCH_CAMPAIGN": campaign, "BENCH_SEND_KEY": send_key, "BENCH_TOKEN": BRAZE_TOKEN}
        server = self.server_for(target)
        run = self.measure(target, server.url + BRAZE_PATH, "braze", env, **kw)
        if not target.startswith("floor"):
            self.check_counted(run, f"braze:{campaign}:{send_key}")
        return run

    def sfmc_run(self, target: str, tokens: Path, run_ids: SfmcRun, **kw: Any) -> Run:
        """SFMC executes: one journey run, a different contact per request (pre-signed)."""
        server = self.server_for(target)
        env = {"BENCH_TOKENS_FILE": str(tokens)}
        run = self.measure(target, server.url + SFMC_PATH, "sfmc", env, **kw)
        if not target.startswith("floor"):
            self.check_counted(run, run_ids.distribution_id)
        return run

    def check_counted(self, run: Run, distribution_id: str) -> None:
        """Every 2xx answer must be a recipient counted in Redis (nothing accepted is lost)."""
        raw = self.rdb.hget(KEY_PREFIX + "d:" + distribution_id, "recipients")
        counted = int(raw) if raw is not None else 0
        answered_2xx = run.wrk.requests - run.wrk.errors["status"]
        run.extra["distribution_id"] = distribution_id
        run.extra["recipients_counted"] = counted
        # wrk stops mid-flight: up to one request per connection is counted but not answered.
        run.extra["accepted_not_counted"] = max(0, answered_2xx - counted - run.wrk.replays)

    def warm_up(self) -> None:
        """A short run of each target: first requests, script loading, pools filled."""
        plan = self.plan
        self.say(f"warm-up ({plan.warmup:g} s each)")
        self.braze_run("floor-braze", duration=plan.warmup)
        self.braze_run("floor-redis", duration=plan.warmup)
        self.braze_run("braze", duration=plan.warmup)
        if self.sfmc_ok:
            warm = SfmcRun.new("warm")
            with sfmc_tokens(warm, tokens_needed(8000, plan.warmup, plan.wrk_threads)) as path:
                self.sfmc_run("floor-sfmc", path, warm, duration=plan.warmup)
                self.sfmc_run("sfmc", path, warm, duration=plan.warmup)
        self.rss_before_load = self.rss()

    def throughput(self) -> None:
        """Floors and connector alternated: floor, floor+redis, braze, floor, sfmc; per round."""
        plan = self.plan
        self.rss_before_load = self.rss()
        if plan.warmup:
            self.warm_up()
        runs: list[Run] = []
        for n in range(plan.rounds):
            floor_b = self.braze_run("floor-braze")
            floor_r = self.braze_run("floor-redis")
            braze = self.braze_run("braze")
            runs += [floor_b, floor_r, braze]
            line = (
                f"round {n + 1}/{plan.rounds}: floor {floor_b.wrk.rps:,.0f}/s "
                f"{floor_b.cpu_us_per_request:.0f} µs | floor+redis {floor_r.wrk.rps:,.0f}/s "
                f"{floor_r.cpu_us_per_request:.0f} µs | braze {braze.wrk.rps:,.0f}/s "
                f"{braze.cpu_us_per_request:.0f} µs"
            )
            if self.sfmc_ok:
                sfmc_ids = SfmcRun.new(f"r{n}")
                count = tokens_needed(floor_b.wrk.rps, plan.duration, plan.wrk_threads)
                with sfmc_tokens(sfmc_ids, count) as path:
                    floor_s = self.sfmc_run("floor-sfmc", path, sfmc_ids)
                    sfmc = self.sfmc_run("sfmc", path, sfmc_ids)
                runs += [floor_s, sfmc]
                self.last_sfmc = sfmc_ids
                line += (
                    f" | floor {floor_s.wrk.rps:,.0f}/s {floor_s.cpu_us_per_request:.0f} µs"
                    f" | sfmc {sfmc.wrk.rps:,.0f}/s {sfmc.cpu_us_per_request:.0f} µs"
                )
            self.last_braze = cast(str, braze.extra["distribution_id"])
            self.say(line + f" | others {braze.other_cores:.2f} cores")
        self.runs = runs

    def half_max(self, kind: str, max_rps: float) -> dict[str, Any]:
        """p99 at half the measured maximum: wrk paced by a per-connection delay.

        The run closest to the target rate is reported (all attempts are in the JSON).
        """
        plan = self.plan
        target_rps = max_rps / 2
        period_ms = 1000.0 * plan.connections / target_rps
        delay = max(1.0, period_ms - 1.0)
        attempts: list[Run] = []
        for _ in range(1 if plan.rounds == 1 else 3):
            if kind == "braze":
                run = self.braze_run("braze", delay_ms=delay)
            else:
                ids = SfmcRun.new("half")
                count = tokens_needed(target_rps * 1.3, plan.duration, plan.wrk_threads)
                with sfmc_tokens(ids, count) as path:
                    run = self.sfmc_run("sfmc", path, ids, delay_ms=delay)
            run.extra["delay_ms"] = round(delay, 2)
            attempts.append(run)
            if abs(run.wrk.rps / target_rps - 1) <= 0.10:
                break
            # Closed loop: a connection sends one request per (delay + latency), so the rate
            # reached tells the latency to leave out of the next delay. Latency itself moves
            # with the rate, so go half way only.
            latency_ms = min(max(1000.0 * plan.connections / run.wrk.rps - delay, 0.0), period_ms)
            delay = max(1.0, (delay + max(1.0, period_ms - latency_ms)) / 2)
        run = min(attempts, key=lambda r: abs(r.wrk.rps / target_rps - 1))
        return {
            "target_rps": round(target_rps, 1),
            "achieved_fraction_of_max": round(run.wrk.rps / max_rps, 3),
            **run.as_dict(),
            "attempts": [
                {
                    "delay_ms": a.extra["delay_ms"],
                    "rps": round(a.wrk.rps, 1),
                    "p99_ms": round(a.wrk.ms("p99"), 2),
                }
                for a in attempts
            ],
        }

    def commandstats(self, kind: str, count: int) -> dict[str, Any]:
        """Redis round trips per duplicate webhook: INFO commandstats and MONITOR on a sample.

        commandstats also counts the commands a Lua script runs inside Redis, so it cannot tell
        one EVALSHA running three commands from three round trips; MONITOR marks the script's
        own commands as `lua`, so client commands (round trips) are counted from it. What the
        RQ worker sends meanwhile is told apart by connection: the web processes' sockets to
        Redis are found in /proc, and only their commands are counted.
        """
        if kind == "braze":
            campaign, send_key = self.last_braze.split(":", 2)[1:]
            bodies = [
                json.dumps(braze_body(campaign, send_key, f"dup-{i}")).encode()
                for i in range(count + count // 5)
            ]
            headers = {"Authorization": f"Bearer {BRAZE_TOKEN}", "Content-Type": "application/json"}
            url = self.web.url + BRAZE_PATH
        else:
            run = self.last_sfmc
            start = 10_000_000  # contacts the load runs never used
            bodies = [sign(run.payload(start + i)) for i in range(count + count // 5)]
            headers = {"Content-Type": "application/jwt"}
            url = self.web.url + SFMC_PATH
        warm, sample = bodies[: count // 5], bodies[count // 5 :]
        with httpx.Client(timeout=30) as client:
            for body in warm:  # wakes pooled connections (redis-py's health-check PING)
                client.post(url, content=body, headers=headers)
            with Monitor(self.rdb) as watch:
                self.rdb.config_resetstat()
                started = time.monotonic()
                statuses = [
                    client.post(url, content=body, headers=headers).status_code
                    for body in sample
                ]
                elapsed = time.monotonic() - started
                stats = self._commandstats()
        # Which connections are the web tier's: their local ports, from /proc.
        redis_port = int(self.redis_proc.url.rsplit(":", 1)[1].split("/")[0])
        web_ports = client_ports(self.web.family(), redis_port)
        n = len(sample)
        web_cmds = watch.client_commands(web_ports)
        return {
            "requests": n,
            "seconds": round(elapsed, 3),
            "status_2xx": sum(1 for s in statuses if 200 <= s < 300),
            "web_client_commands": web_cmds,
            "other_client_commands": {
                k: v - web_cmds.get(k, 0) for k, v in watch.client_commands().items()
                if v - web_cmds.get(k, 0)
            },
            "commands_inside_scripts": watch.script_commands(),
            "commandstats_calls": stats,
            "evalsha_per_request": round(stats.get("evalsha", 0) / n, 3),
            "round_trips_per_request": round(sum(web_cmds.values()) / n, 3),
            "commandstats_calls_per_request": round(sum(stats.values()) / n, 3),
        }

    def _commandstats(self) -> dict[str, int]:
        """Calls per command since the last RESETSTAT, the measuring commands left out."""
        stats = self.rdb.info("commandstats")
        out = {}
        for key, value in stats.items():
            name = key.removeprefix("cmdstat_")
            if name in {"info", "config|resetstat", "monitor", "echo"}:
                continue
            out[name] = int(value["calls"])
        return out

    def commit_latency(self, sends: int) -> dict[str, Any]:
        """First webhook → Punchh POST (the sandbox stamps the campaign), worker idle."""
        headers = {"Authorization": f"Bearer {BRAZE_TOKEN}"}
        self.wait_worker_idle()
        delays: list[float] = []
        first_answers: list[float] = []
        for i in range(sends):
            campaign, send_key = braze_send()
            dist_id = f"braze:{campaign}:{send_key}"
            body = braze_body(campaign, send_key, f"first-{i}")
            t0 = time.time()
            answer = self.http.post(self.web.url + BRAZE_PATH, json=body, headers=headers)
            first_answers.append((time.time() - t0) * 1000)
            if answer.status_code != 202:
                raise RuntimeError(f"first webhook answered {answer.status_code}: {answer.text}")
            found: dict[str, Any] = {}

            def posted(dist_id: str = dist_id, found: dict[str, Any] = found) -> bool:
                for campaign_made in self.sandbox_campaigns():
                    if campaign_made["body"].get("external_campaign_id") == dist_id:
                        found.update(campaign_made)
                        return True
                return False

            if not wait_until(posted, 30, 0.01):
                raise RuntimeError(f"no Punchh campaign for {dist_id} within 30 s")
            created = datetime.fromisoformat(found["created_at"].replace("Z", "+00:00"))
            delays.append((created.timestamp() - t0) * 1000)
            self.wait_worker_idle(dist_id)
        self.committed_example = dist_id
        return {
            "sends": sends,
            "median_ms": round(statistics.median(delays), 1),
            "max_ms": round(max(delays), 1),
            "min_ms": round(min(delays), 1),
            "all_ms": [round(d, 1) for d in delays],
            "first_webhook_answer_median_ms": round(statistics.median(first_answers), 2),
        }

    def sandbox_campaigns(self) -> list[dict[str, Any]]:
        """Every campaign the sandbox made."""
        body = self.http.get(self.sandbox.url + "/_sandbox/campaigns").json()
        return list(body["campaigns"] if isinstance(body, dict) else body)

    def wait_worker_idle(self, dist_id: str | None = None) -> None:
        """Until no distribution is active and no job is queued or running (then a breath)."""

        def idle() -> bool:
            if dist_id is not None:
                state = self.rdb.hget(KEY_PREFIX + "d:" + dist_id, "state")
                if state not in (b"committed", b"rejected", b"failed", b"unknown", b"held"):
                    return False
            return (
                self.rdb.zcard(KEY_PREFIX + "active") == 0
                and self.rdb.llen("rq:queue:punchh") == 0
                and self.rdb.zcard("rq:wip:punchh") == 0
            )

        if not wait_until(idle, 60, 0.02):
            raise RuntimeError("the worker did not settle every distribution within 60 s")
        time.sleep(0.3)  # the work horse exits and the worker goes back to listening

    def committed_footprint(self) -> dict[str, Any]:
        """What one committed distribution keeps in Redis (record, events, RQ's finished job)."""
        dist_id = self.committed_example
        record_key = KEY_PREFIX + "d:" + dist_id
        raw_job = self.rdb.hget(record_key, "job_id")
        job_key = f"rq:job:{raw_job.decode()}" if isinstance(raw_job, bytes) else None
        parts = {
            "record": self.rdb.memory_usage(record_key) or 0,
            "events": self.rdb.memory_usage(KEY_PREFIX + "ev:" + dist_id) or 0,
            "rq_job_kept_after_success": (self.rdb.memory_usage(job_key) or 0) if job_key else 0,
        }
        job_ttl = self.rdb.ttl(job_key) if job_key else None
        return {**parts, "total": sum(parts.values()), "rq_job_ttl_s": job_ttl}

    def redis_connections(self) -> dict[str, int]:
        """TCP connections to Redis the web tier and the RQ worker hold open (from /proc)."""
        port = int(self.redis_proc.url.rsplit(":", 1)[1].split("/")[0])
        return {
            "web": len(client_ports(self.web.family(), port)),
            "worker": len(client_ports(self.worker.family(), port)),
        }

    def rss(self) -> dict[str, Any]:
        """Resident memory of the web master and workers, and of the RQ worker."""
        web = self.web.family()
        worker = self.worker.family()[1:]  # [0] is bench.reaper
        return {
            "web_master_mb": round(rss_bytes(web[0]) / 2**20, 1) if web else None,
            "web_workers_mb": [round(rss_bytes(p) / 2**20, 1) for p in web[1:]],
            "rq_worker_mb": round(rss_bytes(worker[0]) / 2**20, 1) if worker else None,
            "rq_worker_children_mb": [round(rss_bytes(p) / 2**20, 1) for p in worker[1:]],
        }

    # --- everything -------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """All measurements; returns the results document."""
        plan, res = self.plan, self.results
        res["machine"] = {
            "nproc": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)),
            "cpu_model": cpu_model(),
            "loadavg_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "wrk": wrk_path(),
        }
        res["plan"] = plan.__dict__
        self.start()
        res["sfmc_status"] = self.sfmc_status
        self.throughput()
        res["runs"] = [r.as_dict() for r in self.runs]
        res["throughput"] = {"braze": self.summarise("braze")}
        res["floor_plus_one_round_trip"] = self.summarise_reference()
        if self.sfmc_ok:
            res["throughput"]["sfmc"] = self.summarise("sfmc")
        res["half_max"] = {}
        for kind in res["throughput"]:
            self.say(f"half of max throughput: {kind}")
            res["half_max"][kind] = self.half_max(kind, res["throughput"][kind]["rps"])
        res["commandstats"] = {}
        for kind in res["throughput"]:
            self.say(f"redis commands per duplicate: {kind}")
            res["commandstats"][kind] = self.commandstats(kind, plan.duplicates)
        self.say(f"first webhook -> Punchh POST, {plan.commit_sends} sends")
        res["commit"] = self.commit_latency(plan.commit_sends)
        res["committed_footprint_bytes"] = self.committed_footprint()
        res["redis_connections"] = self.redis_connections()
        res["rss"] = {"before_load": self.rss_before_load, "after_load": self.rss()}
        self.say(
            f"memory: {plan.mem_distributions} distributions, "
            f"{plan.mem_low:,} -> {plan.mem_high:,} recipients (own redis-server)"
        )
        mem_redis = self.stack.redis("redis-memory")
        settings = Settings.from_env(connector_env(mem_redis.url, self.sandbox.url))
        res["memory"] = memory.measure(
            settings,
            distributions=plan.mem_distributions,
            low=plan.mem_low,
            high=plan.mem_high,
        )
        res["machine"]["loadavg_at_end"] = os.getloadavg()
        return res

    def summarise_reference(self) -> dict[str, Any]:
        """floor + one Redis round trip (Braze bodies), against the floor of the same round."""
        refs = [r for r in self.runs if r.target == "floor-redis"]
        floors = [r for r in self.runs if r.target == "floor-braze"]
        pairs = list(zip(refs, floors, strict=True))
        return {
            "rps": round(statistics.median([r.wrk.rps for r in refs]), 1),
            "cpu_us_per_request": round(
                statistics.median([r.cpu_us_per_request for r in refs]), 1
            ),
            "ratio_to_floor": round(
                statistics.median([r.wrk.rps / f.wrk.rps for r, f in pairs]), 3
            ),
            "cpu_us_above_floor": round(
                statistics.median([r.cpu_us_per_request - f.cpu_us_per_request for r, f in pairs]),
                1,
            ),
            "p99_ms": round(statistics.median([r.wrk.ms("p99") for r in refs]), 2),
        }

    def summarise(self, kind: str) -> dict[str, Any]:
        """Medians over rounds; the ratio and CPU difference are taken per round, then median."""
        mine = [r for r in self.runs if r.target == kind]
        floors = [r for r in self.runs if r.target == f"floor-{kind}"]
        ratios = [c.wrk.rps / f.wrk.rps for c, f in zip(mine, floors, strict=True)]
        above = [
            c.cpu_us_per_request - f.cpu_us_per_request for c, f in zip(mine, floors, strict=True)
        ]

        def med(values: list[float]) -> float:
            return float(statistics.median(values))

        def side(runs: list[Run]) -> dict[str, Any]:
            return {
                "rps": round(med([r.wrk.rps for r in runs]), 1),
                "p50_ms": round(med([r.wrk.ms("p50") for r in runs]), 2),
                "p95_ms": round(med([r.wrk.ms("p95") for r in runs]), 2),
                "p99_ms": round(med([r.wrk.ms("p99") for r in runs]), 2),
                "errors": sum(r.wrk.error_count for r in runs),
                "requests": sum(r.wrk.requests for r in runs),
                "cpu_us_per_request": round(med([r.cpu_us_per_request for r in runs]), 1),
                "redis_cpu_us_per_request": round(
                    med([r.redis_cpu / max(1, r.wrk.requests) * 1e6 for r in runs]), 1
                ),
                "wrk_cores": round(max(r.wrk.wrk_cpu_seconds / r.wrk.seconds for r in runs), 3),
                "other_processes_cores": round(med([r.other_cores for r in runs]), 2),
            }

        out = side(mine)
        out["floor"] = side(floors)
        out["ratio_to_floor"] = round(med(ratios), 3)
        out["ratio_per_round"] = [round(x, 3) for x in ratios]
        out["cpu_us_above_floor"] = round(med(above), 1)
        out["accepted_not_counted"] = sum(int(r.extra["accepted_not_counted"]) for r in mine)
        out["replayed_requests"] = sum(r.wrk.replays for r in mine)
        return out


def connector_env(redis_url: str, sandbox_url: str) -> dict[str, str]:
    """The connector's environment: production defaults, pointed at the sandbox."""
    return {
        "REDIS_URL": redis_url,
        "PUNCHH_BASE_URL": sandbox_url,
        "PUNCHH_API_KEY": SANDBOX_KEY,
        "API_TOKEN": API_TOKEN,
        "BRAZE_WEBHOOK_TOKEN": BRAZE_TOKEN,
        "SFMC_JWT_SECRET": SFMC_SECRET,
        "LOG_LEVEL": "INFO",
    }


# --- report ---------------------------------------------------------------------------------


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return "PASS" if ok else "MISS"


def table(res: dict[str, Any]) -> str:
    """The results table: every figure next to its target."""
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, value: str, target: str = "", ok: bool | None = None) -> None:
        rows.append((label, value, target, _verdict(ok) if target else ""))

    m = res["machine"]
    plan = res["plan"]
    thr = res.get("throughput", {})
    ref = res.get("floor_plus_one_round_trip")
    if ref:
        row(
            "reference: floor + one Redis PING / floor (CPU above floor)",
            f"{ref['ratio_to_floor']:.2f} ({ref['cpu_us_above_floor']:.0f} µs)",
        )
    for kind in ("braze", "sfmc"):
        t = thr.get(kind)
        if t is None:
            row(f"{kind}: intake", f"{kind}: {res.get('sfmc_status')}", "", None)
            continue
        f = t["floor"]
        row(f"{kind}: floor req/s (bare Flask, same gunicorn)", f"{f['rps']:,.0f}")
        row(f"{kind}: connector req/s", f"{t['rps']:,.0f}")
        row(
            f"{kind}: connector / floor",
            f"{t['ratio_to_floor']:.2f}",
            f"≥ {TARGET_RATIO:.2f}",
            t["ratio_to_floor"] >= TARGET_RATIO,
        )
        row(
            f"{kind}: latency p50 / p95 / p99 (max load)",
            f"{t['p50_ms']:.1f} / {t['p95_ms']:.1f} / {t['p99_ms']:.1f} ms",
        )
        row(
            f"{kind}: floor latency p50 / p95 / p99",
            f"{f['p50_ms']:.1f} / {f['p95_ms']:.1f} / {f['p99_ms']:.1f} ms",
        )
        row(f"{kind}: errors (connector / floor)", f"{t['errors']} / {f['errors']}", "0",
            t["errors"] == 0)
        row(f"{kind}: 2xx answered but not counted", str(t["accepted_not_counted"]), "0",
            t["accepted_not_counted"] == 0)
        row(
            f"{kind}: gunicorn CPU per request (connector / floor)",
            f"{t['cpu_us_per_request']:.0f} / {f['cpu_us_per_request']:.0f} µs",
        )
        row(
            f"{kind}: CPU above the floor",
            f"{t['cpu_us_above_floor']:.0f} µs",
            f"≤ {TARGET_CPU_ABOVE_FLOOR_US:.0f} µs",
            t["cpu_us_above_floor"] <= TARGET_CPU_ABOVE_FLOOR_US,
        )
        redis_us = t["redis_cpu_us_per_request"]
        row(
            f"{kind}: Redis CPU per counted webhook (→ webhooks/s one Redis core carries)",
            f"{redis_us:.0f} µs (≈ {1e6 / redis_us:,.0f}/s)" if redis_us > 0 else "n/a",
        )
        h = res.get("half_max", {}).get(kind)
        if h:
            lat = h["latency_ms"]
            row(
                f"{kind}: at half max ({h['rps']:,.0f} req/s = "
                f"{h['achieved_fraction_of_max']:.2f} of max) p50 / p99",
                f"{lat['p50']:.1f} / {lat['p99']:.1f} ms",
                f"p99 ≤ {TARGET_P99_HALF_MS:.0f} ms",
                lat["p99"] <= TARGET_P99_HALF_MS,
            )
        c = res.get("commandstats", {}).get(kind)
        if c:
            inside = sum(c["commands_inside_scripts"].values()) / c["requests"]
            row(
                f"{kind}: Redis round trips per duplicate (EVALSHA; + inside the script)",
                f"{c['round_trips_per_request']:.2f} ({c['evalsha_per_request']:.2f}; "
                f"+{inside:.2f})",
                f"{TARGET_COMMANDS_PER_DUPLICATE:.0f} round trip",
                abs(c["round_trips_per_request"] - TARGET_COMMANDS_PER_DUPLICATE) <= 0.02,
            )
        row(
            f"{kind}: wrk's own CPU (max of runs)",
            f"{t['wrk_cores']:.2f} core",
            f"≤ {TARGET_WRK_CORES:.2f} core",
            t["wrk_cores"] <= TARGET_WRK_CORES,
        )
    mem = res.get("memory")
    fp = res.get("committed_footprint_bytes")
    if mem:
        row(
            "redis bytes per distribution, kept (record + indexes)",
            f"{mem['ledger_per_distribution_bytes']:,.0f} B",
            f"≤ {TARGET_BYTES_PER_DISTRIBUTION:,} B",
            mem["ledger_per_distribution_bytes"] <= TARGET_BYTES_PER_DISTRIBUTION,
        )
        row(
            "  record hash / + its commit job while queued (RQ hash, gone on success)",
            f"{mem['record_bytes']:,.0f} ({mem['record_encoding']}) / "
            f"{mem['queued_job_bytes'] or 0:,.0f} B",
        )
    if fp:
        row(
            "committed distribution: record + events + RQ job left",
            f"{fp['record']:,} + {fp['events']:,} + {fp['rq_job_kept_after_success']:,} B",
            f"≤ {TARGET_BYTES_PER_DISTRIBUTION:,} B",
            fp["total"] <= TARGET_BYTES_PER_DISTRIBUTION,
        )
    if mem:
        for kind in ("braze", "sfmc"):
            g = mem[kind]
            row(
                f"redis growth {g['low']:,} -> {g['high']:,} recipients, one {kind} send",
                f"{g['growth_bytes']:,} B ({g['growth_per_recipient']:.1f} B/recipient)",
                f"≤ {TARGET_GROWTH_BYTES:,} B",
                g["growth_bytes"] <= TARGET_GROWTH_BYTES,
            )
        w = mem.get("sfmc_after_window")
        if w:
            row(
                f"  sfmc, readings taken after a {w['window_seconds']} s replay window",
                f"{w['growth_bytes']:,} B ({w['growth_per_recipient']:.1f} B/recipient)",
            )
    conns = res.get("redis_connections")
    if conns:
        row(
            "Redis connections held after load: web processes / RQ worker",
            f"{conns['web']} / {conns['worker']}",
        )
    c = res.get("commit")
    if c:
        row(
            f"first webhook -> Punchh POST, median of {c['sends']} (max)",
            f"{c['median_ms']:.0f} ms ({c['max_ms']:.0f} ms)",
            f"≤ {TARGET_COMMIT_MEDIAN_MS:.0f} ms",
            c["median_ms"] <= TARGET_COMMIT_MEDIAN_MS,
        )
    rss = res.get("rss")
    if rss:
        a, b = rss["before_load"], rss["after_load"]
        row(
            "RSS web master / workers, before the measured load",
            f"{a['web_master_mb']} / {', '.join(map(str, a['web_workers_mb']))} MB",
        )
        row(
            "RSS web master / workers, after all load",
            f"{b['web_master_mb']} / {', '.join(map(str, b['web_workers_mb']))} MB",
        )
        row(
            "RSS RQ worker (+ scheduler)",
            f"{b['rq_worker_mb']} MB (+ {', '.join(map(str, b['rq_worker_children_mb'])) or '-'})",
        )

    width = [max(len(r[i]) for r in rows) for i in range(4)]
    head = (
        f"punchh-connector intake benchmark — nproc {m['nproc']} ({m['cpu_model']}), "
        f"load average at start {m['loadavg_at_start'][0]:.2f}\n"
        f"gunicorn gthread {plan['web_workers']} workers x {plan['web_threads']} threads "
        f"(gunicorn.conf.py); wrk {plan['wrk_threads']} threads x {plan['connections']} "
        f"connections, {plan['duration']:g} s runs, median of {plan['rounds']} "
        "alternated rounds (floor, floor+redis, braze, floor, sfmc)"
    )
    others = [t["other_processes_cores"] for t in thr.values()]
    if others:
        head += f"\nother processes on the machine used ≈ {max(others):.2f} cores during the runs"
    lines = [head, ""]
    for r in rows:
        lines.append(
            f"{r[0]:<{width[0]}}  {r[1]:>{width[1]}}  {r[2]:<{width[2]}}  {r[3]}".rstrip()
        )
    return "\n".join(lines)


def figures_missing(res: dict[str, Any]) -> list[str]:
    """Figures the results document should have but lacks (the smoke test checks this)."""
    kinds = ["braze"] + (["sfmc"] if res.get("sfmc_status") == "ok" else [])
    need = [f"throughput.{k}.{f}" for k in kinds for f in (
        "rps", "p50_ms", "p95_ms", "p99_ms", "errors", "ratio_to_floor",
        "cpu_us_per_request", "cpu_us_above_floor", "floor.rps", "floor.cpu_us_per_request",
        "wrk_cores", "redis_cpu_us_per_request",
    )]
    need += [f"half_max.{k}.latency_ms.p99" for k in kinds]
    need += [f"commandstats.{k}.round_trips_per_request" for k in kinds]
    need += [
        "floor_plus_one_round_trip.ratio_to_floor",
        "memory.per_distribution_bytes",
        "memory.braze.growth_bytes",
        "memory.sfmc.growth_bytes",
        "commit.median_ms",
        "commit.max_ms",
        "rss.after_load.web_workers_mb",
        "rss.after_load.rq_worker_mb",
        "machine.nproc",
    ]
    missing = []
    for path in need:
        node: Any = res
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None or node == []:
            missing.append(path)
    return missing


# --- entry point ----------------------------------------------------------------------------


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM / SIGHUP: unwind so every started process is stopped."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write the JSON if asked."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
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
    args = parser.parse_args(argv)
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
            bench = Bench(plan, stack, say)
            results = bench.run()
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
