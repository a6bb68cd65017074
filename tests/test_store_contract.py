"""Every store implementation behaves the same: one contract, run against each of them."""

import threading
import time
from collections import OrderedDict

import pytest

from app.domain.optouts import OptIn, OptOut
from app.domain.records import parse_status_webhook, sent_record
from app.store.memory import EXPIRED_PER_BEGIN, MemoryStore
from tests.webhook_signing import status_body

UUID = "bbbbbbbb-0000-4000-8000-000000000001"
SUMMARY = {"to": "+14155550100", "from": "+447700900000", "encoding": "GSM-7", "segments": 1}


class FakeClock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.slow)])
def make_store(request):
    """Build a store of each kind with a retention, a size bound and a clock."""
    if request.param == "redis":
        from app.store.redis_store import RedisStore, connect

        client = connect(request.getfixturevalue("redis_url"))
        yield lambda retention_s=3600, max_messages=1000, clock=None: RedisStore(
            client, retention_s, max_messages, clock or FakeClock()
        )
        client.close()
    elif request.param == "sqlite":
        from app.store.sqlite import SQLiteStore

        path, built = str(request.getfixturevalue("tmp_path") / "state.db"), []

        def on_file(retention_s=3600, max_messages=1000, clock=None):
            built.append(SQLiteStore(path, retention_s, max_messages, clock or FakeClock()))
            return built[-1]

        yield on_file
        for store in built:
            store.close()
    else:
        yield lambda retention_s=3600, max_messages=1000, clock=None: MemoryStore(
            retention_s, max_messages, clock or FakeClock()
        )


@pytest.fixture
def store(make_store):
    return make_store()


def event(status, timestamp, uuid=UUID, **extra):
    parsed = parse_status_webhook(status_body(uuid, status, timestamp, **extra))
    assert isinstance(parsed, dict), parsed
    return parsed


def sent(uuid=UUID, api_key="alpha", created_at="2026-01-01T10:00:00.000Z"):
    return sent_record(uuid, api_key, {**SUMMARY, "client_ref": "ref"}, created_at)


def test_saved_record_reads_back(store):
    store.save_sent(sent())
    record = store.get_message(UUID)
    assert record["status"] == "accepted"
    assert (record["api_key"], record["to"], record["client_ref"]) == (
        "alpha",
        "+14155550100",
        "ref",
    )
    assert record["history"] == [{"status": "accepted", "timestamp": "2026-01-01T10:00:00.000Z"}]


def test_unknown_id_is_none(store):
    assert store.get_message("nope") is None


def test_statuses_move_forward_in_order(store):
    store.save_sent(sent())
    store.apply_status(event("submitted", "2026-01-01T10:00:01Z"))
    record = store.apply_status(
        event("delivered", "2026-01-01T10:00:05Z", usage={"currency": "EUR", "price": "0.0333"})
    )
    assert (record["status"], record["status_at"]) == ("delivered", "2026-01-01T10:00:05Z")
    assert (record["price"], record["currency"]) == ("0.0333", "EUR")
    assert [h["status"] for h in record["history"]] == ["accepted", "submitted", "delivered"]
    assert store.get_message(UUID) == record


def test_a_late_submitted_never_replaces_a_final_status(store):
    store.save_sent(sent())
    store.apply_status(event("delivered", "2026-01-01T10:00:05Z"))
    record = store.apply_status(event("submitted", "2026-01-01T10:00:01Z"))
    assert record["status"] == "delivered"
    assert [h["status"] for h in record["history"]] == ["accepted", "submitted", "delivered"]


@pytest.mark.parametrize("final", ["rejected", "undeliverable"])
def test_failures_keep_their_error(store, final):
    store.save_sent(sent())
    record = store.apply_status(
        event(
            final,
            "2026-01-01T10:00:05Z",
            error={"type": "x", "title": 1250, "detail": "Unroutable"},
        )
    )
    assert record["status"] == final
    assert record["error"] == {"code": "1250", "reason": "Unroutable"}
    later = store.apply_status(event("delivered", "2026-01-01T10:00:09Z"))
    assert later["status"] == final  # the first final status stays


