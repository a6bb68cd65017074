"""Every store implementation behaves the same: one contract, run against each of them."""

import pytest

from app.records import parse_status_webhook, sent_record
from app.store import MemoryStore
from tests.webhook_signing import status_body

UUID = "bbbbbbbb-0000-4000-8000-000000000001"
SUMMARY = {"to": "+14155550100", "from": "+447700900000", "encoding": "GSM-7", "segments": 1}


class FakeClock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture(params=["memory"])
def make_store(request):
    """Build a store of each kind with a retention, a size bound and a clock."""

    def build(retention_s=3600, max_messages=1000, clock=None):
        return MemoryStore(retention_s, max_messages, clock or FakeClock())

    return build


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
    clock = FakeClock()
    store = make_store(retention_s=60, clock=clock)
    store.save_sent(sent())
    clock.now += 59
    assert store.get_message(UUID) is not None
    clock.now += 2
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


def test_opt_out_and_back_in(store):
    number = "+14155550100"
    assert store.opted_out_since(number) is None
    assert store.opt_out(number, "2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
    assert store.opt_out(number, "2026-02-02T00:00:00Z") == "2026-01-01T00:00:00Z"  # kept
    assert store.opted_out_since(number) == "2026-01-01T00:00:00Z"
    assert store.opt_in(number) is True
    assert store.opt_in(number) is False
    assert store.opted_out_since(number) is None


def test_history_follows_the_lifecycle_when_clocks_disagree(store):
    """Vonage's clock (or coarser timestamps) may put `submitted` before our `accepted`."""
    store.save_sent(sent(created_at="2026-01-01T10:00:00.500Z"))
    record = store.apply_status(event("submitted", "2026-01-01T10:00:00Z"))
    assert [h["status"] for h in record["history"]] == ["accepted", "submitted"]
