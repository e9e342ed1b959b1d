"""`GET /metrics`: Prometheus text format, derived from Redis at scrape time.

Why Redis and not prometheus_client's in-process or multiprocess registries: every figure has
to be right whichever gunicorn worker process, and whichever web dyno, answers the scrape, and
has to include what the RQ workers did. An in-process registry reports only the answering
process's share; the multiprocess mode sums files on one machine's disk, so separate dynos
(or a web dyno and a worker dyno) each report their own part. So the counters live in one
Redis hash that the intake script, the Punchh client's observer and the commit job update
inside the round trips they make anyway: no extra Redis call on the webhook hot path.

prometheus_client still does the exposition: a Collector built per scrape turns the Redis
figures into metric families, and `generate_latest` renders them from a private registry (the
library's default registry would add this process's own figures, which mean nothing here).
The comparison that chose this design is in docs/operations.md, "Metrics".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from connector.health import oldest_queued_age, worker_count
from connector.operator_auth import require_operator
from ledger.census import count_states, read_counters
from ledger.store import LATENCY_BUCKETS
from wiring.services import Services
from wiring.services import current_services as services

bp = Blueprint("metrics", __name__)

PREFIX = "punchh_connector_"
#: The classic text format: every Prometheus version scrapes it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def _bucket_bound(label: str) -> float:
    return math.inf if label == "+Inf" else float(label)


def _le(bound: float) -> str:
    """A bucket's `le` label as the counters hash spells it ("1", "0.25", "+Inf").

    The label value is part of the series' identity, so it keeps the spelling dashboards
    already query rather than prometheus_client's "1.0".
    """
    if math.isinf(bound):
        return "+Inf"
    return str(int(bound)) if bound.is_integer() else repr(bound)


class RedisCollector(Collector):
    """Every metric, read from Redis when collected."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        """The metric families, in the order the scrape shows them."""
        counters = read_counters(self.svc.ledger)
        yield from self._intake_and_punchh(counters)
        yield from self._commits(counters)
        yield from self._queue()

    def _intake_and_punchh(self, counters: dict[str, float]) -> Iterator[Metric]:
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

        webhooks = CounterMetricFamily(
            f"{PREFIX}webhooks_total",
            "Intake requests (webhooks and API) by source and outcome: created, counted, "
            "replay, conflict, or http_<status> for a refusal.",
            labels=["source", "outcome"],
        )
        for (source, outcome), value in sorted(intake.items()):
            webhooks.add_metric([source, outcome], value)
        yield webhooks

        states = GaugeMetricFamily(
            f"{PREFIX}distributions",
            "Distributions kept in the ledger (within retention), by state.",
            labels=["state"],
        )
        for state, count in sorted(count_states(self.svc.ledger).items()):
            states.add_metric([state], count)
        yield states

        requests = CounterMetricFamily(
            f"{PREFIX}punchh_requests_total",
            "Requests to Punchh by endpoint and HTTP status (or connect_error, no_answer).",
            labels=["endpoint", "status"],
        )
        for (endpoint, status), value in sorted(punchh.items()):
            requests.add_metric([endpoint, status], value)
        yield requests

        durations = HistogramMetricFamily(
            f"{PREFIX}punchh_request_duration_seconds",
            "Punchh request latency by endpoint.",
            labels=["endpoint"],
        )
        # The hash counts each request in one bucket; the exposition wants running totals.
        bounds = [str(b) for b in LATENCY_BUCKETS] + ["+Inf"]
        for endpoint in sorted(set(latency) | set(latency_sum)):
            counts = latency.get(endpoint, {})
            running, buckets = 0.0, []
            for bound in sorted(set(bounds) | set(counts), key=_bucket_bound):
                running += counts.get(bound, 0.0)
                buckets.append((_le(_bucket_bound(bound)), running))
            durations.add_metric([endpoint], buckets, latency_sum.get(endpoint, 0.0))
        yield durations

    def _commits(self, counters: dict[str, float]) -> Iterator[Metric]:
        refusal = self.svc.lockout.current()
        yield GaugeMetricFamily(
            f"{PREFIX}punchh_lockout_remaining_seconds",
            "Seconds until calls to Punchh resume after it refused the API key "
            "(0: not locked out).",
            value=refusal.retry_after if refusal else 0,
        )
        yield SummaryMetricFamily(
            f"{PREFIX}commit_latency_seconds",
            "Seconds from a send's first intake request to its Punchh campaign being committed.",
            count_value=int(counters.get("commits_total", 0)),
            sum_value=counters.get("commit_seconds_sum", 0.0),
        )
        yield CounterMetricFamily(
            f"{PREFIX}commit_ledger_mismatch_total",
            "Punchh campaigns whose answer found the ledger in another state than committing "
            "(a write lost to a failover or crash), recorded committed anyway.",
            value=counters.get("commit_ledger_mismatch", 0.0),
        )

    def _queue(self) -> Iterator[Metric]:
        queue = self.svc.queue
        registries: tuple[tuple[str, Any], ...] = (
            ("scheduled", ScheduledJobRegistry(queue=queue)),  # type: ignore[no-untyped-call]
            ("started", StartedJobRegistry(queue=queue)),
            ("deferred", DeferredJobRegistry(queue=queue)),
            ("failed", FailedJobRegistry(queue=queue)),
        )
        jobs = GaugeMetricFamily(
            f"{PREFIX}queue_jobs",
            "RQ jobs on the connector's queue by status (failed = jobs that raised).",
            labels=["queue", "status"],
        )
        jobs.add_metric([queue.name, "queued"], queue.count)
        for status, registry in registries:
            jobs.add_metric([queue.name, status], registry.count)
        yield jobs

        oldest = GaugeMetricFamily(
            f"{PREFIX}queue_oldest_job_age_seconds",
            "Seconds the oldest queued job has waited (0 when the queue is empty).",
            labels=["queue"],
        )
        oldest.add_metric([queue.name], round(oldest_queued_age(self.svc) or 0.0, 3))
        yield oldest

        workers = GaugeMetricFamily(
            f"{PREFIX}workers", "RQ workers registered on the connector's queue.", labels=["queue"]
        )
        workers.add_metric([queue.name], worker_count(self.svc))
        yield workers


def collect(svc: Services) -> str:
    """Every metric, read from Redis now, in the text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(svc))
    return generate_latest(registry).decode()


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format, behind the API token (Bearer, or Basic with it as password)."""
    require_operator()
    return Response(collect(services()), mimetype=None, content_type=CONTENT_TYPE)
