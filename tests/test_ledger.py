"""The atomic intake step: one record per send, counted recipients, conflicts, fan-out guard."""

from __future__ import annotations

import threading

import redis

from ledger.states import State
from ledger.store import Ledger
from tests.helpers import dist_request


def make_ledger(rdb: redis.Redis, **kw: int) -> Ledger:
    return Ledger(rdb, prefix="t:", **kw)


def test_first_request_creates_then_counts(rdb: redis.Redis) -> None:
    ledger = make_ledger(rdb)
    first = ledger.intake(dist_request())
    second = ledger.intake(dist_request())
    assert (first.outcome, first.state, first.recipients) == ("created", "queued", 1)
    assert (second.outcome, second.recipients) == ("counted", 2)
    dist = ledger.get(first.distribution_id)
    assert dist is not None
    assert dist.fields["segment"] == "Lapsed 90 days"
    assert dist.int_field("recipients") == 2
    assert first.distribution_id == "api:camp-1:send-1"


def test_concurrent_first_requests_create_exactly_once(rdb: redis.Redis) -> None:
    ledger = make_ledger(rdb)
    outcomes: list[str] = []
    lock = threading.Lock()

    def hit() -> None:
        for _ in range(50):
            result = ledger.intake(dist_request("race"))
            with lock:
                outcomes.append(result.outcome)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("created") == 1
    assert outcomes.count("counted") == 399
    dist = ledger.get("api:camp-1:race")
    assert dist is not None and dist.int_field("recipients") == 400


def test_conflict_is_refused_and_counted(rdb: redis.Redis) -> None:
    ledger = make_ledger(rdb)
    ledger.intake(dist_request())
    clash = ledger.intake(dist_request(redeemable="Free Dessert"))
    assert clash.conflict
    assert clash.existing_redeemable == "Free Coffee"
    dist = ledger.get(clash.distribution_id)
    assert dist is not None
    assert dist.fields["redeemable"] == "Free Coffee"
    assert dist.int_field("conflicts") == 1
    assert dist.int_field("recipients") == 1


def test_replay_token_counts_a_recipient_once(rdb: redis.Redis) -> None:
    ledger = make_ledger(rdb)
    a = ledger.intake(dist_request(source="sfmc", replay_token="tok-a"))
    again = ledger.intake(dist_request(source="sfmc", replay_token="tok-a"))
    b = ledger.intake(dist_request(source="sfmc", replay_token="tok-b"))
    assert (a.outcome, again.outcome, b.outcome) == ("created", "replay", "counted")
    dist = ledger.get(a.distribution_id)
    assert dist is not None and dist.int_field("recipients") == 2


def test_replay_window_zero_keeps_no_tokens(rdb: redis.Redis) -> None:
    """SFMC_DEDUPE_SECONDS=0: a retry is counted again, and nothing per contact is kept."""
    ledger = make_ledger(rdb, replay_seconds=0)
    outcomes = [
        ledger.intake(dist_request(source="sfmc", replay_token="tok-a")).outcome
        for _ in range(2)
    ]
    assert outcomes == ["created", "counted"]
    assert not list(rdb.scan_iter(match="*rp:*"))


def test_fanout_guard_holds_sends_beyond_the_limit(rdb: redis.Redis) -> None:
    ledger = make_ledger(rdb, fanout_limit=3, fanout_window_seconds=3600)
    states = [ledger.intake(dist_request(f"k{i}", source="braze")).state for i in range(6)]
    assert states == ["queued", "queued", "queued", "held", "held", "held"]
    # The API's idempotency keys are chosen by the client: the guard does not apply.
    api_states = [ledger.intake(dist_request(f"k{i}", source="api")).state for i in range(6)]
    assert api_states == ["queued"] * 6


def test_fanout_window_slides(rdb: redis.Redis) -> None:
    ledger = make_ledger(rdb, fanout_limit=1, fanout_window_seconds=60)
    assert ledger.intake(dist_request("a", source="braze"), now=1000.0).state == "queued"
    assert ledger.intake(dist_request("b", source="braze"), now=1030.0).state == "held"
    assert ledger.intake(dist_request("c", source="braze"), now=1100.0).state == "queued"


def test_transition_is_compare_and_set_and_expires_settled_records(rdb: redis.Redis) -> None:
    ledger = make_ledger(rdb, retention_seconds=1234)
    dist_id = ledger.intake(dist_request()).distribution_id
    changed, before = ledger.transition(dist_id, State.RESOLVING, allowed_from=["queued"])
    assert (changed, before) == (True, "queued")
    changed, before = ledger.transition(dist_id, State.RESOLVING, allowed_from=["queued"])
    assert (changed, before) == (False, "resolving")
    assert rdb.ttl(ledger.record_key(dist_id)) == -1  # active records never expire
    ledger.transition(dist_id, State.COMMITTED, fields={"campaign_id": 7})
    assert 0 < rdb.ttl(ledger.record_key(dist_id)) <= 1234
    assert ledger.active_ids(older_than=1e12) == []
    events = ledger.events(dist_id)
    assert [e["to"] for e in events] == ["resolving", "committed"]


