"""The started stack the benchmark measures: Redis, sandbox, connector, the floors, the worker.

`Rig.start` brings every process up through a `stack.Stack` (which stops them all on the way
out) and checks that each floor really is the floor; the rest reads the processes' state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import redis

from bench.load import SfmcRun, sign
from bench.plan import BRAZE_PATH, KEY_PREFIX, SFMC_PATH, Plan, connector_env
from stack import Proc, Stack, client_ports, rss_bytes, wait_until


@dataclass
class Rig:
    """Every process of one benchmark run, and the clients that talk to them."""

    stack: Stack
    redis_proc: Proc
    sandbox: Proc
    env: dict[str, str]
    web: Proc
    floor: Proc
    floor_redis: Proc
    worker: Proc
    rdb: redis.Redis
    http: httpx.Client
    sfmc_status: str = ""

    @classmethod
    def start(cls, plan: Plan, st: Stack, say: Callable[[str], None]) -> Rig:
        """Redis, sandbox, connector, floor, worker; check the floor really is the floor."""
        redis_proc = st.redis("redis")
        sandbox = st.sandbox()
        env = connector_env(redis_proc.url, sandbox.url)

        def gunicorn(name: str, app: str | None = None) -> Proc:
            # The floors get the connector's workers and threads, so they are a fair comparison.
            return st.gunicorn(
                name, env, workers=plan.web_workers, threads=plan.web_threads, app=app
            )

        web = gunicorn("connector")
        floor = gunicorn("floor", "bench.floor:app")
        floor_redis = gunicorn("floor-redis", "bench.floor:redis_app")
        worker = st.worker(env)
        rig = cls(
            st,
            redis_proc,
            sandbox,
            env,
            web,
            floor,
            floor_redis,
            worker,
            redis.Redis.from_url(redis_proc.url),
            httpx.Client(timeout=30),
        )
        # `gunicorn -c gunicorn.conf.py bench.floor:app` must serve the floor, not the
        # connector (the config names connector.wsgi:app): an unauthenticated webhook proves it.
        answers = [
            rig.http.post(server.url + BRAZE_PATH, json={}).status_code
            for server in (floor, floor_redis, web)
        ]
        if answers != [202, 202, 401]:
            raise RuntimeError(f"floor/connector mix-up: floor, floor+redis, connector {answers}")
        rig.sfmc_status = rig.probe_sfmc()
        say(
            f"stack up: redis {redis_proc.url}, sandbox {sandbox.url}, "
            f"connector {web.url}, floor {floor.url}; logs in {st.log_dir}; "
            f"sfmc: {rig.sfmc_status}"
        )
        return rig

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

    def server_for(self, target: str) -> Proc:
        """floor-redis, floor-<kind> or the connector."""
        if target == "floor-redis":
            return self.floor_redis
        return self.floor if target.startswith("floor") else self.web

    @property
    def redis_port(self) -> int:
        """The port of the benchmark's own redis-server."""
        return int(self.redis_proc.url.rsplit(":", 1)[1].split("/")[0])

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

    def redis_connections(self) -> dict[str, int]:
        """TCP connections to Redis the web tier and the RQ worker hold open (from /proc)."""
        port = self.redis_port
        return {
            "web": len(client_ports(self.web.family(), port)),
            "worker": len(client_ports(self.worker.family(), port)),
        }

    def rss(self) -> dict[str, Any]:
        """Resident memory of the web master and workers, and of the RQ worker."""
        web = self.web.family()
        worker = self.worker.family()[1:]  # [0] is stack.reaper
        return {
            "web_master_mb": round(rss_bytes(web[0]) / 2**20, 1) if web else None,
            "web_workers_mb": [round(rss_bytes(p) / 2**20, 1) for p in web[1:]],
            "rq_worker_mb": round(rss_bytes(worker[0]) / 2**20, 1) if worker else None,
            "rq_worker_children_mb": [round(rss_bytes(p) / 2**20, 1) for p in worker[1:]],
        }
