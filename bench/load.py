"""Load generation: wrk with the Lua scripts in bench/lua, and the SFMC JWTs they send.

wrk (C, epoll, LuaJIT) costs a small fraction of a core at these rates, so on a 2-core machine
it does not starve the server it measures; its own CPU time is read from the kernel
(`wait4` rusage) for every run and printed with the results.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).resolve().parent / "lua"
RESULT_MARK = "BENCH_RESULT "


class WrkMissing(RuntimeError):
    """wrk is not installed."""


def wrk_path() -> str:
    """The wrk binary, or a clear error saying how to get it."""
    found = shutil.which("wrk")
    if not found:
        raise WrkMissing("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu)")
    return found


@dataclass
class WrkResult:
    """One wrk run, as its Lua done() reported it, plus the CPU wrk itself used."""

    requests: int
    seconds: float
    errors: dict[str, int]
    latency_us: dict[str, float]
    replays: int
    wrk_cpu_seconds: float
    #: Requests past a limited run's last recipient (bench/lua/audience.lua's BENCH_LIMIT).
    beyond: int = 0
    raw: str = field(repr=False, default="")

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        """Socket errors, timeouts and non-2xx/3xx answers."""
        return sum(self.errors.values())

    def ms(self, name: str) -> float:
        """A latency figure in milliseconds."""
        return self.latency_us[name] / 1000.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "errors": self.errors,
            "error_count": self.error_count,
            "latency_ms": {k: round(v / 1000.0, 3) for k, v in self.latency_us.items()},
            "replays": self.replays,
            "beyond": self.beyond,
            "wrk_cpu_seconds": round(self.wrk_cpu_seconds, 3),
            "wrk_cores": round(self.wrk_cpu_seconds / self.seconds, 3) if self.seconds else None,
        }


def script_for(kind: str) -> str:
    """The Lua script for `braze`, `sfmc` or `audience`: the shared part, then the kind's own."""
    return (LUA_DIR / "common.lua").read_text() + "\n" + (LUA_DIR / f"{kind}.lua").read_text()


def run_wrk(
    url: str,
    kind: str,
    *,
    threads: int,
    connections: int,
    duration: float,
    env: dict[str, str],
    delay_ms: float = 0.0,
    timeout_s: int = 10,
    stop_when: Callable[[], bool] | None = None,
) -> WrkResult:
    """Run wrk once against `url` with the `kind` script; parse its done() line.

    With `stop_when`, wrk is interrupted (SIGINT: it still reports) as soon as that says so,
    polled every 50 ms; `duration` is then only the longest it may take.
    """
    binary = wrk_path()
    with tempfile.NamedTemporaryFile("w", suffix=f"-{kind}.lua", delete=False) as handle:
        handle.write(script_for(kind))
        script = handle.name
    out_path = Path(tempfile.mkstemp(prefix="pc-bench-wrk-", suffix=".out")[1])
    full_env = dict(os.environ)
    full_env.update(env)
    full_env["BENCH_THREADS"] = str(threads)
    full_env["BENCH_DELAY_MS"] = f"{delay_ms:.3f}"
    args = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout_s}s",
        "-s",
        script,
        url,
    ]
    popen: subprocess.Popen[bytes] | None = None
    try:
        with out_path.open("wb") as out:
            popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=full_env)
        if stop_when is not None:
            while os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                if stop_when():
                    popen.send_signal(signal.SIGINT)
                    break
                time.sleep(0.05)
        # wait4 gives the child's own rusage: how much CPU the load generator took.
        _, status, usage = os.wait4(popen.pid, 0)
        popen.returncode = os.waitstatus_to_exitcode(status)
        text = out_path.read_text(errors="replace")
    finally:
        if popen is not None and popen.returncode is None:
            popen.kill()
            popen.wait()
        os.unlink(script)
        out_path.unlink(missing_ok=True)
    line = next((ln for ln in text.splitlines() if ln.startswith(RESULT_MARK)), None)
    if popen.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {popen.returncode}):\n{text[-3000:]}")
    data = json.loads(line[len(RESULT_MARK):])
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        errors={k: int(v) for k, v in data["errors"].items()},
        latency_us={k: float(v) for k, v in data["latency_us"].items()},
        replays=int(data["replays"]),
        beyond=int(data.get("beyond", 0)),
        wrk_cpu_seconds=usage.ru_utime + usage.ru_stime,
        raw=text,
    )


