"""Redis round trips per duplicate webhook: MONITOR and INFO commandstats around a sample.

commandstats also counts the commands a Lua script runs inside Redis, so it cannot tell one
EVALSHA running three commands from three round trips; MONITOR marks the script's own commands
as `lua`, so client commands (round trips) are counted from it. What the RQ worker sends
meanwhile is told apart by connection: the web processes' sockets to Redis are found in /proc,
and only their commands are counted.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import httpx
import redis

from bench.audience import AudienceSend, settle
from bench.load import SfmcRun, braze_body, sign
from bench.plan import BRAZE_PATH, BRAZE_TOKEN, SFMC_PATH
from bench.rig import Rig
from stack import client_ports


class Monitor:
    """Redis MONITOR in a thread, for a `with` block: who sent which command."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.entries: list[dict[str, Any]] = []
        self.token = f"bench-monitor-stop-{uuid.uuid4().hex}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        with self.client.monitor() as monitor:  # type: ignore[no-untyped-call]
            self._ready.set()
            for entry in monitor.listen():
                if self.token in entry["command"]:
                    return
                self.entries.append(entry)

    def __enter__(self) -> Monitor:
        self._thread.start()
        self._ready.wait(5)
        time.sleep(0.05)  # MONITOR's OK is read before the first command is relayed
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.echo(self.token)
        self._thread.join(10)

    def _count(self, lua: bool, ports: set[int] | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.entries:
            if (entry.get("client_type") == "lua") != lua:
                continue
            if ports is not None and int(entry.get("client_port") or 0) not in ports:
                continue
            name = entry["command"].split(" ", 1)[0].lower()
            if name in {"config", "info", "echo"}:
                continue  # the benchmark's own
            out[name] = out.get(name, 0) + 1
        return out

    def client_commands(self, ports: set[int] | None = None) -> dict[str, int]:
        """Commands sent by clients (from these ports): one round trip each, unpipelined."""
        return self._count(lua=False, ports=ports)

    def script_commands(self) -> dict[str, int]:
        """Commands run by Lua scripts inside Redis."""
        return self._count(lua=True)



def round_trips(
    rig: Rig, kind: str, count: int, braze_dist_id: str, sfmc_run: SfmcRun | None
) -> dict[str, Any]:
    """Round trips per duplicate on a sample of `count` webhooks of an existing send.

    Braze: new recipients of the send `braze_dist_id`; SFMC: new contacts of `sfmc_run`;
    audience: recipients of a new audience send, ended and settled afterwards.
    """
    send = AudienceSend.new() if kind == "audience" else None
    if send is not None:
        # A new send (its first request creates it, among the warm-up): counting on one ended
        # by its run would be its late phase, not the recipients of a running send.
        bodies = [json.dumps(send.body(i)).encode() for i in range(count + count // 5)]
        headers = {"Authorization": f"Bearer {BRAZE_TOKEN}", "Content-Type": "application/json"}
        url = rig.web.url + BRAZE_PATH
    elif kind == "braze":
        campaign, send_key = braze_dist_id.split(":", 2)[1:]
        bodies = [
            json.dumps(braze_body(campaign, send_key, f"dup-{i}")).encode()
            for i in range(count + count // 5)
        ]
        headers = {"Authorization": f"Bearer {BRAZE_TOKEN}", "Content-Type": "application/json"}
        url = rig.web.url + BRAZE_PATH
    else:
        if sfmc_run is None:
            raise RuntimeError("no SFMC round ran, so there is no journey run to repeat")
        start = 10_000_000  # contacts the load runs never used
        bodies = [sign(sfmc_run.payload(start + i)) for i in range(count + count // 5)]
        headers = {"Content-Type": "application/jwt"}
        url = rig.web.url + SFMC_PATH
    warm, sample = bodies[: count // 5], bodies[count // 5 :]
    with httpx.Client(timeout=30) as client:
        for body in warm:  # wakes pooled connections (redis-py's health-check PING)
            client.post(url, content=body, headers=headers)
        with Monitor(rig.rdb) as watch:
            rig.rdb.config_resetstat()
            started = time.monotonic()
            statuses = [
                client.post(url, content=body, headers=headers).status_code for body in sample
            ]
            elapsed = time.monotonic() - started
            stats = commandstats(rig.rdb)
    # Which connections are the web tier's: their local ports, from /proc.
    web_ports = client_ports(rig.web.family(), rig.redis_port)
    n = len(sample)
    web_cmds = watch.client_commands(web_ports)
    if send is not None:
        settle(rig, send.distribution_id, end=True)
    return {
        "requests": n,
        "seconds": round(elapsed, 3),
        "status_2xx": sum(1 for s in statuses if 200 <= s < 300),
        "web_client_commands": web_cmds,
        "other_client_commands": {
            k: v - web_cmds.get(k, 0) for k, v in watch.client_commands().items()
            if v - web_cmds.get(k, 0)
        },
        "commands_inside_scripts": watch.script_commands(),
        "commandstats_calls": stats,
        "evalsha_per_request": round(stats.get("evalsha", 0) / n, 3),
        "round_trips_per_request": round(sum(web_cmds.values()) / n, 3),
        "commandstats_calls_per_request": round(sum(stats.values()) / n, 3),
    }


def commandstats(rdb: redis.Redis) -> dict[str, int]:
    """Calls per command since the last RESETSTAT, the measuring commands left out."""
    stats = rdb.info("commandstats")
    out = {}
    for key, value in stats.items():
        name = key.removeprefix("cmdstat_")
        if name in {"info", "config|resetstat", "monitor", "echo"}:
            continue
        out[name] = int(value["calls"])
    return out
