"""The local run: scripts/dev.py brings the stack up, and the demo shows one campaign."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import API_TOKEN
from tests.procs import BIN, ROOT, Proc, _spawn, descendants, free_port, wait_until

pytestmark = pytest.mark.slow


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(ROOT)}
    return subprocess.run(
        [sys.executable, "scripts/demo.py", "--requests", "40", "--timeout", "30", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )


def test_demo_through_the_api_and_braze(web: Proc, worker: Proc, sandbox: httpx.Client) -> None:
    common = ("--web", web.url, "--sandbox", str(sandbox.base_url), "--api-token", API_TOKEN)
    done = run_demo(*common, "--api")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Punchh campaigns for this send: 1" in done.stdout
    assert "1 reward(s) from this send" in done.stdout
    assert_audience_act(done.stdout, sandbox, "api")
    done = run_demo(*common, "--braze-token", "braze-token-1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "through Braze-style webhooks" in done.stdout
    assert re.search(r"distribution: braze:demo-campaign-\w+:send-\w+", done.stdout)
    assert "Punchh campaigns for this send: 1" in done.stdout
    assert_audience_act(done.stdout, sandbox, "braze")


def assert_audience_act(out: str, sandbox: httpx.Client, source: str) -> None:
    """The audience act gifted exactly the guests it sent to, as the sandbox itself shows,
    and printed no guest identifier but the seeded ones it chose."""
    found = re.search(rf"distribution: ({source}:demo-audience-\w+:send-\w+)", out)
    assert found, out
    dist_id = found.group(1)
    made = [c for c in sandbox.get("/_sandbox/campaigns").json()
            if c["body"]["external_campaign_id"] == dist_id]
    assert len(made) == 1, made
    segments = [c for c in sandbox.get("/_sandbox/custom_segments").json()
                if c["custom_segment_id"] == made[0]["custom_segment_id"]]
    assert len(segments) == 1, made
    members = set(segments[0]["member_guest_ids"])
    # Four of "Lapsed 90 days" (seed: 880001…880012), one of them sent by email; the fifth
    # recipient, a user id nobody has, is no member.
    lapsed = {g["guest_id"]: g for g in sandbox.get(
        "/_sandbox/guests", params={"segment_id": 1306904}).json()}
    assert len(members) == 4 and members < set(lapsed), members
    everyone = sandbox.get("/_sandbox/guests").json()
    gifted = {g["guest_id"] for g in everyone if any(
        r["campaign_id"] == made[0]["campaign_id"]
        for r in sandbox.get(f"/_sandbox/guests/{g['guest_id']}/rewards").json())}
    assert gifted == members
    assert "Punchh custom segments for this send: 1" in out
    assert "the connector's counts: 5 handed to Punchh, 1 unknown to Punchh" in out
    sent = [int(n) for n in re.findall(r"guest (\d+) \(sent to[^)]*\): 1 reward", out)]
    assert set(sent) == members and len(sent) == 4, out
    assert re.search(r"guest \d+ \(same segment, not sent to\): 0 reward", out), out
    assert "other guests, not sent to either: 0 reward(s)" in out
    # The demo prints seeded guests it chose, nobody else: ids of its segment, one email.
    printed_ids = {int(n) for n in re.findall(r"\b\d{6}\b", out)}
    assert printed_ids <= set(lapsed), printed_ids - set(lapsed)
    emails = set(re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", out))
    assert len(emails) == 1 and emails <= {g["email"] for g in lapsed.values()}, emails
    assert {lapsed[g]["email"] for g in members} >= emails


def api_send(web: Proc, key: str) -> dict[str, object]:
    """One send through the generic API, waited for until it settles; the record."""
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Idempotency-Key": key}
    body = {"segment": "Lapsed 90 days", "redeemable": "Free Coffee"}
    reply = httpx.post(f"{web.url}/v1/distributions", json=body, headers=headers, timeout=10)
    assert reply.status_code == 202, reply.text
    url = f"{web.url}/v1/distributions/{reply.json()['distribution_id']}"
    record: dict[str, object] = {}

    def settled() -> bool:
        record.update(httpx.get(url, headers=headers, timeout=10).json())
        return record["state"] not in ("queued", "resolving", "committing")

    assert wait_until(settled, 30), record
    return record


def test_demo_leaves_the_stack_as_it_found_it(
    web: Proc, worker: Proc, sandbox: httpx.Client
) -> None:
    """A send after the demo still commits, and no two sends share a Punchh campaign id."""
    before = api_send(web, "before-the-demo")
    assert before["state"] == "committed", before
    done = run_demo("--web", web.url, "--sandbox", str(sandbox.base_url),
                    "--api-token", API_TOKEN, "--api")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 reward(s) from this send" in done.stdout
    clock = datetime.fromisoformat(sandbox.get("/_sandbox/clock").json()["now"])
    assert abs(clock - datetime.now(UTC)) < timedelta(seconds=30), done.stdout
    after = api_send(web, "after-the-demo")
    assert after["state"] == "committed", after
    listed = httpx.get(f"{web.url}/v1/distributions", headers={
        "Authorization": f"Bearer {API_TOKEN}"}, timeout=10).json()
    rows = listed["items"]
    ids = [row["campaign_id"] for row in rows]
    assert len(ids) == 4 and len(set(ids)) == 4, ids  # before, the demo's two acts, after


def test_dev_script_brings_everything_up(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client, tmp_path: Path
) -> None:
    """`make run`'s script on free ports and the test Redis; then the demo against it."""
    port, sandbox_port = free_port(), free_port()
    dev = _spawn(
        [sys.executable, "scripts/dev.py"],
        {"REDIS_URL": env["REDIS_URL"], "PORT": str(port), "SANDBOX_PORT": str(sandbox_port),
         "WEB_CONCURRENCY": "1", "PUNCHH_DEV_STATE": str(tmp_path / "dev.json")},
        "dev",
    )
    try:
        assert wait_until(lambda: "Ctrl-C stops everything" in dev.log() or not dev.alive(), 60)
        out = dev.log()
        assert dev.alive(), out
        assert f"punchh-connector is up: http://127.0.0.1:{port}" in out
        assert "curl -s -X POST" in out and "/webhooks/braze" in out
        simulator = re.search(r"simulated Journey Builder.*: (\S+)", out)
        assert simulator, out
        assert httpx.get(simulator.group(1), timeout=5).status_code == 200
        token = re.search(r"API_TOKEN=(\S+)", out)
        braze = re.search(r"BRAZE_WEBHOOK_TOKEN=(\S+)", out)
        assert token and braze
        done = run_demo(
            "--web", f"http://127.0.0.1:{port}", "--sandbox", f"http://127.0.0.1:{sandbox_port}",
            "--api-token", token.group(1), "--braze-token", braze.group(1),
        )
        assert done.returncode == 0, done.stdout + done.stderr + dev.log()[-3000:]
        assert "Punchh campaigns for this send: 1" in done.stdout
        # `make run`'s own stack, its quiet gap as deployed: the act ends its send through /v1.
        assert "Punchh custom segments for this send: 1" in done.stdout
        dist_id = re.search(r"distribution: (\S+)", done.stdout)
        assert dist_id

        # A second terminal: the CLI with nothing set finds the stack `make run` started.
        second = {"PATH": os.environ.get("PATH", ""), "HOME": str(ROOT),
                  "PUNCHH_DEV_STATE": str(tmp_path / "dev.json")}
        cli = [str(BIN / "punchh-connector")]
        listed = subprocess.run([*cli, "list"], cwd=tmp_path, env=second, capture_output=True,
                                text=True, timeout=30)
        assert listed.returncode == 0, listed.stderr
        assert dist_id.group(1) in listed.stdout and "committed" in listed.stdout
        assert "the local stack `make run` started" in listed.stderr
        # …and the banner's one export block is all another shell needs.
        block = re.search(r"^export .*(?:\n {2}\S.*)*", out, re.M)
        assert block, out
        exported = dict(re.findall(r"(\w+)=(\S+)", block.group(0)))
        assert {"REDIS_URL", "PUNCHH_BASE_URL", "PUNCHH_API_KEY", "API_TOKEN"} <= set(exported)
        assert exported["REDIS_URL"] == env["REDIS_URL"]
        shell = {"PATH": second["PATH"], "HOME": str(ROOT), **exported,
                 "PUNCHH_DEV_STATE": str(tmp_path / "none.json")}
        shown = subprocess.run([*cli, "show", dist_id.group(1)], cwd=tmp_path, env=shell,
                               capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0 and "committed" in shown.stdout, shown.stderr
    finally:
        if dev.alive():
            dev.popen.send_signal(signal.SIGTERM)  # dev.py stops honcho and its processes
            try:
                dev.popen.wait(20)
            except subprocess.TimeoutExpired:
                dev.kill()
    assert not wait_until(lambda: _listening(port), 2), "web still up after dev.py stopped"


def _listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
    except httpx.HTTPError:
        return False
    return True


def test_make_run_stops_on_ctrl_c_exits_0_and_leaves_nothing_running(tmp_path: Path) -> None:
    """`make run` in a real terminal (a pty), with a Redis it has to start; then Ctrl-C."""
    port, sandbox_port, redis_port = free_port(), free_port(), free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(ROOT), "TERM": "dumb",
           "REDIS_URL": f"redis://127.0.0.1:{redis_port}/1", "PORT": str(port),
           "SANDBOX_PORT": str(sandbox_port), "WEB_CONCURRENCY": "1",
           "PUNCHH_DEV_STATE": str(tmp_path / "dev.json")}
    pid, terminal = pty.fork()
    if pid == 0:  # pragma: no cover - the child: a shell's `make run` in the terminal
        os.chdir(ROOT)
        os.execvpe("make", ["make", "run"], env)
    output = bytearray()

    def read_until(text: bytes, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while text not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 0.5)
            if ready:
                try:
                    output.extend(os.read(terminal, 65536))
                except OSError:
                    return False
        return text in output

    started: list[int] = []
    try:
        assert read_until(b"Ctrl-C stops everything", 90), output.decode(errors="replace")
        started = descendants(pid)
        assert _listening(port) and redis_answers(redis_port)
        os.write(terminal, b"\x03")  # what the terminal sends for Ctrl-C
        deadline = time.monotonic() + 30
        status = None
        while status is None and time.monotonic() < deadline:
            read_until(b"\x00", 0.2)  # keep draining the terminal
            done, status_word = os.waitpid(pid, os.WNOHANG)
            status = os.waitstatus_to_exitcode(status_word) if done else None
        text = output.decode(errors="replace")
        assert status == 0, f"exit {status}\n{text[-3000:]}"
        assert "Error" not in text.split("Ctrl-C stops everything")[-1], text[-3000:]
        assert not _listening(port) and not redis_answers(redis_port), text[-3000:]
        left = [p for p in started if Path(f"/proc/{p}").exists() and not _zombie(p)]
        assert not left, f"still running: {left}"
    finally:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        for child in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(redis.RedisError):
            redis.Redis(port=redis_port, socket_timeout=1).shutdown(nosave=True)
        os.close(terminal)


def redis_answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
