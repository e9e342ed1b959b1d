"""``python -m sandbox``: binds, announces its address, serves, drops quietly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.sandbox.support import (
    ADMIN,
    CUSTOM_SEGMENTS,
    DISCONNECTED,
    MEMBERS,
    ROOT,
    SEED,
    add_fault,
    live_commit,
)


def test_python_m_sandbox_on_port_0(tmp_path: Path) -> None:
    seed = {**SEED, "business": {"timezone": "Europe/Paris"}}
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--seed", str(seed_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"sandbox listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match and int(match.group(2)) > 0, line
        with httpx.Client(base_url=match.group(1), headers=ADMIN, timeout=5) as client:
            reply = live_commit(client).json()
            assert reply["timezone"] == "Europe/Paris"
            add_fault(client, endpoint="campaigns", mode="commit_drop")
            with pytest.raises(DISCONNECTED):
                live_commit(client)
            assert len(client.get("/_sandbox/campaigns").json()) == 2
            # The server's request lines would name a guest: a membership check's query does.
            created = client.post(CUSTOM_SEGMENTS, json={"name": "pc-send"}).json()
            guest = SEED["guests"][0]
            query = {"custom_segment_id": created["custom_segment_id"], "email": guest["email"]}
            assert client.get(MEMBERS, params=query).status_code == 404
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert "Traceback" not in stderr  # dropping the connection is quiet
    assert "custom_segments/members?" in stderr and "email=[redacted]" in stderr
    assert guest["email"] not in stderr