def test_a_late_failure_brings_no_error_to_a_delivered_message(store):
    """Found in review: the error of a `rejected` after `delivered` was kept anyway."""
    store.save_sent(sent())
    store.apply_status(event("delivered", "2026-01-01T10:00:05Z"))
    record = store.apply_status(
        event("rejected", "2026-01-01T10:00:09Z", error={"title": 1250, "detail": "Unroutable"})
    )
    assert (record["status"], record["error"]) == ("delivered", None)


def test_the_same_webhook_twice_adds_one_history_entry(store):
    store.save_sent(sent())
    store.apply_status(event("submitted", "2026-01-01T10:00:01Z"))
    record = store.apply_status(event("submitted", "2026-01-01T10:00:01Z"))
    assert [h["status"] for h in record["history"]] == ["accepted", "submitted"]


def test_webhook_for_an_unknown_message_is_kept_without_an_owner(store):
    record = store.apply_status(event("delivered", "2026-01-01T10:00:05Z", uuid="cccc"))
    assert record["status"] == "delivered"
    assert record["api_key"] is None
    assert record["to"] == "+14155550100"
    assert store.get_message("cccc")["status"] == "delivered"


def test_a_webhook_that_overtakes_the_send_keeps_its_progress(store):
    store.apply_status(event("submitted", "2026-01-01T10:00:01Z"))
    store.save_sent(sent())
    record = store.get_message(UUID)
    assert record["api_key"] == "alpha"
    assert record["status"] == "submitted"
    assert [h["status"] for h in record["history"]] == ["accepted", "submitted"]


def test_records_expire_after_the_retention(make_store):
    store = make_store(retention_s=1, clock=time.time)
    store.save_sent(sent())
    assert store.get_message(UUID) is not None
    time.sleep(1.1)
    assert store.get_message(UUID) is None


def test_the_oldest_records_go_past_the_maximum(make_store):
    clock = FakeClock()
    store = make_store(max_messages=3, clock=clock)
    for n in range(5):
        clock.now += 1
        store.save_sent(sent(uuid=f"m{n}"))
    assert [store.get_message(f"m{n}") is not None for n in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]


def test_returned_records_are_copies(store):
    store.save_sent(sent())
    record = store.get_message(UUID)
    record["history"].append({"status": "delivered", "timestamp": "x"})
    record["status"] = "delivered"
    assert store.get_message(UUID)["status"] == "accepted"
    assert len(store.get_message(UUID)["history"]) == 1


NUMBER, JAN, FEB = "+14155550100", "2026-01-01T00:00:00Z", "2026-02-02T00:00:00Z"


def test_opt_out_and_back_in(store):
    assert store.opted_out_since(NUMBER) is None
    assert store.opt_out_entry(NUMBER) is None
    assert store.opt_out(NUMBER, JAN, "api") == OptOut(JAN, "api")
    assert store.opt_out(NUMBER, FEB, "api") == OptOut(JAN, "api")  # the first date stays
    assert store.opted_out_since(NUMBER) == JAN
    assert store.opt_in(NUMBER, "api") == OptIn(OptOut(JAN, "api"), removed=True)
    assert store.opt_in(NUMBER, "api") == OptIn(None, removed=False)
    assert store.opted_out_since(NUMBER) is None


def test_an_sms_stop_is_lifted_only_by_the_recipient_or_an_override(store):
    """Issue 11, item 9: the store remembers who opted a number out."""
    assert store.opt_out(NUMBER, JAN, "sms") == OptOut(JAN, "sms")

    assert store.opt_in(NUMBER, "api") == OptIn(OptOut(JAN, "sms"), removed=False)
    assert store.opt_out_entry(NUMBER) == OptOut(JAN, "sms")
    assert store.opt_in(NUMBER, "sms") == OptIn(OptOut(JAN, "sms"), removed=True)

    store.opt_out(NUMBER, JAN, "sms")
    assert store.opt_in(NUMBER, "api", override=True).removed is True
    assert store.opt_out_entry(NUMBER) is None


