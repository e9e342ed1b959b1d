"""Running and measuring under load: wrk runs with every party's CPU counted around them.

`LoadRuns` drives the rig's servers with wrk: the warm-up, the alternated rounds (floor,
floor + one round trip, Braze, floor, SFMC, floor, Braze audience mode) and the paced runs at
half of the maximum. Each `Run` carries the CPU the servers, Redis, the worker, the sandbox and
the whole machine used during it (bench.report turns the runs into medians).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from bench.audience import AudienceSend, settle
from bench.cpu import machine_busy_seconds, tree_cpu_seconds
from bench.load import SfmcRun, WrkResult, braze_send, run_wrk, sfmc_tokens, tokens_needed
from bench.plan import BRAZE_PATH, BRAZE_TOKEN, KEY_PREFIX, SFMC_PATH, Plan
from bench.rig import Rig
from stack import Proc, cpu_seconds


@dataclass
class Run:
    """One wrk run against one target, with the CPU every party used during it."""

    target: str  # floor-braze | braze | floor-sfmc | sfmc
    wrk: WrkResult
    server_cpu: float
    redis_cpu: float
    worker_cpu: float
    machine_cpu: float
    #: The Punchh sandbox's CPU: on this machine it answers the worker's calls, in production
    #: Punchh does, elsewhere.
    sandbox_cpu: float
    extra: dict[str, Any]

    @property
    def cpu_us_per_request(self) -> float:
        """gunicorn master + workers CPU per completed request, in microseconds."""
        return self.server_cpu / self.wrk.requests * 1e6 if self.wrk.requests else float("nan")

    @property
    def other_cores(self) -> float:
        """Cores used by processes outside the benchmark during the run (other users)."""
        ours = self.server_cpu + self.redis_cpu + self.worker_cpu + self.sandbox_cpu
        ours += self.wrk.wrk_cpu_seconds
        return max(0.0, (self.machine_cpu - ours) / self.wrk.seconds) if self.wrk.seconds else 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "target": self.target,
            **self.wrk.as_dict(),
            "gunicorn_cpu_us_per_request": round(self.cpu_us_per_request, 1),
            "redis_cpu_us_per_request": round(self.redis_cpu / max(1, self.wrk.requests) * 1e6, 1),
            "worker_cpu_us_per_request": round(
                self.worker_cpu / max(1, self.wrk.requests) * 1e6, 1
            ),
            "sandbox_cpu_us_per_request": round(
                self.sandbox_cpu / max(1, self.wrk.requests) * 1e6, 1
            ),
            "gunicorn_cores": round(self.server_cpu / self.wrk.seconds, 3),
            "other_processes_cores": round(self.other_cores, 3),
            **self.extra,
        }


class LoadRuns:
    """wrk runs against the rig's servers, and what the alternated rounds found."""

    def __init__(self, plan: Plan, rig: Rig, say: Callable[[str], None]) -> None:
        self.plan = plan
        self.rig = rig
        self.say = say
        self.runs: list[Run] = []
        self.rss_before_load: dict[str, Any] = {}
        #: The last round's sends, reused for the duplicate webhooks of the round-trip count.
        self.last_braze = ""
        self.last_sfmc: SfmcRun | None = None

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
        plan, rig = self.plan, self.rig
        server = server or rig.server_for(target)
        server_pids = server.family()
        before = (
            cpu_seconds(server_pids),
            cpu_seconds([rig.redis_proc.pid]),
            tree_cpu_seconds(rig.worker),
            machine_busy_seconds(),
            cpu_seconds([rig.sandbox.pid]),
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
            cpu_seconds([rig.redis_proc.pid]),
            tree_cpu_seconds(rig.worker),
            machine_busy_seconds(),
            cpu_seconds([rig.sandbox.pid]),
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
            after[4] - before[4],
            {},
        )

    def braze_run(self, target: str, **kw: Any) -> Run:
        """Braze fan-out: one new send, a different recipient per request."""
        campaign, send_key = braze_send()
        env = {"BENCH_CAMPAIGN": campaign, "BENCH_SEND_KEY": send_key, "BENCH_TOKEN": BRAZE_TOKEN}
        server = self.rig.server_for(target)
        run = self.measure(target, server.url + BRAZE_PATH, "braze", env, **kw)
        if not target.startswith("floor"):
            self.check_counted(run, f"braze:{campaign}:{send_key}")
        return run

    def audience_run(self, target: str, **kw: Any) -> Run:
        """Braze audience mode: one new send, a different recipient and identifier per request.

        The worker delivers the send's batches while wrk runs, as in production. Afterwards the
        send is ended through /v1 and settled, so the next run starts on an idle worker, and
        every identifier answered 2xx must have reached Punchh.
        """
        send = AudienceSend.new()
        server = self.rig.server_for(target)
        run = self.measure(target, server.url + BRAZE_PATH, "audience", send.env(), **kw)
        if target.startswith("floor"):
            return run
        self.check_counted(run, send.distribution_id)
        settled = settle(self.rig, send.distribution_id, end=True)
        answered_2xx = run.wrk.requests - run.wrk.errors["status"]
        run.extra["settled"] = settled
        run.extra["accepted_not_delivered"] = max(0, answered_2xx - settled["delivered"])
        return run

    def sfmc_run(self, target: str, tokens: Path, run_ids: SfmcRun, **kw: Any) -> Run:
        """SFMC executes: one journey run, a different contact per request (pre-signed)."""
        server = self.rig.server_for(target)
        env = {"BENCH_TOKENS_FILE": str(tokens)}
        run = self.measure(target, server.url + SFMC_PATH, "sfmc", env, **kw)
        if not target.startswith("floor"):
            self.check_counted(run, run_ids.distribution_id)
        return run

    def check_counted(self, run: Run, distribution_id: str) -> None:
        """Every 2xx answer must be a recipient counted in Redis (nothing accepted is lost)."""
        raw = self.rig.rdb.hget(KEY_PREFIX + "d:" + distribution_id, "recipients")
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
        if self.rig.sfmc_ok:
            warm = SfmcRun.new("warm")
            with sfmc_tokens(warm, tokens_needed(8000, plan.warmup, plan.wrk_threads)) as path:
                self.sfmc_run("floor-sfmc", path, warm, duration=plan.warmup)
                self.sfmc_run("sfmc", path, warm, duration=plan.warmup)
        self.audience_run("floor-audience", duration=plan.warmup)
        self.audience_run("audience", duration=plan.warmup)
        self.rss_before_load = self.rig.rss()

    def throughput(self) -> None:
        """Floors and connector alternated, per round: floor, floor+redis, braze, floor, sfmc,
        floor, audience."""
        plan = self.plan
        self.rss_before_load = self.rig.rss()
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
            if self.rig.sfmc_ok:
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
            floor_a = self.audience_run("floor-audience")
            audience = self.audience_run("audience")
            runs += [floor_a, audience]
            line += (
                f" | floor {floor_a.wrk.rps:,.0f}/s {floor_a.cpu_us_per_request:.0f} µs"
                f" | audience {audience.wrk.rps:,.0f}/s {audience.cpu_us_per_request:.0f} µs"
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
            elif kind == "audience":
                run = self.audience_run("audience", delay_ms=delay)
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
