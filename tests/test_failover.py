"""Failover to a lagging replica at the worst moments, on a real primary + replica pair.

Real gunicorn, a real RQ worker and the Punchh sandbox, all reaching Redis through the pair's
front proxy (tests/failover.py). Replication is cut at a chosen moment, the replica promoted
and the clients switched to it: whatever the primary took after the cut is forgotten, as in a
real failover to a replica that lags. One send must still make exactly one campaign, and no
send answered 2xx may vanish.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import summary
from tests.conftest import auth, base_env
from tests.failover import Pair, start_pair
from tests.helpers import campaigns, fault
from tests.procs import Proc, start_gunicorn, start_worker, wait_until

pytestmark = pytest.mark.slow

BODY = {"segment": "Lapsed 90 days", "redeemable": "Free Coffee"}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    made = start_pair(tmp_path)
    yield made
    made.stop()


def failover_env(pair: Pair, sandbox_url: str, durability: str) -> dict[str, str]:
    """Short lock and staleness so a run cut off by the failover is picked up in seconds."""
    return base_env(
        pair.url,
        sandbox_url,
        SWEEP_STALE_SECONDS="1",
        # The shortest lock the configuration check allows for these Punchh timeouts.
        PUNCHH_CONNECT_TIMEOUT="1",
        PUNCHH_READ_TIMEOUT="2",
        COMMIT_LOCK_SECONDS="11",
        COMMIT_MAX_ATTEMPTS="8",
        RETRY_BASE_SECONDS="1",
        LEDGER_DURABILITY=durability,
        LEDGER_DURABILITY_TIMEOUT_MS="300",
    )


def post(web: Proc, key: str) -> int:
    """One generic-API request, as a platform sends it: the status, or 0 on a network error."""
    try:
        reply = httpx.post(
            f"{web.url}/v1/distributions",
            json=BODY,
            headers={**auth(), "Idempotency-Key": key},
            timeout=10,
        )
    except httpx.HTTPError:
        return 0
    return reply.status_code


def state_on(pair: Pair, port: int, dist_id: str) -> str:
    return pair.client(port).hget(f"pc:d:{dist_id}", "state") or ""  # type: ignore[return-value]


def made_for(sandbox: httpx.Client, dist_id: str) -> list[dict[str, Any]]:
    return [c for c in campaigns(sandbox) if c["body"]["external_campaign_id"] == dist_id]


def settle(pair: Pair, sandbox: httpx.Client, dist_id: str) -> str:
    """Wait until the send is committed on the new primary and stays quiet a while; its state.

    Held Punchh answers are let go on every look: a hold meant for the first POST may catch a
    later one when the first was never sent.
    """

    def committed() -> bool:
        sandbox.post("/_sandbox/release")
        return state_on(pair, pair.replica_port, dist_id) == "committed"

    wait_until(committed, 40, 0.2)
    time.sleep(4.0)  # several sweeps: a record left active would be posted again by now
    return state_on(pair, pair.replica_port, dist_id)


@pytest.mark.parametrize("durability", ["none", "auto"])
def test_failover_loses_committing_while_punchh_creates_the_campaign(
    pair: Pair, sandbox_proc: Proc, sandbox: httpx.Client, durability: str
) -> None:
    """(a) The replica never got `committing`; Punchh creates the campaign; then failover.

    Without confirmation (`none`) the POST goes out and the answer finds the record back in
    `resolving` on the new primary: it must still end committed, and never be posted again.
    With `auto` (a replica is connected) `committing` waits for the replica, which does not
    answer: nothing is posted until the failover is over.
    """
    env = failover_env(pair, sandbox_proc.url, durability)
    web = start_gunicorn(env, workers=1, threads=4)
    worker = start_worker(env)
    dist_id = "api:default:failover-a"
    try:
        fault(sandbox, "segments", "hold", seconds=60)  # the worker stops while resolving
        fault(sandbox, "campaigns", "commit_hold", seconds=60)  # created, answer held
        assert post(web, "failover-a") == 202
        assert wait_until(lambda: sandbox.get("/_sandbox/held").json()["held"] == 1, 20)
        assert wait_until(lambda: state_on(pair, pair.replica_port, dist_id) == "resolving", 10)
        pair.cut_link()  # from here the replica sees nothing
        sandbox.post("/_sandbox/release")

        def posted_or_backed_off() -> bool:
            held = sandbox.get("/_sandbox/held").json()["held"] == 1
            return held or state_on(pair, pair.primary_port, dist_id) == "queued"

        assert wait_until(posted_or_backed_off, 20, 0.05), worker.log()[-3000:]
        posted_before = len(made_for(sandbox, dist_id))
        pair.promote_replica()
        sandbox.post("/_sandbox/release")  # Punchh's answer reaches the worker now
        final = settle(pair, sandbox, dist_id)
        made = made_for(sandbox, dist_id)
        summary.record(
            f"failover to a lagging replica after the POST ({durability})"
            if posted_before
            else f"failover to a lagging replica before the POST ({durability})",
            requests=1, faults=1, expected=1, created=len(made),
            lost=0 if final == "committed" else 1,
        )
        assert len(made) == 1, f"{len(made)} campaigns for one send\n{worker.log()[-3000:]}"
        assert final == "committed"
        if durability == "auto":
            assert posted_before == 0, "posted while Redis could not confirm `committing`"
        shown = httpx.get(f"{web.url}/v1/distributions/{dist_id}", headers=auth(), timeout=10)
        assert shown.json()["campaign_id"] == made[0]["campaign_id"]
        if posted_before:  # the answer found `resolving`: the mismatch is on the record
            notes = [e.get("note", "") for e in shown.json()["events"]]
            assert any("while the ledger said resolving" in n for n in notes), notes
            assert pair.client(pair.replica_port).hget("pc:m", "commit_ledger_mismatch") == "1"
    finally:
        web.stop()
        worker.stop()


def test_failover_after_a_confirmed_committing_ends_committed(
    pair: Pair, sandbox_proc: Proc, sandbox: httpx.Client
) -> None:
    """(a') The replica has `committing`; the failover strikes while Punchh answers."""
    env = failover_env(pair, sandbox_proc.url, "auto")
    web = start_gunicorn(env, workers=1, threads=4)
    worker = start_worker(env)
    dist_id = "api:default:failover-a2"
    try:
        fault(sandbox, "campaigns", "commit_hold", seconds=60)
        assert post(web, "failover-a2") == 202
        assert wait_until(lambda: sandbox.get("/_sandbox/held").json()["held"] == 1, 20)
        assert state_on(pair, pair.replica_port, dist_id) == "committing"
        pair.cut_link()
        pair.promote_replica()
        sandbox.post("/_sandbox/release")
        final = settle(pair, sandbox, dist_id)
        made = made_for(sandbox, dist_id)
        summary.record(
            "failover while Punchh answers (committing confirmed)",
            requests=1, faults=1, expected=1, created=len(made),
            lost=0 if final == "committed" else 1,
        )
        assert len(made) == 1 and final == "committed"
    finally:
        web.stop()
        worker.stop()


def test_failover_between_creation_and_the_job_loses_no_accepted_send(
    pair: Pair, sandbox_proc: Proc, sandbox: httpx.Client
) -> None:
    """(b) Sends created before the worker runs; the replica misses some; then failover.

    A platform retries every answer that is not 2xx (Braze and SFMC both do) and forgets the
    ones that are. Every send that had a 2xx must end with exactly one campaign.
    """
    env = failover_env(pair, sandbox_proc.url, "auto")
    web = start_gunicorn(env, workers=1, threads=4)
    worker: Proc | None = None
    answers: dict[str, list[int]] = {}
    try:

        def send(key: str, times: int) -> None:
            for _ in range(times):
                answers.setdefault(key, []).append(post(web, key))

        send("before-cut", 3)  # replicated: the replica has it
        assert wait_until(pair.in_sync, 10)
        pair.cut_link()
        send("after-cut", 3)  # the first request creates it where only the primary sees it
        pair.promote_replica()
        # The platform's retries of whatever was refused, after the failover (Braze retries
        # for 30 minutes; the old primary's full resync as the new replica takes a few
        # seconds, during which a creation cannot be confirmed).
        for key, statuses in list(answers.items()):
            if statuses[0] != 202:
                for _ in range(40):
                    status = post(web, key)
                    answers[key].append(status)
                    if status == 202:
                        break
                    time.sleep(0.5)
        worker = start_worker(env)
        accepted = [key for key, statuses in answers.items() if 202 in statuses]
        assert accepted == ["before-cut", "after-cut"], answers
        for key in accepted:
            settle(pair, sandbox, f"api:default:{key}")
        made = {key: len(made_for(sandbox, f"api:default:{key}")) for key in accepted}
        lost = [key for key, n in made.items() if n == 0]
        summary.record(
            "failover to a lagging replica between creation and the job",
            requests=sum(len(s) for s in answers.values()), faults=1, expected=len(accepted),
            created=sum(made.values()), lost=len(lost),
        )
        assert lost == [] and set(made.values()) == {1}, (made, answers)
        # Neither the creation nor a count on it is answered 2xx before a replica confirmed it.
        assert answers["after-cut"][:3] == [503, 503, 503], "answered before the replica confirmed"
    finally:
        web.stop()
        if worker is not None:
            worker.stop()