def test_a_stop_makes_a_keys_opt_out_the_recipients_and_a_key_never_takes_it_back(store):
    store.opt_out(NUMBER, JAN, "api")
    assert store.opt_out(NUMBER, FEB, "sms") == OptOut(JAN, "sms")
    assert store.opt_out(NUMBER, FEB, "api") == OptOut(JAN, "sms")
    assert store.opt_in(NUMBER, "api").removed is False


def test_the_recipients_start_lifts_a_keys_opt_out(store):
    store.opt_out(NUMBER, JAN, "api")
    assert store.opt_in(NUMBER, "sms").removed is True


def test_history_follows_the_lifecycle_when_clocks_disagree(store):
    """Vonage's clock (or coarser timestamps) may put `submitted` before our `accepted`."""
    store.save_sent(sent(created_at="2026-01-01T10:00:00.500Z"))
    record = store.apply_status(event("submitted", "2026-01-01T10:00:00Z"))
    assert [h["status"] for h in record["history"]] == ["accepted", "submitted"]


def test_concurrent_receipts_are_all_kept(store):
    """Read-change-write under concurrency loses no history entry."""
    store.save_sent(sent())
    stamps = [f"2026-01-01T10:00:{n:02d}Z" for n in range(1, 21)]
    threads = [
        threading.Thread(target=store.apply_status, args=(event("submitted", stamp),))
        for stamp in stamps
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.get_message(UUID)["history"]) == 21


FINGERPRINT, OTHER = "f" * 64, "0" * 64
ANSWER = {"status": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


def test_first_request_starts_and_its_answer_replays(store):
    claim = store.begin_request("alpha:k1", FINGERPRINT, lock_s=30)
    assert claim.outcome == "started" and claim.token
    store.finish_request("alpha:k1", claim.token, ANSWER, ttl_s=60)

    replay = store.begin_request("alpha:k1", FINGERPRINT, lock_s=30)

    assert (replay.outcome, replay.response) == ("replay", ANSWER)


def test_a_kept_answer_replays_exactly(store):
    """Whatever it holds: text beyond ASCII and the BMP, slashes, numbers, no headers."""
    answer = {"status": 422, "headers": {}, "body": '{"detail": "café / 😀 €", "n": 1.5e-7}'}
    claim = store.begin_request("alpha:k1", FINGERPRINT, lock_s=30)
    store.finish_request("alpha:k1", claim.token, answer, ttl_s=60)

    assert store.begin_request("alpha:k1", FINGERPRINT, lock_s=30).response == answer


def test_same_key_while_in_flight_is_a_conflict(store):
    store.begin_request("alpha:k1", FINGERPRINT, lock_s=30)
    assert store.begin_request("alpha:k1", FINGERPRINT, lock_s=30).outcome == "conflict"


def test_same_key_other_body_is_a_mismatch(store):
    claim = store.begin_request("alpha:k1", FINGERPRINT, lock_s=30)
    assert store.begin_request("alpha:k1", OTHER, lock_s=30).outcome == "mismatch"
    store.finish_request("alpha:k1", claim.token, ANSWER, ttl_s=60)
    assert store.begin_request("alpha:k1", OTHER, lock_s=30).outcome == "mismatch"


def test_keys_are_independent(store):
    store.begin_request("alpha:k1", FINGERPRINT, lock_s=30)
    assert store.begin_request("beta:k1", FINGERPRINT, lock_s=30).outcome == "started"


def test_a_released_key_can_start_again(store):
    claim = store.begin_request("alpha:k1", FINGERPRINT, lock_s=30)
    store.release_request("alpha:k1", claim.token)
    assert store.begin_request("alpha:k1", FINGERPRINT, lock_s=30).outcome == "started"


def test_a_crashed_request_frees_its_key_after_the_lock(make_store):
    store = make_store(clock=time.time)
    store.begin_request("alpha:k1", FINGERPRINT, lock_s=1)
    time.sleep(1.1)
    assert store.begin_request("alpha:k1", FINGERPRINT, lock_s=1).outcome == "started"


def test_only_the_holder_can_finish_or_release(store):
    claim = store.begin_request("alpha:k1", FINGERPRINT, lock_s=30)
    store.finish_request("alpha:k1", "not-the-token", ANSWER, ttl_s=60)
    store.release_request("alpha:k1", "not-the-token")
    assert store.begin_request("alpha:k1", FINGERPRINT, lock_s=30).outcome == "conflict"
    store.finish_request("alpha:k1", claim.token, ANSWER, ttl_s=60)
    assert store.begin_request("alpha:k1", FINGERPRINT, lock_s=30).outcome == "replay"


def test_answers_expire_after_their_ttl(make_store):
    store = make_store(clock=time.time)
    claim = store.begin_request("alpha:k1", FINGERPRINT, lock_s=30)
    store.finish_request("alpha:k1", claim.token, ANSWER, ttl_s=1)
    time.sleep(1.1)
    assert store.begin_request("alpha:k1", FINGERPRINT, lock_s=30).outcome == "started"


def test_concurrent_begins_start_exactly_one(store):
    outcomes = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(store.begin_request("alpha:k", FINGERPRINT, 30).outcome)
        )
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 19 + ["started"]


