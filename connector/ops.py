"""Health endpoints for the platform's router and for operators."""

from __future__ import annotations

import time

import redis
from flask import Blueprint, Response, current_app, jsonify
from rq.job import Job

from connector.services import Services

bp = Blueprint("ops", __name__)

#: A queued job older than this with no worker taking it means the queue is stuck.
STUCK_QUEUE_SECONDS = 300


def services() -> Services:
    """The app's long-lived services."""
    return current_app.extensions["punchh_connector"]  # type: ignore[no-any-return]


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive (touches nothing else)."""
    return jsonify({"status": "ok"})


def oldest_queued_age(svc: Services) -> float | None:
    """Seconds the oldest job has waited in the queue, or None when the queue is empty."""
    ids = svc.queue.get_job_ids(0, 0)
    if not ids:
        return None
    job = Job.fetch(ids[0], connection=svc.redis)
    if job.enqueued_at is None:
        return None
    return max(0.0, time.time() - job.enqueued_at.timestamp())


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when Redis answers and the queue is moving; 503 with the reason otherwise."""
    svc = services()
    try:
        svc.redis.ping()
        age = oldest_queued_age(svc)
    except redis.RedisError as exc:
        return jsonify({"status": "unavailable", "reason": f"redis: {type(exc).__name__}"}), 503
    if age is not None and age > STUCK_QUEUE_SECONDS:
        return jsonify(
            {
                "status": "unavailable",
                "reason": f"queue stuck: oldest job waiting {age:.0f}s (are workers running?)",
            }
        ), 503
    return jsonify({"status": "ok", "oldest_queued_seconds": age}), 200
