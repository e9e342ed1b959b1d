"""`GET /metrics`: Prometheus text format, derived from Redis at scrape time.

Why Redis and not the client library's in-process or multiprocess registries: every figure
has to be right whichever gunicorn worker process, and whichever web dyno, answers the scrape,
and has to include what the RQ workers did. Measured (docs/operations.md, "Metrics"):

- prometheus_client's default registry under gunicorn with 2 workers: after 400 requests,
  eight scrapes reported 197 or 203 — only the answering process's share.
- Its multiprocess mode (≈ 1.6 µs per increment, against 0.6 µs in-process) is right for one
  machine only: it sums mmap files in a local directory, so two dynos (or a web dyno and a
  worker dyno) each report their own part, and the directory must be wiped on every start.
- A separate HINCRBY per request would cost a Redis round trip (≈ 140 µs measured here). The
  counters here live in one Redis hash (`{prefix}m`) that the intake Lua script, the Punchh
  client's observer and the commit job update inside the round trips they make anyway: no
  extra Redis call on the webhook hot path (refusals, off the hot path, cost one HINCRBY).
  A scrape costs a handful of Redis calls plus one pipelined HGET per distribution kept
  (measured ≈ 110 ms for 10,000; HGETALL per record took
  ≈ 350 ms).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, cast

from flask import Blueprint, Response
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from connector.health import oldest_queued_age, worker_count
from connector.status import require_operator
from ledger.states import State
from wiring.services import LATENCY_BUCKETS, Services
from wiring.services import current_services as services

bp = Blueprint("metrics", __name__)

PREFIX = "punchh_connector_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Most distributions read per scrape for the by-state gauge (newest first).
MAX_STATE_SCAN = 20000
_STATE_BATCH = 1000



def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _label(value: str) -> str:
    """A label value escaped as the text format requires."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Builds the text format: HELP and TYPE once per family, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        """Start a metric family."""
        self.lines.append(f"# HELP {PREFIX}{name} {help_text}")
        self.lines.append(f"# TYPE {PREFIX}{name} {kind}")

    def sample(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        """One sample line."""
        rendered = ""
        if labels:
            rendered = "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"
        self.lines.append(f"{PREFIX}{name}{rendered} {_number(value)}")

    def render(self) -> str:
        """The whole exposition, newline-terminated."""
        return "\n".join(self.lines) + "\n"


def read_counters(svc: Services) -> dict[str, float]:
    """The shared counters hash (integers and the float latency sums)."""
    raw = cast(dict[Any, Any], svc.redis.hgetall(svc.ledger.metrics_key))
    out: dict[str, float] = {}
    for key, value in raw.items():
        try:
            out[_text(key)] = float(_text(value))
        except ValueError:
            continue
    return out


def count_states(svc: Services, limit: int = MAX_STATE_SCAN) -> dict[str, int]:
    """Distributions in the ledger by state: one pipelined HGET per record, newest first."""
    counts = {s.value: 0 for s in State}
    ledger = svc.ledger
    for start in range(0, limit, _STATE_BATCH):
        ids = cast(
            list[Any],
            svc.redis.zrevrange(ledger.index_key, start, min(start + _STATE_BATCH, limit) - 1),
        )
        if not ids:
            break
        pipe = svc.redis.pipeline(transaction=False)
        for dist_id in ids:
            pipe.hget(ledger.record_key(_text(dist_id)), "state")
        for state in pipe.execute():
            if state is not None:
                name = _text(state)
                counts[name] = counts.get(name, 0) + 1
        if len(ids) < _STATE_BATCH:
            break
    return counts


def _bucket_bound(label: str) -> float:
    return math.inf if label == "+Inf" else float(label)


def collect(svc: Services) -> str:
    """Every metric, read from Redis now."""
    counters = read_counters(svc)
    out = Exposition()

    intake: dict[tuple[str, str], float] = {}
    punchh: dict[tuple[str, str], float] = {}
    latency: dict[str, dict[str, float]] = defaultdict(dict)
    latency_sum: dict[str, float] = {}
    for key, value in counters.items():
        kind, _, rest = key.partition(":")
        if kind == "intake":
            source, _, outcome = rest.rpartition(":")
            if outcome.isdigit():
                outcome = f"http_{outcome}"
            intake[(source, outcome)] = value
        elif kind == "punchh":
            endpoint, _, status = rest.rpartition(":")
            punchh[(endpoint, status)] = value
        elif kind == "punchh_latency":
            endpoint, _, bucket = rest.rpartition(":")
            latency[endpoint][bucket] = value
        elif kind == "punchh_latency_sum":
            latency_sum[rest] = value

    out.family(
        "webhooks_total",
        "counter",
        "Intake requests (webhooks and API) by source and outcome: created, counted, replay, "
        "conflict, or http_<status> for a refusal.",
    )
    for (source, outcome), value in sorted(intake.items()):
        out.sample("webhooks_total", value, {"source": source, "outcome": outcome})

    out.family(
        "distributions",
        "gauge",
        "Distributions kept in the ledger (within retention), by state.",
    )
    for state, count in sorted(count_states(svc).items()):
        out.sample("distributions", count, {"state": state})

    out.family(
        "punchh_requests_total",
        "counter",
        "Requests to Punchh by endpoint and HTTP status (or connect_error, no_answer).",
    )
    for (endpoint, status), value in sorted(punchh.items()):
        out.sample("punchh_requests_total", value, {"endpoint": endpoint, "status": status})

    out.family(
        "punchh_request_duration_seconds",
        "histogram",
        "Punchh request latency by endpoint.",
    )
    bounds = [str(b) for b in LATENCY_BUCKETS] + ["+Inf"]
    for endpoint in sorted(set(latency) | set(latency_sum)):
        buckets = latency.get(endpoint, {})
        running = 0.0
        for bound in sorted(set(bounds) | set(buckets), key=_bucket_bound):
            running += buckets.get(bound, 0.0)
            out.sample(
                "punchh_request_duration_seconds_bucket",
                running,
                {"endpoint": endpoint, "le": _number(_bucket_bound(bound))},
            )
        out.sample(
            "punchh_request_duration_seconds_sum",
            latency_sum.get(endpoint, 0.0),
            {"endpoint": endpoint},
        )
        out.sample("punchh_request_duration_seconds_count", running, {"endpoint": endpoint})

    out.family(
        "punchh_lockout_remaining_seconds",
        "gauge",
        "Seconds until calls to Punchh resume after it refused the API key (0: not locked out).",
    )
    refusal = svc.lockout.current()
    out.sample("punchh_lockout_remaining_seconds", refusal.retry_after if refusal else 0)

    out.family(
        "commit_latency_seconds",
        "summary",
        "Seconds from a send's first intake request to its Punchh campaign being committed.",
    )
    out.sample("commit_latency_seconds_sum", counters.get("commit_seconds_sum", 0.0))
    out.sample("commit_latency_seconds_count", counters.get("commits_total", 0.0))

    out.family(
        "commit_ledger_mismatch_total",
        "counter",
        "Punchh campaigns whose answer found the ledger in another state than committing "
        "(a write lost to a failover or crash), recorded committed anyway.",
    )
    out.sample("commit_ledger_mismatch_total", counters.get("commit_ledger_mismatch", 0.0))

    _queue_metrics(svc, out)
    return out.render()


def _queue_metrics(svc: Services, out: Exposition) -> None:
    queue = svc.queue
    registries: Iterable[tuple[str, Any]] = (
        ("scheduled", ScheduledJobRegistry(queue=queue)),  # type: ignore[no-untyped-call]
        ("started", StartedJobRegistry(queue=queue)),
        ("deferred", DeferredJobRegistry(queue=queue)),
        ("failed", FailedJobRegistry(queue=queue)),
    )
    out.family(
        "queue_jobs",
        "gauge",
        "RQ jobs on the connector's queue by status (failed = jobs that raised).",
    )
    labels = {"queue": queue.name}
    out.sample("queue_jobs", queue.count, {**labels, "status": "queued"})
    for status, registry in registries:
        out.sample("queue_jobs", registry.count, {**labels, "status": status})

    out.family(
        "queue_oldest_job_age_seconds",
        "gauge",
        "Seconds the oldest queued job has waited (0 when the queue is empty).",
    )
    out.sample("queue_oldest_job_age_seconds", round(oldest_queued_age(svc) or 0.0, 3), labels)

    out.family("workers", "gauge", "RQ workers registered on the connector's queue.")
    out.sample("workers", worker_count(svc), labels)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format, behind the API token (Bearer, or Basic with it as password)."""
    require_operator()
    return Response(collect(services()), mimetype=None, content_type=CONTENT_TYPE)
