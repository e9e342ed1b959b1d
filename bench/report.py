"""Printing and writing the figures: medians over the runs, the table, the figures a run lacks.

The summaries take medians over rounds, each ratio and CPU difference against the floor run of
the same round (so drift on a shared machine hits both sides alike); `table` prints every
figure next to its target with PASS or MISS and asserts nothing.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.measure import Run
from bench.plan import (
    TARGET_BYTES_PER_DISTRIBUTION,
    TARGET_COMMANDS_PER_DUPLICATE,
    TARGET_COMMIT_MEDIAN_MS,
    TARGET_CPU_ABOVE_FLOOR_US,
    TARGET_GROWTH_BYTES,
    TARGET_P99_HALF_MS,
    TARGET_RATIO,
    TARGET_WRK_CORES,
)
from bench.report_audience import audience_figures, audience_rows


def summarise_reference(runs: list[Run]) -> dict[str, Any]:
    """floor + one Redis round trip (Braze bodies), against the floor of the same round."""
    refs = [r for r in runs if r.target == "floor-redis"]
    floors = [r for r in runs if r.target == "floor-braze"]
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


def summarise(runs: list[Run], kind: str) -> dict[str, Any]:
    """Medians over rounds; the ratio and CPU difference are taken per round, then median."""
    mine = [r for r in runs if r.target == kind]
    floors = [r for r in runs if r.target == f"floor-{kind}"]
    ratios = [c.wrk.rps / f.wrk.rps for c, f in zip(mine, floors, strict=True)]
    above = [
        c.cpu_us_per_request - f.cpu_us_per_request for c, f in zip(mine, floors, strict=True)
    ]

    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    def side(group: list[Run]) -> dict[str, Any]:
        return {
            "rps": round(med([r.wrk.rps for r in group]), 1),
            "p50_ms": round(med([r.wrk.ms("p50") for r in group]), 2),
            "p95_ms": round(med([r.wrk.ms("p95") for r in group]), 2),
            "p99_ms": round(med([r.wrk.ms("p99") for r in group]), 2),
            "errors": sum(r.wrk.error_count for r in group),
            "requests": sum(r.wrk.requests for r in group),
            "cpu_us_per_request": round(med([r.cpu_us_per_request for r in group]), 1),
            "redis_cpu_us_per_request": round(
                med([r.redis_cpu / max(1, r.wrk.requests) * 1e6 for r in group]), 1
            ),
            "worker_cpu_us_per_request": round(
                med([r.worker_cpu / max(1, r.wrk.requests) * 1e6 for r in group]), 1
            ),
            "sandbox_cpu_us_per_request": round(
                med([r.sandbox_cpu / max(1, r.wrk.requests) * 1e6 for r in group]), 1
            ),
            "wrk_cores": round(max(r.wrk.wrk_cpu_seconds / r.wrk.seconds for r in group), 3),
            "other_processes_cores": round(med([r.other_cores for r in group]), 2),
        }

    out = side(mine)
    out["floor"] = side(floors)
    out["ratio_to_floor"] = round(med(ratios), 3)
    out["ratio_per_round"] = [round(x, 3) for x in ratios]
    out["cpu_us_above_floor"] = round(med(above), 1)
    out["accepted_not_counted"] = sum(int(r.extra["accepted_not_counted"]) for r in mine)
    out["replayed_requests"] = sum(r.wrk.replays for r in mine)
    if kind == "audience":
        out["accepted_not_delivered"] = sum(int(r.extra["accepted_not_delivered"]) for r in mine)
    return out


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
    for kind in ("braze", "sfmc", "audience"):
        t = thr.get(kind)
        if t is None:
            row(f"{kind}: intake", f"{kind}: {res.get(f'{kind}_status', 'not measured')}")
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
        if "accepted_not_delivered" in t:
            row(f"{kind}: 2xx answered but not delivered to Punchh (add_users)",
                str(t["accepted_not_delivered"]), "0", t["accepted_not_delivered"] == 0)
            row(
                f"{kind}: RQ worker / sandbox CPU per request, delivering alongside",
                f"{t['worker_cpu_us_per_request']:.0f} / {t['sandbox_cpu_us_per_request']:.0f} µs",
            )
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
    audience_rows(res, row)
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
        "alternated rounds (floor, floor+redis, braze, floor, sfmc, floor, audience)"
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
    kinds = ["braze"] + (["sfmc"] if res.get("sfmc_status") == "ok" else []) + ["audience"]
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
        *audience_figures(res),
    ]
    missing = []
    for path in need:
        node: Any = res
        for part in path.split("."):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                node = node.get(part) if isinstance(node, dict) else None
        if node is None or node == []:
            missing.append(path)
    return missing
