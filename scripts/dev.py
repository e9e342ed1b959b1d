"""Run the whole connector locally: Redis (started if none answers), the Punchh sandbox, the
web app under gunicorn and an RQ worker, all under honcho with Procfile.dev.

`make run` calls this after installing into .venv. Environment it honours (defaults):
REDIS_URL (redis://127.0.0.1:6379/1), PORT (5000), SANDBOX_PORT (8900), SFMC_REST_BASE_URL (the
sandbox's Marketing Cloud stand-in, for the SFMC pickers and simulator), API_TOKEN,
BRAZE_WEBHOOK_TOKEN and SFMC_JWT_SECRET (generated for this run unless set), LOG_LEVEL (INFO).
The tokens, URLs and the environment the CLI needs are also written to a file only this user
can read (wiring/local_stack.py), where scripts/demo.py and `punchh-connector` find them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

from wiring import local_stack

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/1"  # db 1: keeps clear of whatever uses db 0
SANDBOX_KEY = "sandbox-admin-key"


def say(text: str = "") -> None:
    """Print a line of our own (honcho prefixes the processes' lines)."""
    print(text, flush=True)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_answers(host: str, port: int) -> bool:
    """A RESP PING answered with PONG (or a NOAUTH error, which also means Redis)."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def ensure_redis(url: str) -> subprocess.Popen[bytes] | None:
    """Use the Redis at `url`; start a local one when it is ours to start and none answers.

    The one we start is our child and stops with the stack: Ctrl-C leaves nothing running.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if redis_answers(host, port):
        say(f"• Redis answers at {host}:{port}")
        return None
    if host not in ("127.0.0.1", "localhost") or parts.scheme != "redis":
        sys.exit(f"Redis at {host}:{port} does not answer; start it or change REDIS_URL")
    server = shutil.which("redis-server")
    if server is None:
        sys.exit(
            "No Redis answers on 127.0.0.1:6379 and redis-server is not installed.\n"
            "Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install "
            "redis) or point REDIS_URL at a running Redis."
        )
    say(f"• starting a local Redis on port {port} (no persistence; it stops with the stack)")
    server_proc = subprocess.Popen(  # noqa: S603 - a fixed local binary
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(50):
        if redis_answers(host, port):
            return server_proc
        time.sleep(0.1)
    server_proc.kill()
    sys.exit("redis-server started but does not answer")


def take_the_terminal() -> Callable[[], None]:
    """Make this process the terminal's foreground group; returns how to give it back.

    Ctrl-C then reaches us alone, not `make`: make dies of a SIGINT it receives (exit 130, or
    "Error 143" when the child it waits for was stopped by signal), whatever we return.
    """
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd):
            return lambda: None
        before = os.tcgetpgrp(fd)
        os.setpgid(0, 0)
        # A background group changing the foreground gets SIGTTOU; we mean to.
        previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        os.tcsetpgrp(fd, os.getpgrp())
    except (OSError, ValueError):
        return lambda: None

    def give_back() -> None:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, before)
        signal.signal(signal.SIGTTOU, previous)

    return give_back


