"""Every admission implementation behaves the same: one contract, run against each of them.

Counters are read back through limits' own strategy over the same storage, so these
tests also hold RedisAdmission's script to limits' key schema and moving window.
"""

import dataclasses
import threading
import time
import types

import pytest
from limits import parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.storage import memory as limits_memory
from limits.strategies import MovingWindowRateLimiter

from app.store.admission import (
    API_KEY,
    BUDGET,
    FAILED_AUTH,
    KNOWN_KEY_S,
    RECIPIENT,
    IdempotencyTicket,
    LimitItems,
    StepwiseAdmission,
    Ticket,
    recipient_key,
)
from app.store.contract import StorageUnavailable
from app.store.memory import MemoryStore

IP, NUMBER = "203.0.113.9", "+14155550100"
FINGERPRINT, OTHER = "f" * 64, "0" * 64
ANSWER = {"status": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


@dataclasses.dataclass
class Harness:
    """An admission, with the store and the limits strategy that see the same state."""

    admission: object
    store: object
    strategy: MovingWindowRateLimiter
    limits: LimitItems

    def remaining(self, kind: str, scope: str, key: str, index: int = 0) -> int:
        item = getattr(self.limits, kind)[index]
        return self.strategy.get_window_stats(item, scope, key).remaining


class FakeClock:
    """A clock the test moves; its start is whole seconds, which Redis keeps exactly."""

    def __init__(self):
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.slow)])
def make(request):
    """Build an admission of each kind with these limits (flask-limiter syntax), on the real
    clock or on a FakeClock: limits' memory storage reads it, or RedisAdmission is given it."""
    closing = []

    def build(
        failed_auth="3 per minute",
        per_key="2 per minute",
        per_recipient="2 per minute",
        known_key_s=KNOWN_KEY_S,
        segment_budget="",
        clock=None,
    ):
        limits = LimitItems(
            parse_many(failed_auth),
            parse_many(per_key),
            parse_many(per_recipient),
            known_key_s,
            parse_many(segment_budget) if segment_budget else (),
        )
        if request.param == "memory":
            if clock is not None:
                fake = types.SimpleNamespace(time=clock)
                request.getfixturevalue("monkeypatch").setattr(limits_memory, "time", fake)
            strategy = MovingWindowRateLimiter(MemoryStorage())
            store = MemoryStore(3600, 1000)
            return Harness(StepwiseAdmission(strategy, store, limits), store, strategy, limits)
        from app.store.redis_admission import RedisAdmission
        from app.store.redis_store import RedisStore, connect

        url = request.getfixturevalue("redis_url")
        storage = RedisStorage(url)
        store = RedisStore(connect(url), 3600, 1000)
        closing.extend([storage.storage, store.redis])
        admission = RedisAdmission(store.redis, limits, storage.prefixed_key, clock or time.time)
        return Harness(admission, store, MovingWindowRateLimiter(storage), limits)

    yield build
    for client in closing:
        client.close()


def ticket(**changes) -> Ticket:
    return dataclasses.replace(
        Ticket(client_ip=IP, api_key="alpha", stop_after="recipient-limit", recipient=NUMBER),
        **changes,
    )


def idempotent(fingerprint=FINGERPRINT) -> Ticket:
    return ticket(idempotency=IdempotencyTicket("alpha:k1", fingerprint, 30))


def test_a_send_passes_and_counts_the_key_and_the_recipient(make):
    h = make()
    verdict = h.admission.admit(ticket())

    assert verdict.refused_by is None
    assert (verdict.window.item, verdict.window.stats.remaining) == (h.limits.per_key[0], 1)
    assert 58 < verdict.window.stats.reset_time - time.time() <= 60
    assert verdict.claim is None
    assert h.remaining("per_key", API_KEY, "alpha") == 1
    assert h.remaining("per_recipient", RECIPIENT, recipient_key(NUMBER)) == 1
    assert h.remaining("failed_auth", FAILED_AUTH, IP) == 3


def test_a_wrong_key_counts_one_failure_against_the_ip_and_nothing_else(make):
    h = make()
    verdict = h.admission.admit(ticket(api_key=None))

    assert (verdict.refused_by, verdict.window, verdict.claim) == ("api-key", None, None)
    assert h.remaining("failed_auth", FAILED_AUTH, IP) == 2
    assert h.remaining("per_recipient", RECIPIENT, recipient_key(NUMBER)) == 2


