"""The floor: bare Flask apps served by gunicorn with the production gunicorn.conf.py.

`gunicorn -c gunicorn.conf.py bench.floor:app` (the positional app overrides the config's
`wsgi_app`) is what the same server, workers and threads cost with no work at all: `app`
answers 202 to any POST. `bench.floor:redis_app` does the same after one Redis round trip
(a PING on one client built at start-up, hiredis parsing): the most an intake that must write
to Redis before answering can hope for. Each route takes every path, so the Braze and SFMC
load scripts run against them unchanged.
"""

from __future__ import annotations

import os

import redis
from flask import Flask

app = Flask(__name__)


@app.route("/", defaults={"_path": ""}, methods=["GET", "POST"])
@app.route("/<path:_path>", methods=["GET", "POST"])
def accept(_path: str) -> tuple[str, int]:
    """Accept and forget."""
    return "", 202


redis_app = Flask(__name__ + ".redis")
_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    """One client per process, made on first use (after gunicorn forks)."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _client


@redis_app.route("/", defaults={"_path": ""}, methods=["GET", "POST"])
@redis_app.route("/<path:_path>", methods=["GET", "POST"])
def accept_after_redis(_path: str) -> tuple[str, int]:
    """One Redis round trip, then accept."""
    _redis().ping()
    return "", 202
