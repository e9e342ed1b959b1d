"""First webhook → Punchh POST with an idle worker, and what a committed distribution keeps.

The sandbox stamps each campaign it makes with `created_at`; on the same machine and clock,
that against the wall clock just before the first webhook is the time to commit.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from typing import Any

from bench.load import braze_body, braze_send
from bench.plan import BRAZE_PATH, BRAZE_TOKEN, KEY_PREFIX
from bench.rig import Rig
from stack import wait_until


def commit_latency(rig: Rig, sends: int) -> tuple[dict[str, Any], str]:
    """First webhook → Punchh POST for `sends` new sends, one at a time, worker idle.

    Returns the figures and the last send's distribution id (a committed example).
    """
    headers = {"Authorization": f"Bearer {BRAZE_TOKEN}"}
    rig.wait_worker_idle()
    delays: list[float] = []
    first_answers: list[float] = []
    dist_id = ""
    for i in range(sends):
        campaign, send_key = braze_send()
        dist_id = f"braze:{campaign}:{send_key}"
        body = braze_body(campaign, send_key, f"first-{i}")
        t0 = time.time()
        answer = rig.http.post(rig.web.url + BRAZE_PATH, json=body, headers=headers)
        first_answers.append((time.time() - t0) * 1000)
        if answer.status_code != 202:
            raise RuntimeError(f"first webhook answered {answer.status_code}: {answer.text}")
        found: dict[str, Any] = {}

        def posted(dist_id: str = dist_id, found: dict[str, Any] = found) -> bool:
            for campaign_made in rig.sandbox_campaigns():
                if campaign_made["body"].get("external_campaign_id") == dist_id:
                    found.update(campaign_made)
                    return True
            return False

        if not wait_until(posted, 30, 0.01):
            raise RuntimeError(f"no Punchh campaign for {dist_id} within 30 s")
        created = datetime.fromisoformat(found["created_at"].replace("Z", "+00:00"))
        delays.append((created.timestamp() - t0) * 1000)
        rig.wait_worker_idle(dist_id)
    figures = {
        "sends": sends,
        "median_ms": round(statistics.median(delays), 1),
        "max_ms": round(max(delays), 1),
        "min_ms": round(min(delays), 1),
        "all_ms": [round(d, 1) for d in delays],
        "first_webhook_answer_median_ms": round(statistics.median(first_answers), 2),
    }
    return figures, dist_id


def committed_footprint(rig: Rig, dist_id: str) -> dict[str, Any]:
    """What one committed distribution keeps in Redis (record, events, RQ's finished job)."""
    rdb = rig.rdb
    record_key = KEY_PREFIX + "d:" + dist_id
    raw_job = rdb.hget(record_key, "job_id")
    job_key = f"rq:job:{raw_job.decode()}" if isinstance(raw_job, bytes) else None
    parts = {
        "record": rdb.memory_usage(record_key) or 0,
        "events": rdb.memory_usage(KEY_PREFIX + "ev:" + dist_id) or 0,
        "rq_job_kept_after_success": (rdb.memory_usage(job_key) or 0) if job_key else 0,
    }
    job_ttl = rdb.ttl(job_key) if job_key else None
    return {**parts, "total": sum(parts.values()), "rq_job_ttl_s": job_ttl}