def test_the_brake_refuses_a_right_key_once_failures_are_spent(make):
    h = make()
    for _ in range(3):
        assert h.admission.admit(ticket(api_key=None)).refused_by == "api-key"

    for api_key in ("alpha", None):  # the same answer, whatever the key
        verdict = h.admission.admit(ticket(api_key=api_key))
        assert verdict.refused_by == "failed-auth"
        assert (verdict.window.item, verdict.window.stats.remaining) == (h.limits.failed_auth[0], 0)
        assert 0 < verdict.window.stats.reset_time - time.time() <= 60
    assert h.remaining("per_key", API_KEY, "alpha") == 2
    assert h.admission.admit(ticket(client_ip="198.51.100.7")).refused_by is None


def test_a_key_that_succeeded_from_the_address_passes_its_brake(make):
    """A braked NAT keeps serving the callers already on it; any other key, right or wrong,
    gets the same refusal, and a key known at another address does not help here."""
    h = make()
    assert h.admission.admit(ticket()).refused_by is None
    elsewhere = ticket(api_key="beta", client_ip="198.51.100.7", stop_after="api-key")
    assert h.admission.admit(elsewhere).refused_by is None
    for _ in range(3):
        assert h.admission.admit(ticket(api_key=None)).refused_by == "api-key"

    assert h.admission.admit(ticket()).refused_by is None
    assert h.admission.admit(ticket(stop_after="api-key", recipient=None)).refused_by is None
    for api_key in ("beta", None):
        verdict = h.admission.admit(ticket(api_key=api_key))
        assert (verdict.refused_by, verdict.window.stats.remaining) == ("failed-auth", 0)
    assert h.remaining("failed_auth", FAILED_AUTH, IP) == 0  # refusals while braked: not counted


def test_a_key_passes_the_brake_only_for_a_while_after_its_success(make):
    h = make(known_key_s=1)
    assert h.admission.admit(ticket()).refused_by is None
    for _ in range(3):
        h.admission.admit(ticket(api_key=None))
    time.sleep(1.1)

    assert h.admission.admit(ticket()).refused_by == "failed-auth"


def test_the_brake_reads_the_failures_limits_counted(make):
    """The other routes count failed keys through limits' strategy: one counter for both."""
    h = make()
    for _ in range(3):
        h.strategy.hit(h.limits.failed_auth[0], FAILED_AUTH, IP)
    assert h.admission.admit(ticket()).refused_by == "failed-auth"


def test_stopping_after_the_key_counts_nothing_more(make):
    """A malformed Idempotency-Key is refused next: no limit is spent on it."""
    h = make()
    verdict = h.admission.admit(ticket(stop_after="api-key", recipient=None))

    assert (verdict.refused_by, verdict.window) == (None, None)
    assert h.remaining("per_key", API_KEY, "alpha") == 2


def test_stopping_after_the_key_limit_leaves_opt_outs_and_the_recipient_alone(make):
    """An invalid body is refused next: it costs the key's limit, not the recipient's."""
    h = make()
    h.store.opt_out(NUMBER, "2026-01-01T00:00:00Z", "api")
    verdict = h.admission.admit(ticket(stop_after="key-limit", recipient=None))

    assert verdict.refused_by is None
    assert verdict.window.stats.remaining == 1
    assert h.remaining("per_recipient", RECIPIENT, recipient_key(NUMBER)) == 2


def test_the_key_limit_refuses_with_its_window(make):
    h = make()
    for number in ("+442071838750", "+442071838751"):
        assert h.admission.admit(ticket(recipient=number)).refused_by is None

    verdict = h.admission.admit(ticket())

    assert verdict.refused_by == "key-limit"
    assert (verdict.window.item, verdict.window.stats.remaining) == (h.limits.per_key[0], 0)
    assert 0 < verdict.window.stats.reset_time - time.time() <= 60
    assert h.remaining("per_recipient", RECIPIENT, recipient_key(NUMBER)) == 2
    assert h.admission.admit(ticket(api_key="beta")).refused_by is None


def test_several_key_limits_count_in_order_and_the_tightest_is_shown(make):
    h = make(per_key="100 per minute;1 per second", per_recipient="100 per minute")
    first = h.admission.admit(ticket())
    assert (first.window.item, first.window.stats.remaining) == (h.limits.per_key[1], 0)

    second = h.admission.admit(ticket())

    assert (second.refused_by, second.window.item) == ("key-limit", h.limits.per_key[1])
    assert h.remaining("per_key", API_KEY, "alpha", index=0) == 98  # counted before the refusal


def test_an_opted_out_recipient_is_refused_before_its_limit(make):
    h = make()
    h.store.opt_out(NUMBER, "2026-01-01T00:00:00Z", "api")
    verdict = h.admission.admit(ticket())

    assert (verdict.refused_by, verdict.opted_out_since) == ("opt-out", "2026-01-01T00:00:00Z")
    assert (verdict.window.item, verdict.window.stats.remaining) == (h.limits.per_key[0], 1)
    assert h.remaining("per_recipient", RECIPIENT, recipient_key(NUMBER)) == 2


