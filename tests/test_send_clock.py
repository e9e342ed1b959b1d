"""The send rule across real clock time: real gunicorn and RQ worker processes whose clock is
driven by libfaketime through a real midnight, a late retry wave, a second day and run keys
(docs/send-identity.md). Braze and SFMC requests are sent as those platforms send them."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis

from tests import summary
from tests.conftest import auth
from tests.helpers import campaigns
from tests.procs import Proc, start_gunicorn, start_worker, wait_until
from tests.sfmc_sim import execute_claims, sign
from tests.test_alerts import Receiver

#: libfaketime's multi-threaded build (gunicorn's gthread workers and RQ use threads).
LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))), None)
BRAZE = {"Authorization": "Bearer braze-token-1"}
OFFER = {"punchh_segment": "Lapsed 90 days", "punchh_redeemable": "Free Coffee"}


class FakeClock:
    """The wall clock of the processes started with `env()`: set it, and they see it at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.write_text("+0\n")  # nothing reads it yet

    def env(self) -> dict[str, str]:
        """What makes a process read its time from this clock."""
        assert LIBFAKETIME is not None
        return {
            "LD_PRELOAD": LIBFAKETIME,
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",  # read the file at every call: the test moves the clock
        }

    def set(self, when: datetime) -> None:
        """Move the processes' clock to `when` (it ticks on from there)."""
        # Written aside and renamed: a process reading a half-written file would see real time.
        staged = self.path.with_suffix(".new")
        staged.write_text(f"{round(when.timestamp() - time.time()):+d}\n")
        os.replace(staged, self.path)


@pytest.fixture
def clock(tmp_path: Path) -> FakeClock:
    if LIBFAKETIME is None:
        if os.environ.get("CI"):
            pytest.fail("libfaketime is not installed: .ci/run installs it (apt-get libfaketime)")
        pytest.skip("libfaketime is not installed (apt-get install -y libfaketime)")
    return FakeClock(tmp_path / "faketime")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()
    yield got
    got.close()


class Stack:
    """The connector's web and worker processes on the fake clock, and what it was sent."""

    def __init__(self, web: Proc, zone: ZoneInfo) -> None:
        self.web = web
        self.zone = zone
        self.client = httpx.Client(base_url=web.url, timeout=30)
        self.accepted: dict[str, int] = {}
        self.requests = 0

    def braze(self, ref: str, body: dict[str, Any]) -> httpx.Response:
        """One Braze recipient's webhook, counted under a scenario `ref`."""
        reply = self.client.post("/webhooks/braze", json={**OFFER, **body}, headers=BRAZE)
        self._count(ref, reply)
        return reply

    def sfmc(self, ref: str, journey: str, n: int, run_id: str | None = None) -> httpx.Response:
        """Contact n's signed execute for a journey's activity (a run id bound, or not)."""
        claims = execute_claims(
            journey_id=journey,
            activity_id=f"{journey}-act",
            instance=f"{journey}-{run_id}-{n}-{time.monotonic_ns()}",
            key_value=f"contact-key-{n}",
            extra_args={"run_id": run_id} if run_id is not None else None,
        )
        reply = self.client.post(
            "/sfmc/execute", content=sign(claims), headers={"Content-Type": "application/jwt"}
        )
        self._count(ref, reply)
        return reply

    def _count(self, ref: str, reply: httpx.Response) -> None:
        self.requests += 1
        if reply.status_code in (200, 202):
            self.accepted[ref] = self.accepted.get(ref, 0) + 1

    def records(self, campaign_ref: str) -> list[dict[str, Any]]:
        """Every distribution of one campaign ref."""
        reply = self.client.get("/v1/distributions", params={"limit": 500}, headers=auth())
        return [d for d in reply.json()["items"] if d["campaign_ref"] == campaign_ref]

    def settle(self) -> None:
        """Wait until no distribution is still being committed (before the clock moves on)."""

        def quiet() -> bool:
            reply = self.client.get(
                "/v1/distributions",
                params={"state": "queued,resolving,committing", "limit": 500},
                headers=auth(),
            )
            return reply.json()["count"] == 0

        assert wait_until(quiet, 60, 0.2)