# --- SFMC execute bodies ------------------------------------------------------------------

#: Drawn per run: the bench configures the connector it starts with it, so nothing is fixed.
SFMC_SECRET = secrets.token_urlsafe(32)
SEGMENT = "Lapsed 90 days"
REDEEMABLE = "Free Coffee"


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


@dataclass(frozen=True)
class SfmcRun:
    """One journey run: the ids every contact's execute call of the run shares."""

    journey_id: str
    activity_id: str
    run_id: str

    @classmethod
    def new(cls, label: str) -> SfmcRun:
        """A fresh journey and activity (so the fan-out guard never sees several runs)."""
        return cls(str(uuid.uuid4()), str(uuid.uuid4()), f"{label}-{uuid.uuid4().hex[:8]}")

    @property
    def distribution_id(self) -> str:
        """The distribution every execute call of the run lands on."""
        return f"sfmc:{self.journey_id}:{self.activity_id}:{self.run_id}"

    def payload(self, contact: int) -> dict[str, Any]:
        """The decoded execute body Journey Builder sends for one contact."""
        return {
            "inArguments": [
                {
                    "punchh_segment": SEGMENT,
                    "punchh_redeemable": REDEEMABLE,
                    "run_id": self.run_id,
                }
            ],
            "outArguments": [],
            "activityObjectID": self.activity_id,
            "journeyId": self.journey_id,
            "activityId": self.activity_id,
            "definitionInstanceId": f"{self.run_id}-di-{contact:08d}",
            "activityInstanceId": str(uuid.UUID(int=contact + 1)),
            "keyValue": f"contact-{contact:08d}@example.org",
            "mode": 0,
        }


def sign(payload: dict[str, Any], secret: str = SFMC_SECRET) -> bytes:
    """An HS256 compact JWT (what `jwt.encode(payload, secret, "HS256")` makes, faster)."""
    header = _b64(b'{"alg":"HS256","typ":"JWT"}')
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = header + b"." + body
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return signing_input + b"." + _b64(signature)


@contextmanager
def sfmc_tokens(run: SfmcRun, count: int, first: int = 0) -> Iterator[Path]:
    """A temporary file of `count` signed execute bodies, one contact each, one per line."""
    fd, name = tempfile.mkstemp(prefix="pc-bench-jwt-", suffix=".txt")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            for contact in range(first, first + count):
                out.write(sign(run.payload(contact)) + b"\n")
        yield path
    finally:
        path.unlink(missing_ok=True)


def tokens_needed(rate: float, duration: float, threads: int) -> int:
    """Enough distinct contacts for `duration` at `rate` (with room), so none is replayed."""
    return int(rate * (duration + 1) * 1.25) + 500 * threads


def braze_send() -> tuple[str, str]:
    """A fresh (campaign api_id, dispatch id) pair shaped like Braze's (UUID, 24 hex)."""
    return str(uuid.uuid4()), uuid.uuid4().hex[:24]


def braze_body(campaign: str, send_key: str, user: str) -> dict[str, str]:
    """The JSON body braze.lua sends, for requests made from Python."""
    return {
        "punchh_segment": SEGMENT,
        "punchh_redeemable": REDEEMABLE,
        "campaign_id": campaign,
        "campaign_name": "Spring winback - lapsed guests",
        "send_key": send_key,
        "dispatch_id": send_key,
        "user_id": user,
        "email": f"{user}@example.org",
        "first_name": "Guest",
    }