def test_the_recipient_limit_holds_across_keys(make):
    h = make(per_key="100 per minute")
    assert h.admission.admit(ticket(api_key="alpha")).refused_by is None
    assert h.admission.admit(ticket(api_key="beta")).refused_by is None

    verdict = h.admission.admit(ticket(api_key="alpha"))

    assert verdict.refused_by == "recipient-limit"
    assert (verdict.window.item, verdict.window.stats.remaining) == (h.limits.per_recipient[0], 0)
    assert h.admission.admit(ticket(recipient="+442071838750")).refused_by is None


def test_the_idempotency_key_is_taken_before_the_key_limit(make):
    h = make()
    first = h.admission.admit(idempotent())
    assert first.refused_by is None
    assert first.claim.outcome == "started" and first.claim.token

    assert h.admission.admit(idempotent()).claim.outcome == "conflict"
    h.store.finish_request("alpha:k1", first.claim.token, ANSWER, ttl_s=60)
    replay = h.admission.admit(idempotent())
    mismatch = h.admission.admit(idempotent(OTHER))

    assert (replay.refused_by, replay.claim.outcome, replay.claim.response) == (
        "idempotency",
        "replay",
        ANSWER,
    )
    assert (mismatch.refused_by, mismatch.claim.outcome) == ("idempotency", "mismatch")
    assert h.remaining("per_key", API_KEY, "alpha") == 1  # only the first was counted


def test_a_claim_refused_by_a_limit_is_handed_back_for_release(make):
    h = make(per_key="1 per minute")
    assert h.admission.admit(ticket()).refused_by is None
    verdict = h.admission.admit(idempotent())

    assert (verdict.refused_by, verdict.claim.outcome) == ("key-limit", "started")
    h.store.release_request("alpha:k1", verdict.claim.token)
    assert h.store.begin_request("alpha:k1", FINGERPRINT, 30).outcome == "started"


def test_the_brake_comes_before_the_idempotency_key(make):
    h = make(failed_auth="1 per minute")
    h.admission.admit(ticket(api_key=None))
    verdict = h.admission.admit(idempotent())

    assert (verdict.refused_by, verdict.claim) == ("failed-auth", None)
    assert h.store.begin_request("alpha:k1", FINGERPRINT, 30).outcome == "started"


def test_concurrent_sends_pass_exactly_the_limit(make):
    h = make(per_key="5 per minute", per_recipient="100 per minute")
    refusals = admit_at_once(h, ticket(), 20)
    assert refusals == ["None"] * 5 + ["key-limit"] * 15