def wait_http(url: str, timeout: float = 30.0) -> bool:
    """Poll until a GET answers below 500."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urlopen(url, timeout=1) as reply:  # noqa: S310 - our own local URL
                if reply.status < 500:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def build_env() -> tuple[dict[str, str], dict[str, Any]]:
    """The processes' environment, and what to tell the user (and the demo)."""
    env = dict(os.environ)
    port = env.get("PORT", "5000")
    sandbox_port = env.get("SANDBOX_PORT", "8900")
    generated = []
    for name in ("API_TOKEN", "BRAZE_WEBHOOK_TOKEN", "SFMC_JWT_SECRET"):
        if not env.get(name):
            env[name] = "dev-" + secrets.token_urlsafe(18)
            generated.append(name)
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "REDIS_URL": env.get("REDIS_URL") or DEFAULT_REDIS_URL,
            # honcho hands each process its own PORT; Procfile.dev binds WEB_PORT instead.
            "PORT": port,
            "WEB_PORT": port,
            "SANDBOX_PORT": sandbox_port,
            "PUNCHH_BASE_URL": env.get("PUNCHH_BASE_URL")
            or f"http://127.0.0.1:{sandbox_port}",
            "PUNCHH_API_KEY": env.get("PUNCHH_API_KEY") or SANDBOX_KEY,
            # Marketing Cloud's tokenContext, played by the sandbox: the SFMC activity's
            # pickers and the Journey Builder simulator work locally.
            "SFMC_REST_BASE_URL": env.get("SFMC_REST_BASE_URL")
            or f"http://127.0.0.1:{sandbox_port}/_sfmc",
            "WEB_CONCURRENCY": env.get("WEB_CONCURRENCY", "2"),
            "LOG_LEVEL": env.get("LOG_LEVEL", "INFO"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    info = {
        "web_url": f"http://127.0.0.1:{port}",
        "sandbox_url": env["PUNCHH_BASE_URL"],
        "api_token": env["API_TOKEN"].split(",")[0],
        "braze_token": env["BRAZE_WEBHOOK_TOKEN"].split(",")[0],
        "generated": ",".join(generated),
        # What `punchh-connector` needs in a second terminal (it reads this file by itself).
        "env": {name: env[name] for name in local_stack.CLI_ENV if env.get(name)},
    }
    return env, info


def banner(info: dict[str, Any]) -> None:
    """Where to send a first webhook, and how to run the demo."""
    web, api, braze = info["web_url"], info["api_token"], info["braze_token"]
    say()
    say("=" * 78)
    say(f"punchh-connector is up: {web}  (Punchh sandbox: {info['sandbox_url']})")
    if info["generated"]:
        say(f"generated for this run: {info['generated'].replace(',', ', ')}")
    say(f"  API_TOKEN={api}")
    say(f"  BRAZE_WEBHOOK_TOKEN={braze}")
    say()
    say("The operator's CLI in a second terminal finds this stack by itself:")
    say(f"  {BIN / 'punchh-connector'} list")
    say("or, for any other shell or tool, everything it reads:")
    exports = [f"{name}={shlex.quote(value)}" for name, value in info["env"].items()]
    say("export " + " \\\n  ".join(exports))
    say()
    say("Send a first request (generic API):")
    say(f"  curl -s -X POST {web}/v1/distributions -H 'Authorization: Bearer {api}' \\")
    say("    -H 'Content-Type: application/json' -H 'Idempotency-Key: first-send' \\")
    say("    -d '{\"segment\": \"Lapsed 90 days\", \"redeemable\": \"Free Coffee\"}'")
    say("A Braze-style webhook (one per recipient):")
    say(f"  curl -s -X POST {web}/webhooks/braze -H 'Authorization: Bearer {braze}' \\")
    say("    -H 'Content-Type: application/json' -d '{\"punchh_segment\": \"Lapsed 90 days\", "
        "\"punchh_redeemable\": \"Free Coffee\", \"campaign_id\": \"c-1\", \"send_key\": \"s-1\"}'")
    say(f"Then: curl -s {web}/v1/distributions -H 'Authorization: Bearer {api}'")
    say(f"Status page: {web}/status (user: anything, password: the API token)")
    say(f"API docs: {web}/docs    SFMC: a simulated Journey Builder around the real activity: "
        f"{web}/sfmc/simulator/")
    say("The demo (a Braze fan-out → one Punchh campaign; then an audience send → only its "
        f"guests rewarded):  {BIN / 'python'} scripts/demo.py")
    say("Ctrl-C stops everything.")
    say("=" * 78)
    say()


def main() -> int:
    """Start everything and wait for Ctrl-C; 0 when stopped by it, else honcho's status."""
    os.chdir(ROOT)
    env, info = build_env()
    for name in ("PORT", "SANDBOX_PORT"):
        if port_open("127.0.0.1", int(env[name])):
            sys.exit(f"port {env[name]} is in use: set {name} to a free port")
    honcho = BIN / "honcho"
    if not honcho.exists():
        sys.exit("honcho is missing: run `make setup` (it installs the dev dependencies)")
    give_back = take_the_terminal()
    stopping: list[int] = []
    children: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, frame: object) -> None:
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    redis_proc = ensure_redis(env["REDIS_URL"])
    try:
        local_stack.write(info)
        proc = subprocess.Popen(  # noqa: S603 - our own venv's honcho
            [str(honcho), "start", "-f", "Procfile.dev"],
            env=env,
            start_new_session=True,
        )
        children.append(proc)
        up = wait_http(f"{info['sandbox_url']}/_sandbox/health") and wait_http(
            f"{info['web_url']}/healthz"
        )
        if up and proc.poll() is None and not stopping:
            banner(info)
        elif proc.poll() is None and not stopping:
            say("!! the web app or the sandbox did not come up; see the lines above")
        status = proc.wait()
        # honcho answers our SIGTERM with 143 (or dies of it): a stop we asked for is success.
        return 0 if stopping else status
    finally:
        local_stack.state_file().unlink(missing_ok=True)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
        if stopping:
            say("Stopped: nothing of the stack is left running.")
        give_back()


if __name__ == "__main__":
    sys.exit(main())
