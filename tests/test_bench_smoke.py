"""The benchmark's smoke run: it starts, measures every figure, and cleans up (speed not judged)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def marked(mark: str) -> list[int]:
    """Live processes whose environment carries the benchmark run's mark."""
    found = []
    needle = f"PC_BENCH_RUN={mark}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# The audience send waits out its quiet gap, and one the worker lost track of waits for the
# ledger sweep (stale age plus interval, about two minutes at most): room for both.
@pytest.mark.timeout(360)
def test_bench_smoke_produces_every_figure(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is not installed (CI must install it: apt-get install -y wrk)")
        pytest.skip("wrk is not installed (apt-get install -y wrk)")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    out = tmp_path / "bench.json"
    mark = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.run", "--smoke", "--json", str(out)],
        cwd=ROOT,
        env={**os.environ, "PC_BENCH_RUN": mark},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=320)
    finally:
        if proc.poll() is None:  # SIGTERM lets the benchmark stop what it started
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-5000:]
    assert marked(mark) == [], "the benchmark left processes behind"

    results = json.loads(out.read_text())
    assert results["missing_figures"] == [], text[-5000:]
    assert results["machine"]["nproc"] >= 1
    assert "nproc" in text
    for kind, figures in results["throughput"].items():
        assert figures["requests"] > 0, kind
        assert figures["floor"]["requests"] > 0, kind
    # Audience mode: every recipient answered 2xx reached Punchh, and once a send is
    # committed no identifier of it is left in Redis (figures, not speed: always required).
    assert results["throughput"]["audience"]["accepted_not_delivered"] == 0
    assert results["memory"]["audience"]["user_id"]["waiting"] > 0
    for send in results["audience_sends"]:
        assert send["recipients_counted"] == send["delivered"] == send["recipients"], send
        assert send["audience_keys_left"] == [], send
        assert send["identifiers_found_in_redis"] == 0, send
        assert send["punchh_calls"].get("add_users", 0) >= send["recipients"] // 1000, send
    if results["sfmc_status"] != "ok":
        # Only while the SFMC endpoint is being built: every other figure is still required.
        warnings.warn(f"bench: sfmc {results['sfmc_status']}", stacklevel=1)