def admit_at_once(h, one: Ticket, times: int) -> list[str]:
    """Admit the ticket from `times` threads at once; return why each was refused, sorted."""
    verdicts = []
    threads = [
        threading.Thread(target=lambda: verdicts.append(h.admission.admit(one)))
        for _ in range(times)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(str(verdict.refused_by) for verdict in verdicts)


# --- the segment budget: hits that cost the text's segments ----------------------------------

BUDGET_LIMITS = {"per_key": "100 per minute", "per_recipient": "100 per minute"}


def spend(h, *segments: int) -> list:
    """Admit one send per text of these segments; return why each was refused (None: sent)."""
    return [h.admission.admit(ticket(segments=n)).refused_by for n in segments]


@pytest.mark.parametrize(
    ("sent", "refused"),
    [
        pytest.param((6,), 1, id="6 then 1"),
        pytest.param((3, 3), 1, id="3+3 then 1"),
        pytest.param((1,) * 6, 1, id="six 1s then 1"),
        pytest.param((3, 1), 3, id="3+1 then 3: 2 left are too few"),
    ],
)
def test_the_budget_counts_segments_and_refuses_a_text_that_does_not_fit(make, sent, refused):
    h = make(segment_budget="6 per day", **BUDGET_LIMITS)
    assert spend(h, *sent) == [None] * len(sent)

    verdict = h.admission.admit(ticket(segments=refused))

    left = 6 - sum(sent)
    assert verdict.refused_by == "budget"
    assert (verdict.window.item, verdict.window.stats.remaining) == (
        h.limits.segment_budget[0],
        left,
    )
    assert 86390 < verdict.window.stats.reset_time - time.time() <= 86400
    assert h.remaining("segment_budget", BUDGET, "alpha") == left
    assert h.admission.admit(ticket(api_key="beta", segments=6)).refused_by is None  # per key


def test_a_send_refused_for_its_budget_spends_no_other_limit(make):
    h = make(segment_budget="6 per day", **BUDGET_LIMITS)
    assert spend(h, 6) == [None]

    assert spend(h, 1, 1) == ["budget", "budget"]

    assert h.remaining("per_key", API_KEY, "alpha") == 99
    assert h.remaining("per_recipient", RECIPIENT, recipient_key(NUMBER)) == 99


@pytest.mark.parametrize("refusal", ["key-limit", "opt-out", "recipient-limit"])
def test_a_send_refused_by_another_gate_spends_no_budget(make, refusal):
    h = make(segment_budget="6 per day", per_key="1 per minute", per_recipient="1 per minute")
    if refusal == "opt-out":
        h.store.opt_out(NUMBER, "2026-01-01T00:00:00Z", "api")
    else:  # the other key spends the recipient's limit; this key spends its own elsewhere
        spent = "beta" if refusal == "recipient-limit" else "alpha"
        other = "+442071838750" if refusal == "key-limit" else NUMBER
        assert h.admission.admit(ticket(api_key=spent, recipient=other)).refused_by is None
    budget_before = h.remaining("segment_budget", BUDGET, "alpha")

    assert h.admission.admit(ticket(segments=3)).refused_by == refusal
    assert h.remaining("segment_budget", BUDGET, "alpha") == budget_before


def test_an_invalid_body_spends_and_tests_no_budget(make):
    """Stopped after the key's limit (the body is refused next): its cost is unknown."""
    h = make(segment_budget="6 per day", **BUDGET_LIMITS)
    assert spend(h, 6) == [None]

    verdict = h.admission.admit(ticket(stop_after="key-limit", recipient=None))

    assert verdict.refused_by is None
    assert h.remaining("segment_budget", BUDGET, "alpha") == 0


def test_the_tightest_window_is_shown_budget_or_request_limit(make):
    """The window with the fewest left, in its own units: segments for the budget."""
    h = make(segment_budget="10 per day", per_key="5 per minute", per_recipient="100 per minute")
    first = h.admission.admit(ticket(segments=3))
    assert (first.window.item, first.window.stats.remaining) == (h.limits.per_key[0], 4)

    second = h.admission.admit(ticket(segments=6))  # 1 segment left, 3 requests

    assert (second.window.item, second.window.stats.remaining) == (h.limits.segment_budget[0], 1)
    assert 86390 < second.window.stats.reset_time - time.time() <= 86400


def test_a_replay_costs_no_budget(make):
    h = make(segment_budget="6 per day", **BUDGET_LIMITS)
    first = h.admission.admit(dataclasses.replace(idempotent(), segments=6))
    h.store.finish_request("alpha:k1", first.claim.token, ANSWER, ttl_s=60)

    replay = h.admission.admit(dataclasses.replace(idempotent(), segments=6))

    assert (replay.refused_by, replay.claim.outcome) == ("idempotency", "replay")
    assert h.remaining("segment_budget", BUDGET, "alpha") == 0  # the first send's 6 only


def test_a_claim_refused_for_its_budget_is_handed_back_for_release(make):
    h = make(segment_budget="6 per day", **BUDGET_LIMITS)
    assert spend(h, 6) == [None]
    verdict = h.admission.admit(idempotent())

    assert (verdict.refused_by, verdict.claim.outcome) == ("budget", "started")
    h.store.release_request("alpha:k1", verdict.claim.token)
    assert h.store.begin_request("alpha:k1", FINGERPRINT, 30).outcome == "started"


def test_the_budget_comes_back_when_its_window_passes(make):
    """On a fake clock: refused an hour after the first send, until a day after it."""
    clock = FakeClock()
    h = make(segment_budget="6 per day", clock=clock, **BUDGET_LIMITS)
    start = clock.now
    assert spend(h, 3, 3) == [None, None]

    clock.now = start + 3600
    refused = h.admission.admit(ticket(segments=1))
    assert refused.refused_by == "budget"
    assert refused.window.stats.reset_time == pytest.approx(start + 86400)
    clock.now = start + 86399
    assert spend(h, 1) == ["budget"]

    clock.now = start + 86401
    assert spend(h, 6, 1) == [None, "budget"]


def test_concurrent_sends_pass_exactly_the_budget(make):
    h = make(segment_budget="6 per minute", **BUDGET_LIMITS)
    refusals = admit_at_once(h, ticket(segments=3), 12)
    assert refusals == ["None"] * 2 + ["budget"] * 10
    assert h.remaining("segment_budget", BUDGET, "alpha") == 0


def test_redis_admission_fails_closed(redis_server):
    """Redis out of reach: StorageUnavailable (503), never a verdict."""
    from app.store.redis_admission import RedisAdmission
    from app.store.redis_store import connect
    from tools.stack import free_port

    client = connect(f"redis://127.0.0.1:{free_port()}/0")
    limits = LimitItems(parse_many("1 per minute"), parse_many("1 per minute"), [])
    admission = RedisAdmission(client, limits, lambda key: "LIMITS:" + key)
    with pytest.raises(StorageUnavailable):
        admission.admit(ticket())
    client.close()