def test_a_key_noted_at_an_address_is_known_there_for_its_ttl(make_store):
    """What lets a key pass its address's failed-key brake (app/store/admission.py)."""
    store = make_store(clock=time.time)
    store.note_key_at("2001:db8::1", "alpha", ttl_s=1)

    assert store.key_known_at("2001:db8::1", "alpha") is True
    assert store.key_known_at("2001:db8::1", "beta") is False
    assert store.key_known_at("2001:db8::2", "alpha") is False
    time.sleep(1.1)
    assert store.key_known_at("2001:db8::1", "alpha") is False


def test_a_webhook_token_is_used_once_until_it_expires(make_store):
    """Issue 11, item 10: a token id is remembered for the token's life (SET NX EX in Redis)."""
    store = make_store(clock=time.time)
    assert store.use_webhook_token("jti-1", ttl_s=1) is True
    assert store.use_webhook_token("jti-1", ttl_s=1) is False
    assert store.use_webhook_token("jti-2", ttl_s=1) is True
    time.sleep(1.1)
    assert store.use_webhook_token("jti-1", ttl_s=1) is True


def test_a_forgotten_webhook_token_can_be_used_again(store):
    assert store.use_webhook_token("jti-1", ttl_s=60) is True
    store.forget_webhook_token("jti-1")
    assert store.use_webhook_token("jti-1", ttl_s=60) is True
    assert store.use_webhook_token("jti-1", ttl_s=60) is False


def test_webhook_token_ids_in_memory_are_bounded():
    """Expired ids go first; past the bound, the oldest."""
    clock = FakeClock()
    store = MemoryStore(3600, 1000, clock, max_webhook_tokens=3)
    for n in range(5):
        store.use_webhook_token(f"old-{n}", ttl_s=10)
    assert list(store._tokens) == ["old-2", "old-3", "old-4"]
    clock.now += 11
    store.use_webhook_token("new", ttl_s=10)
    assert list(store._tokens) == ["new"]


def test_webhook_token_ids_past_the_bound_are_forgotten_oldest_first(make_bounded):
    store = make_bounded(max_messages=1000, max_webhook_tokens=3)
    for n in range(5):
        store.use_webhook_token(f"old-{n}", ttl_s=10)

    assert store.use_webhook_token("old-4", ttl_s=10) is False  # kept: a replay
    assert store.use_webhook_token("old-0", ttl_s=10) is True  # forgotten past the bound


def test_ping(store):
    assert store.ping() is True


