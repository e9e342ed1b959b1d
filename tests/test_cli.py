"""The `punchh-connector` CLI end to end: every command on a real ledger, sandbox and job."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from ledger.states import State
from tests.conftest import SANDBOX_KEY
from tests.helpers import campaigns, dist_request, fault, submit
from tests.procs import BIN, ROOT
from wiring import cli
from wiring.services import Services
from workers.commit import Committer


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """One attempt per commit, so a 500 from Punchh makes a `failed` distribution at once."""
    env["COMMIT_MAX_ATTEMPTS"] = "1"
    return env


@pytest.fixture
def run(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):  # type: ignore[no-untyped-def]
    """Run the CLI in-process with the test environment; returns (exit code, stdout, stderr)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("USER", "carol")

    def invoke(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def state_of(services: Services, dist_id: str) -> str:
    dist = services.ledger.get(dist_id)
    assert dist is not None
    return dist.state


def held(services: Services, key: str = "h-4") -> str:
    for n in range(1, 4):
        submit(services, dist_request(f"h-{n}", source="braze"))
    result = submit(services, dist_request(key, source="braze"))
    assert result.state == State.HELD
    return result.distribution_id


def test_list_table_and_json(run, services: Services) -> None:  # type: ignore[no-untyped-def]
    submit(services, dist_request("a-1"))
    submit(services, dist_request("b-1", source="braze"))
    code, out, _ = run("list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["CREATED", "STATE", "SOURCE"]
    assert "braze:camp-1:b-1" in lines[1] and "api:camp-1:a-1" in lines[2]
    code, out, _ = run("list", "--source", "api", "--json")
    assert code == 0
    assert [d["distribution_id"] for d in json.loads(out)] == ["api:camp-1:a-1"]
    code, out, _ = run("list", "--state", "failed")
    assert code == 0 and "(no distributions match in Redis " in out
    code, _, err = run("list", "--state", "bogus")
    assert code == 1 and "unknown state" in err
    code, _, err = run("list", "--since", "last week")
    assert code == 1 and "ISO 8601" in err


def test_show_prints_record_and_events(run, services: Services) -> None:  # type: ignore[no-untyped-def]
    dist_id = held(services)
    code, out, _ = run("show", dist_id)
    assert code == 0
    assert "state                 held" in out
    assert "fan-out guard" in out  # the hold's event and reason
    code, out, _ = run("show", dist_id, "--json")
    body = json.loads(out)
    assert body["state"] == "held" and body["events"]
    code, _, err = run("show", "api:nope:x")
    assert code == 1 and "no distribution" in err


def test_retry_failed(run, services: Services, sandbox: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    fault(sandbox, "campaigns", "500")
    dist_id = submit(services, dist_request("f-1")).distribution_id
    assert Committer(services).run(dist_id) == State.FAILED
    code, out, _ = run("retry", dist_id, "--reason", "Punchh recovered")
    assert code == 0
    assert f"retry {dist_id}: failed → queued" in out
    event = services.ledger.events(dist_id)[-1]
    assert event["by"] == "carol" and "Punchh recovered" in event["note"]
    assert Committer(services).run(dist_id) == State.COMMITTED
    assert len(campaigns(sandbox)) == 1
    code, _, err = run("retry", dist_id)
    assert code == 1 and "cannot retry" in err


def test_punchh_unlock_is_the_one_way_to_end_a_lockout(  # type: ignore[no-untyped-def]
    run, services: Services, sandbox: httpx.Client
) -> None:
    wrong = Services.build(services.settings.with_overrides(punchh_api_key="nope"), services.redis)
    dist_id = submit(services, dist_request("lk-1")).distribution_id
    assert Committer(wrong).run(dist_id) == State.FAILED  # Punchh: 401, every process locked out
    for argv in (("retry", dist_id), ("check",)):
        code, out, err = run(*argv)
        assert code == 1 and "punchh-connector punchh-unlock" in out + err, argv
    assert state_of(services, dist_id) == State.FAILED
    code, out, _ = run("punchh-unlock", "--reason", "rotated the key")
    assert code == 0 and "cleared the Punchh lockout" in out and "401" in out
    code, out, _ = run("punchh-unlock", "--json")
    assert code == 0 and json.loads(out)["cleared"] is False
    code, out, _ = run("retry", dist_id)
    assert code == 0 and "failed → queued" in out
    assert Committer(services).run(dist_id) == State.COMMITTED


def test_resolve_with_campaign_id_then_undo(  # type: ignore[no-untyped-def]
    run, services: Services, sandbox: httpx.Client
) -> None:
    fault(sandbox, "campaigns", "commit_drop")
    dist_id = submit(services, dist_request("u-1")).distribution_id
    assert Committer(services).run(dist_id) == State.UNKNOWN
    found = campaigns(sandbox)[0]["campaign_id"]
    code, out, _ = run("resolve", dist_id, "--campaign-id", str(found), "--by", "dave")
    assert code == 0 and "unknown → committed" in out
    dist = services.ledger.get(dist_id)
    assert dist is not None and dist.fields["campaign_id"] == str(found)
    assert services.ledger.events(dist_id)[-1]["by"] == "dave"
    code, out, _ = run("undo", dist_id, "--json")
    assert code == 0 and json.loads(out)["state"] == "unknown"
    assert state_of(services, dist_id) == State.UNKNOWN


def test_resolve_not_created(run, services: Services, sandbox: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    fault(sandbox, "campaigns", "504")
    dist_id = submit(services, dist_request("u-2")).distribution_id
    assert Committer(services).run(dist_id) == State.UNKNOWN
    with pytest.raises(SystemExit):  # argparse: exactly one of the two is required
        run("resolve", dist_id)
    code, out, _ = run("resolve", dist_id, "--not-created")
    assert code == 0 and "unknown → queued" in out
    assert Committer(services).run(dist_id) == State.COMMITTED
    assert len(campaigns(sandbox)) == 1


def test_release_cancel_and_undo(run, services: Services, sandbox: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    first = held(services)
    code, out, _ = run("release", first)
    assert code == 0 and "held → queued" in out
    code, _, _ = run("undo", first)  # before the job ran: back on hold
    assert code == 0 and state_of(services, first) == State.HELD
    code, _, _ = run("release", first)
    assert Committer(services).run(first) == State.COMMITTED
    code, _, err = run("undo", first)  # the job has acted: nothing to undo
    assert code == 1 and "moved on" in err

    second = submit(services, dist_request("h-5", source="braze")).distribution_id
    assert state_of(services, second) == State.HELD
    code, out, _ = run("cancel", second, "--reason", "per-guest send key")
    assert code == 0 and "held → cancelled" in out
    code, _, err = run("release", second)
    assert code == 1 and "cannot release" in err
    code, _, _ = run("undo", second)
    assert code == 0 and state_of(services, second) == State.HELD


def test_check_ok_and_no_punchh(run, services: Services) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("check")
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()] == [
        # The test Redis has neither a replica nor an AOF: passed, with a plain warning.
        ["ok", "configuration"], ["ok", "redis"], ["WARN", "durability"], ["ok", "punchh"],
    ]
    for secret in ("test-api-token", SANDBOX_KEY, "braze-token-1", "sfmc-secret-one"):
        assert secret not in out
    code, out, _ = run("check", "--no-punchh", "--json")
    assert code == 0
    checks = json.loads(out)["checks"]
    assert [c["name"] for c in checks] == ["configuration", "redis", "durability"]
    assert checks[2]["warning"] is True and "a Redis crash loses every write" in checks[2]["detail"]


def test_check_fails_on_a_refused_key(  # type: ignore[no-untyped-def]
    run, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUNCHH_API_KEY", "not-the-key")
    code, out, _ = run("check")
    assert code == 1
    assert "FAILED punchh" in out and "refused the API key" in out
    assert "not-the-key" not in out


def test_check_fails_when_redis_is_unreachable(  # type: ignore[no-untyped-def]
    run, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    code, out, _ = run("check", "--no-punchh")
    assert code == 1 and "FAILED redis" in out


def test_configuration_error_exits_2(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PUNCHH_API_KEY")
    code, _, err = run("check")
    assert code == 2
    assert "PUNCHH_API_KEY is required" in err


def test_sweep_requeues_a_record_without_a_job(run, services: Services) -> None:  # type: ignore[no-untyped-def]
    dist_id = submit(services, dist_request("s-1")).distribution_id
    services.queue.empty()
    services.redis.hdel(services.ledger.record_key(dist_id), "job_id")
    services.redis.zadd(services.ledger.active_key, {dist_id: 0})  # stale
    code, out, _ = run("sweep")
    assert code == 0 and out.strip() == "re-queued 1"
    assert services.queue.count == 1


def test_console_script_release_phase(
    env: dict[str, str], services: Services, tmp_path: Path
) -> None:
    """What the Procfile's release phase runs, as a real process."""
    script = BIN / "punchh-connector"
    # No local stack to fall back on: `make run` may be up on this machine.
    env = {**env, "PUNCHH_DEV_STATE": str(tmp_path / "none.json")}
    done = subprocess.run(
        [str(script), "check", "--no-punchh"],
        cwd=ROOT, env={"PATH": str(BIN), **env}, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "ok     redis" in done.stdout
    broken = {k: v for k, v in env.items() if k != "REDIS_URL"}
    done = subprocess.run(
        [str(script), "check", "--no-punchh"],
        cwd=ROOT, env={"PATH": str(BIN), **broken}, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2 and "REDIS_URL is required" in done.stderr


def test_worker_command_runs_a_burst_worker(run, services: Services, sandbox: httpx.Client) -> None:  # type: ignore[no-untyped-def]
    dist_id = submit(services, dist_request("w-1")).distribution_id
    code, _, _ = run("worker", "--burst", "--maintenance-seconds", "1")
    assert code == 0
    assert state_of(services, dist_id) == State.COMMITTED
    assert len(campaigns(sandbox)) == 1


def test_release_phase_fails_when_unsigned_sfmc_calls_are_accepted(
    env: dict[str, str], services: Services
) -> None:
    """SFMC_ALLOW_PLAIN_JSON lets anyone who reaches /sfmc/execute forge a send: the
    Procfile's release phase refuses it unless the deployment says it is for development."""
    script = BIN / "punchh-connector"

    def release(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), "check", "--no-punchh"],
            cwd=ROOT, env={"PATH": str(BIN), **env, **extra}, capture_output=True, text=True,
            timeout=30,
        )

    done = release(SFMC_ALLOW_PLAIN_JSON="true")
    assert done.returncode == 1, done.stdout + done.stderr
    line = next(li for li in done.stdout.splitlines() if li.startswith("FAILED sfmc"))
    assert "SFMC_ALLOW_PLAIN_JSON" in line and "forge" in line
    assert "DEPLOYMENT_ENVIRONMENT=development" in line  # the way out is named
    done = release(SFMC_ALLOW_PLAIN_JSON="true", DEPLOYMENT_ENVIRONMENT="development")
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(li.startswith("ok     sfmc") for li in done.stdout.splitlines()), done.stdout
    done = release(DEPLOYMENT_ENVIRONMENT="staging")
    assert done.returncode == 2 and "DEPLOYMENT_ENVIRONMENT" in done.stderr
    done = release()  # off (the default): nothing to report, the check passes as before
    assert done.returncode == 0 and "sfmc" not in done.stdout


def test_an_empty_answer_says_which_redis_and_prefix_it_read(
    env: dict[str, str], services: Services, tmp_path: Path
) -> None:
    """Pointed at the wrong place, the real CLI says where it looked instead of just nothing."""
    submit(services, dist_request("here"))
    script = BIN / "punchh-connector"
    wrong = {**env, "PATH": str(BIN), "KEY_PREFIX": "other:",
             "PUNCHH_DEV_STATE": str(tmp_path / "none.json")}
    for command in (["list"], ["show", "api:camp-1:here"]):
        done = subprocess.run(
            [str(script), *command], cwd=ROOT, env=wrong, capture_output=True, text=True,
            timeout=30,
        )
        out = done.stdout + done.stderr
        assert f"Redis {env['REDIS_URL']}" in out and "key prefix 'other:'" in out, out
        assert done.returncode == (0 if command == ["list"] else 1)


def test_where_hides_the_redis_password() -> None:
    where = cli.where_it_reads("rediss://user:s3cret@redis.example:6380/2", "pc:")
    assert "s3cret" not in where and "rediss://user:***@redis.example:6380/2" in where