def local(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    """A wall-clock moment in the send-key zone."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


@pytest.mark.slow
@pytest.mark.parametrize("zone_name", ["UTC", "America/New_York"])
def test_sends_follow_the_clock_across_midnight_days_and_late_waves(
    zone_name: str,
    clock: FakeClock,
    receiver: Receiver,
    env: dict[str, str],
    rdb: redis.Redis,
    sandbox: httpx.Client,
) -> None:
    zone = ZoneInfo(zone_name)
    env.update(clock.env())
    env.update(
        {
            "SEND_KEY_TIMEZONE": zone_name,
            "ALERT_WEBHOOK_URL": receiver.url,
            # gunicorn's worker watchdog runs on the faked clock too: a jump of hours must
            # not look like a hung worker.
            "GUNICORN_TIMEOUT": "10000000",
        }
    )
    day = datetime.now(zone).date() + timedelta(days=3)
    next_day = day + timedelta(days=1)
    clock.set(local(day, "09:00", zone))
    web = start_gunicorn(env, workers=1, threads=4)
    worker = start_worker(env)
    stack = Stack(web, zone)
    try:
        _drive(stack, clock, day, next_day)
        _check(stack, sandbox, rdb, receiver, day)
    finally:
        stack.client.close()
        worker.stop()
        web.stop()


def _drive(stack: Stack, clock: FakeClock, day: date, next_day: date) -> None:
    """Walk the fake clock through one day and the next midnight, sending as the clouds do."""
    zone = stack.zone

    def at(when: date, hhmm: str) -> None:
        stack.settle()
        clock.set(local(when, hhmm, zone))

    # 09:00, 13:00, 17:00: a marketer's three runs a day, each with its own run key.
    for hhmm, run in (("09:00", "R1"), ("13:00", "R2"), ("17:00", "R3")):
        at(day, hhmm)
        for n in range(3):
            stack.braze("runs", {"campaign_id": "cmp-runs", "send_key": run, "user_id": f"u{n}"})
            stack.sfmc("runs", "j-runs", n, run)
        if hhmm == "09:00":
            _per_guest_keys(stack)
        if hhmm == "13:00":
            # 14:00: the 10:00 send's webhooks arrive again, hours after it ended.
            at(day, "14:00")
            for n in range(4):
                stack.braze("late", {"canvas_id": "cv-late", "campaign_id": "s1"})
                stack.sfmc("late", "j-late", n)
        if hhmm == "09:00":
            # 10:00-10:30: a daily step, and the send whose late wave comes at 14:00.
            for minute in ("10:00", "10:15", "10:30"):
                at(day, minute)
                for ref in ("daily", "late"):
                    stack.braze(ref, {"canvas_id": f"cv-{ref}", "campaign_id": "s1"})
                    stack.sfmc(ref, f"j-{ref}", 1)

    # 23:50 → 00:20: a Canvas step (with no send key, and with the old per-request date
    # template) and an SFMC activity without a run id, sending across midnight.
    for when, hhmm in (
        (day, "23:50"), (day, "23:58"), (next_day, "00:05"), (next_day, "00:12"),
        (next_day, "00:20"),
    ):
        at(when, hhmm)
        for n in range(3):
            stack.braze("midnight", {"canvas_id": "cv-midnight", "campaign_id": "s1"})
            stack.braze(
                "dated",
                {"canvas_id": "cv-dated", "campaign_id": "s1", "send_key": when.isoformat()},
            )
            stack.sfmc("midnight", "j-midnight", n)

    # The daily step's next run, 10:00-10:30 the following day.
    for minute in ("10:00", "10:15", "10:30"):
        at(next_day, minute)
        stack.braze("daily", {"canvas_id": "cv-daily", "campaign_id": "s1"})
        stack.sfmc("daily", "j-daily", 1)
    stack.settle()


def _per_guest_keys(stack: Stack) -> None:
    """Mis-built templates that give every guest a send key of their own."""
    canvas = {"canvas_id": "cv-guest", "campaign_id": "s1"}
    for n in range(5):
        refused = stack.braze("refused", {**canvas, "send_key": f"d{n}", "dispatch_id": f"d{n}"})
        assert refused.status_code == 400, refused.text
        assert "inside a Canvas" in refused.json()["error"]["message"]
        stack.braze("guest", {"canvas_id": "cv-guest2", "campaign_id": "s1", "send_key": f"g{n}"})
        stack.sfmc("guest", "j-guest", n, f"contact-{n}")


def _check(
    stack: Stack, sandbox: httpx.Client, rdb: redis.Redis, receiver: Receiver, day: date
) -> None:
    made = campaigns(sandbox)
    per_ref: dict[str, int] = {}
    for campaign in made:
        source, *ref, _ = campaign["body"]["external_campaign_id"].split(":")
        key = f"{source}:{':'.join(ref)}"
        per_ref[key] = per_ref.get(key, 0) + 1
    expected = {
        "braze:cmp-runs": 3, "sfmc:j-runs:j-runs-act": 3,  # run keys honoured
        "braze:cv-daily:s1": 2, "sfmc:j-daily:j-daily-act": 2,  # one a day, nothing held
        "braze:cv-late:s1": 1, "sfmc:j-late:j-late-act": 1,  # the late wave is held
        "braze:cv-guest2:s1": 1, "sfmc:j-guest:j-guest-act": 1,  # per-guest keys: one
        "braze:cv-midnight:s1": 1, "braze:cv-dated:s1": 1,  # across midnight: one each
        "sfmc:j-midnight:j-midnight-act": 1,
    }
    assert per_ref == expected

    zone = stack.zone
    for ref, states in (
        ("cv-daily:s1", ["committed", "committed"]),
        ("j-daily:j-daily-act", ["committed", "committed"]),
        ("cv-late:s1", ["committed", "held"]),
        ("j-late:j-late-act", ["committed", "held"]),
        ("cv-midnight:s1", ["committed"]),
        ("cv-dated:s1", ["committed"]),
        ("j-midnight:j-midnight-act", ["committed"]),
    ):
        records = stack.records(ref)
        assert sorted(d["state"] for d in records) == states, (ref, records)
    # The midnight send's key names when it began, on the processes' (faked) clock and zone.
    midnight = stack.records("cv-midnight:s1")[0]
    key = midnight["send_key"]
    stamp = datetime.strptime(key[4:19], "%Y%m%dT%H%M%S").replace(tzinfo=zone)
    assert key.endswith("Z" if str(zone) == "UTC" else "-0500"), key
    assert abs((stamp - local(day, "23:50", zone)).total_seconds()) < 5, key
    created = datetime.fromisoformat(midnight["created_at"].replace("Z", "+00:00"))
    assert abs((created - stamp).total_seconds()) < 5
    assert midnight["recipients"] == 15

    late = next(d for d in stack.records("cv-late:s1") if d["state"] == "held")
    assert "late retry wave" in late["last_error"] and late["recipients"] == 4
    assert wait_until(
        lambda: sum("held" in m.get("text", "") for m in receiver.messages) >= 4, 20
    ), receiver.messages
    alerted = " ".join(m.get("text", "") for m in receiver.messages)
    assert "cv-late" in alerted and "j-late" in alerted

    # Nothing accepted was lost: every accepted request is a recipient on some record.
    lost = 0
    for ref, campaign_ref in (
        ("midnight", "cv-midnight:s1"), ("dated", "cv-dated:s1"), ("late", "cv-late:s1"),
        ("daily", "cv-daily:s1"), ("runs", "cmp-runs"), ("guest", "cv-guest2:s1"),
    ):
        braze = sum(d["recipients"] for d in stack.records(campaign_ref))
        sfmc_ref = {"dated": None, "runs": "j-runs:j-runs-act", "guest": "j-guest:j-guest-act"}
        sfmc_campaign = sfmc_ref.get(ref, f"j-{ref}:j-{ref}-act")
        sfmc = sum(d["recipients"] for d in stack.records(sfmc_campaign)) if sfmc_campaign else 0
        lost += stack.accepted.get(ref, 0) - braze - sfmc
    assert lost == 0
    summary.record(
        f"clock ({zone}): midnight, 2 days, late wave, per-guest and run keys",
        requests=stack.requests,
        faults=3,  # midnight, a late retry wave, per-guest keys
        expected=sum(expected.values()),
        created=len(made),
        lost=lost,
    )