def keep_answers(store, keys, answer=ANSWER):
    for key in keys:
        claim = store.begin_request(key, FINGERPRINT, lock_s=30)
        store.finish_request(key, claim.token, answer, ttl_s=60)


@pytest.fixture(params=["memory", "sqlite"])
def make_bounded(request, tmp_path):
    """Build a store that bounds what it keeps by itself (Redis: by its own maxmemory)."""
    from app.store.sqlite import SQLiteStore

    built = []

    def build(**bounds):
        if request.param == "memory":
            built.append(MemoryStore(3600, clock=FakeClock(), **bounds))
        else:
            built.append(SQLiteStore(str(tmp_path / "s.db"), 3600, clock=FakeClock(), **bounds))
        return built[-1]

    yield build
    for store in built:
        if hasattr(store, "close"):
            store.close()


def test_keeps_at_most_max_messages_answers(make_bounded):
    """Past the count, the oldest key is forgotten (a retry with it runs again)."""
    store = make_bounded(max_messages=3)
    keep_answers(store, [f"alpha:k{n}" for n in range(5)])

    newest = [store.begin_request(f"alpha:k{n}", FINGERPRINT, 30).outcome for n in (4, 3, 2)]

    assert newest == ["replay"] * 3
    assert store.begin_request("alpha:k0", FINGERPRINT, 30).outcome == "started"


def test_keeps_answers_up_to_a_number_of_bytes(make_bounded):
    big = {**ANSWER, "body": "x" * 2000}
    store = make_bounded(max_messages=1000, max_answer_bytes=5000)
    keep_answers(store, [f"alpha:k{n}" for n in range(5)], big)

    assert store.begin_request("alpha:k4", FINGERPRINT, 30).outcome == "replay"
    assert store.begin_request("alpha:k0", FINGERPRINT, 30).outcome == "started"


class LookCounting(OrderedDict):
    """The store's entries, counting how many of them a method looks at."""

    looked_at = 0

    def __iter__(self):
        for key in super().__iter__():
            self.looked_at += 1
            yield key

    def items(self):
        for item in super().items():
            self.looked_at += 1
            yield item


def test_memory_takes_a_new_key_past_the_bound_without_a_full_scan():
    """Under its lock, a new key looks at a few entries, not at every one it holds."""
    store = MemoryStore(3600, max_messages=1000, clock=FakeClock())
    for n in range(1000):
        store.begin_request(f"alpha:k{n}", FINGERPRINT, lock_s=30)
    store._requests = LookCounting(store._requests)

    for n in range(1000, 1010):
        assert store.begin_request(f"alpha:k{n}", FINGERPRINT, lock_s=30).outcome == "started"

    assert store._requests.looked_at <= 10 * (EXPIRED_PER_BEGIN + 2)


def test_memory_forgets_expired_answers_as_new_keys_come():
    clock = FakeClock()
    store = MemoryStore(3600, max_messages=1000, clock=clock)
    keep_answers(store, [f"alpha:k{n}" for n in range(20)])
    clock.now += 61

    keep_answers(store, [f"beta:k{n}" for n in range(5)])

    assert len(store._requests) == 5


def test_an_opt_out_kept_before_sources_is_readable_and_counts_as_the_recipients(redis_url):
    """Redis entries written before `optout-sources` existed: number -> since, no source."""
    from app.store.redis_store import RedisStore, connect

    client = connect(redis_url)
    client.hset("sms:optouts", NUMBER, JAN)  # as the previous version wrote it
    store = RedisStore(client, 3600, 1000)

    assert store.opted_out_since(NUMBER) == JAN
    assert store.opt_out_entry(NUMBER) == OptOut(JAN, None)
    assert store.opt_out(NUMBER, FEB, "api") == OptOut(JAN, None)  # a key does not claim it
    assert store.opt_in(NUMBER, "api") == OptIn(OptOut(JAN, None), removed=False)
    assert store.opt_in(NUMBER, "sms").removed is True
    client.close()
