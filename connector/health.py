"""Health endpoints for the platform's router and for operators, and per-request logging."""

from __future__ import annotations

import time
from typing import Any

import redis
from flask import Blueprint, Response, jsonify
from flask.blueprints import BlueprintSetupState
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job

from connector import request_log
from wiring.services import Services
from wiring.services import current_services as services

bp = Blueprint("ops", __name__)

#: A queued job older than this means the queue is stuck, workers or not.
STUCK_QUEUE_SECONDS = 300
#: A queued job older than this while no worker is registered at all means the queue is stuck.
NO_WORKER_GRACE_SECONDS = 60

# Request ids and the access log apply to every endpoint of the app, so they hang off this
# blueprint (registered by the app factory) as app-wide hooks.
bp.before_app_request(request_log.begin_request)
bp.after_app_request(request_log.end_request)


@bp.record
def _install_log_filter(state: BlueprintSetupState) -> None:
    request_log.install_log_filter()


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive (touches nothing else)."""
    return jsonify({"status": "ok"})


def oldest_queued_age(svc: Services) -> float | None:
    """Seconds the oldest job has waited in the queue, or None when the queue is empty."""
    ids = svc.queue.get_job_ids(0, 1)  # (offset, length): length 0 returns nothing
    if not ids:
        return None
    try:
        job = Job.fetch(ids[0], connection=svc.redis)
    except NoSuchJobError:
        return None  # taken (or expired) between the two reads
    if job.enqueued_at is None:
        return None
    return max(0.0, time.time() - job.enqueued_at.timestamp())


def worker_count(svc: Services) -> int:
    """RQ workers registered on our queue (one SCARD)."""
    return int(Worker.count(connection=svc.redis, queue=svc.queue))


def queue_problem(age: float | None, workers: int) -> str | None:
    """Why the queue counts as stuck, or None when it is moving."""
    if age is None:
        return None
    if age > STUCK_QUEUE_SECONDS:
        return (
            f"queue stuck: oldest job waiting {age:.0f}s with {workers} worker(s) registered "
            "(are workers running and healthy?)"
        )
    if workers == 0 and age > NO_WORKER_GRACE_SECONDS:
        return f"queue stuck: oldest job waiting {age:.0f}s and no worker is registered"
    return None


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when Redis answers and the queue is moving; 503 with the reason otherwise."""
    svc = services()
    try:
        svc.redis.ping()
        age = oldest_queued_age(svc)
        workers = worker_count(svc)
    except redis.RedisError as exc:
        return jsonify({"status": "unavailable", "reason": f"redis: {type(exc).__name__}"}), 503
    body: dict[str, Any] = {"oldest_queued_seconds": age, "workers": workers}
    problem = queue_problem(age, workers)
    if problem:
        return jsonify({"status": "unavailable", "reason": problem, **body}), 503
    return jsonify({"status": "ok", **body}), 200