def test_recent_lists_newest_first_with_filters(rdb: redis.Redis) -> None:
    ledger = make_ledger(rdb)
    for i in range(5):
        ledger.intake(dist_request(f"s{i}", source="braze" if i % 2 else "api"), now=100.0 + i)
    ids = [d.id for d in ledger.recent()]
    assert ids == [f"{'braze' if i % 2 else 'api'}:camp-1:s{i}" for i in reversed(range(5))]
    assert [d.id for d in ledger.recent(source="braze")] == ["braze:camp-1:s3", "braze:camp-1:s1"]
    assert len(ledger.recent(since=102.5)) == 2


def test_record_holds_no_guest_fields(rdb: redis.Redis) -> None:
    ledger = make_ledger(rdb)
    dist_id = ledger.intake(dist_request()).distribution_id
    dist = ledger.get(dist_id)
    assert dist is not None
    # (per_minute:<minute> holds the running count the send page charts.)
    assert {f for f in dist.fields if not f.startswith("per_minute:")} <= {
        "state", "recipients", "created_at", "updated_at", "source", "campaign_ref", "send_key",
        "key_rule", "segment", "redeemable", "attempts", "conflicts",
    }


def test_records_waiting_for_an_operator_never_expire(rdb: redis.Redis) -> None:
    """unknown, failed and held keep no TTL (nor do their events) until an operator acts."""
    ledger = make_ledger(rdb, retention_seconds=60)
    for waiting in (State.UNKNOWN, State.FAILED, State.HELD):
        dist_id = ledger.intake(dist_request(f"wait-{waiting.value}")).distribution_id
        ledger.transition(dist_id, State.COMMITTED)  # a TTL to lose (e.g. a lost write redone)
        assert rdb.ttl(ledger.record_key(dist_id)) > 0
        ledger.transition(dist_id, waiting)
        assert rdb.ttl(ledger.record_key(dist_id)) == -1, waiting
        assert rdb.ttl(ledger.events_key(dist_id)) == -1, waiting
        ledger.transition(dist_id, State.CANCELLED, actor="ops")  # the operator settles it
        assert 0 < rdb.ttl(ledger.record_key(dist_id)) <= 60
        assert 0 < rdb.ttl(ledger.events_key(dist_id)) <= 60


def test_a_campaign_is_recorded_committed_whatever_state_survived(rdb: redis.Redis) -> None:
    """After Punchh's answer the record ends committed, even if `committing` was forgotten."""
    ledger = make_ledger(rdb, retention_seconds=60)
    dist_id = ledger.intake(dist_request("lost-write")).distribution_id
    ledger.transition(dist_id, State.RESOLVING)
    read = ledger.get(dist_id)
    assert read is not None
    written, before, _ = ledger.record_commit(read, 42, {"committed_at": 1.0})
    assert (written, before) == (True, "resolving")
    dist = ledger.get(dist_id)
    assert dist is not None and dist.state == "committed" and dist.fields["campaign_id"] == "42"
    assert dist_id not in ledger.active_ids(older_than=1e12)
    assert "while the ledger said resolving" in ledger.events(dist_id)[-1]["note"]
    assert 0 < rdb.ttl(ledger.record_key(dist_id)) <= 60
    # Committed already (an operator resolved it with the same id): nothing is rewritten.
    assert ledger.record_commit(read, 42, {}) == (False, "committed", "42")


def test_a_forgotten_record_is_rebuilt_as_committed(rdb: redis.Redis) -> None:
    ledger = make_ledger(rdb)
    dist_id = ledger.intake(dist_request("gone")).distribution_id
    read = ledger.get(dist_id)
    assert read is not None
    rdb.delete(ledger.record_key(dist_id), ledger.index_key)  # a failover lost the creation
    written, before, _ = ledger.record_commit(read, 7, {})
    assert (written, before) == (True, "")
    dist = ledger.get(dist_id)
    assert dist is not None and dist.state == "committed"
    assert dist.fields["segment"] == "Lapsed 90 days" and dist.fields["campaign_id"] == "7"
    assert [d.id for d in ledger.recent()] == [dist_id]


def test_an_answer_after_the_run_was_presumed_lost_settles_unknown(rdb: redis.Redis) -> None:
    ledger = make_ledger(rdb)
    dist_id = ledger.intake(dist_request("late")).distribution_id
    read = ledger.get(dist_id)
    assert read is not None
    ledger.transition(dist_id, State.UNKNOWN)
    assert ledger.record_commit(read, 9, {})[:2] == (True, "unknown")
    assert ledger.events(dist_id)[-1]["note"] == "Punchh answered after the run was presumed lost"


def test_a_send_followed_for_days_keeps_a_small_compact_record(rdb: redis.Redis) -> None:
    """The chart's samples are bounded by the send's age, not its length or audience."""
    ledger = make_ledger(rdb)
    start = 1_800_000_000.0
    for minute in range(0, 5 * 24 * 60, 7):  # a request every 7 minutes for five days
        ledger.intake(dist_request("long"), now=start + minute * 60)
    key = ledger.record_key("api:camp-1:long")
    samples = [f for f in rdb.hkeys(key) if f.startswith(b"per_minute:")]
    assert len(samples) <= 30 + 48
    assert rdb.object("encoding", key) == b"listpack"
