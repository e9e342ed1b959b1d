"""`/metrics`: Prometheus text derived from Redis, right across processes."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from flask.testing import FlaskClient

from tests.conftest import auth
from tests.helpers import dist_request, fault, submit
from tests.procs import start_gunicorn
from wiring.services import Services
from workers.commit import Committer

_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples keyed by (name, labels); asserts every family has HELP and TYPE first."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        match = _SAMPLE.match(line)
        assert match, line
        name = match["name"]
        assert any(name == t or name.startswith(t + "_") for t in typed), f"untyped {name}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        samples[(name, labels)] = float(match["value"])
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return samples.get((f"punchh_connector_{name}", frozenset(labels.items())), 0.0)


def scrape(client: FlaskClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    reply = client.get("/metrics", headers=auth())
    assert reply.status_code == 200
    assert reply.content_type.startswith("text/plain; version=0.0.4")
    return parse(reply.get_data(as_text=True))


def test_metrics_need_the_api_token(client: FlaskClient, services: Services) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth("nope")).status_code == 401


def test_metrics_cover_intake_states_punchh_commits_and_queue(
    client: FlaskClient, services: Services, sandbox: httpx.Client
) -> None:
    body = {"segment": "Lapsed 90 days", "redeemable": "Free Coffee"}
    for _ in range(5):
        client.post("/v1/distributions", json=body, headers={**auth(), "Idempotency-Key": "m-1"})
    client.post("/v1/distributions", json=body)  # 401
    committed = "api:default:m-1"
    Committer(services).run(committed)
    fault(sandbox, "campaigns", "504")
    unknown = submit(services, dist_request("m-2")).distribution_id
    Committer(services).run(unknown)
    submit(services, dist_request("m-3"))  # stays queued

    s = scrape(client)
    assert value(s, "webhooks_total", source="api", outcome="created") == 3
    assert value(s, "webhooks_total", source="api", outcome="counted") == 4
    assert value(s, "webhooks_total", source="api", outcome="http_401") == 1
    assert value(s, "distributions", state="committed") == 1
    assert value(s, "distributions", state="unknown") == 1
    assert value(s, "distributions", state="queued") == 1
    assert value(s, "distributions", state="failed") == 0
    assert value(s, "punchh_requests_total", endpoint="campaigns", status="200") == 1
    assert value(s, "punchh_requests_total", endpoint="campaigns", status="504") == 1
    segments = sum(
        v for (n, labels), v in s.items()
        if n == "punchh_connector_punchh_requests_total" and ("endpoint", "segments") in labels
    )
    # The histogram: cumulative buckets ending in +Inf == count == requests made.
    inf = value(s, "punchh_request_duration_seconds_bucket", endpoint="segments", le="+Inf")
    assert inf == segments == value(s, "punchh_request_duration_seconds_count",
                                    endpoint="segments") >= 2
    buckets = sorted(
        (float(dict(labels)["le"]), v) for (n, labels), v in s.items()
        if n == "punchh_connector_punchh_request_duration_seconds_bucket"
        and ("endpoint", "campaigns") in labels
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    assert value(s, "punchh_request_duration_seconds_sum", endpoint="campaigns") > 0
    assert value(s, "commit_latency_seconds_count") == 1
    assert value(s, "commit_latency_seconds_sum") > 0
    assert value(s, "queue_jobs", queue="punchh", status="queued") == 3  # no worker ran them
    assert value(s, "queue_oldest_job_age_seconds", queue="punchh") >= 0
    assert value(s, "workers", queue="punchh") == 0


@pytest.mark.slow
def test_metrics_count_correctly_across_two_gunicorn_workers(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client
) -> None:
    web = start_gunicorn(env, workers=2, threads=4)
    try:
        total, refused = 300, 20
        body = {"segment": "Lapsed 90 days", "redeemable": "Free Coffee"}

        def send(i: int) -> int:
            # A new connection per request: gunicorn's two processes both take some.
            headers = {**auth(), "Idempotency-Key": f"send-{i % 3}"}
            return httpx.post(f"{web.url}/v1/distributions", json=body, headers=headers,
                              timeout=10).status_code

        def refuse(_: int) -> int:
            return httpx.post(f"{web.url}/v1/distributions", json=body, timeout=10).status_code

        with ThreadPoolExecutor(12) as pool:
            assert set(pool.map(send, range(total))) == {202}
            assert set(pool.map(refuse, range(refused))) == {401}

        for _ in range(8):  # fresh connections, so either worker may answer each scrape
            reply = httpx.get(f"{web.url}/metrics", headers=auth(), timeout=10)
            assert reply.status_code == 200
            s = parse(reply.text)
            created = value(s, "webhooks_total", source="api", outcome="created")
            counted = value(s, "webhooks_total", source="api", outcome="counted")
            assert (created, counted) == (3, total - 3)
            assert value(s, "webhooks_total", source="api", outcome="http_401") == refused
            assert value(s, "distributions", state="queued") == 3
        # Both gunicorn workers answered (each 401 is logged at INFO with its process id):
        # per-process counters would have split these figures between them.
        pids = {
            record["pid"]
            for record in (json.loads(x) for x in web.log().splitlines() if x.startswith("{"))
            if record.get("logger") == "connector.access" and record.get("status") == 401
        }
        assert len(pids) == 2
    finally:
        web.stop()


def test_exposition_reads_back_with_the_prometheus_parser(
    client: FlaskClient, services: Services
) -> None:
    """Each family keeps its type and its bucket labels keep their spelling ("1", not "1.0")."""
    from prometheus_client.parser import text_string_to_metric_families

    services.redis.hset(services.ledger.metrics_key, mapping={
        "punchh_latency:campaigns:1.0": 2, "punchh_latency_sum:campaigns": 1.5,
        "intake:braze:created": 1,
    })
    reply = client.get("/metrics", headers=auth())
    families = {f.name: f for f in text_string_to_metric_families(reply.get_data(as_text=True))}
    kinds = {name.removeprefix("punchh_connector_"): f.type for name, f in families.items()}
    assert kinds == {
        "webhooks": "counter", "distributions": "gauge", "punchh_requests": "counter",
        "punchh_request_duration_seconds": "histogram",
        "punchh_lockout_remaining_seconds": "gauge", "commit_latency_seconds": "summary",
        "commit_ledger_mismatch": "counter", "queue_jobs": "gauge",
        "queue_oldest_job_age_seconds": "gauge", "workers": "gauge",
    }
    buckets = {
        s.labels["le"]: s.value
        for s in families["punchh_connector_punchh_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert list(buckets) == ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf"]
    assert buckets["0.5"] == 0 and buckets["1"] == buckets["+Inf"] == 2
