"""SEGMENT_BUDGET on POST /send-sms: a per-key budget counted in segments, not requests.

Both admissions keep the budget's rules (tests/test_admission_contract.py); these tests hold
the HTTP answer to them: 429 budget-exhausted with Retry-After, nothing sent, nothing else
spent, and the RateLimit headers of whichever limit is tightest.
"""

import types

import pytest
from limits.storage import memory as limits_memory

from app.store import limit_storage
from app.store.admission import API_KEY, BUDGET, RECIPIENT, recipient_key
from app.web import rate_limits
from app.web.rate_limits import get_rate_limits
from tests.conftest import AUTH, AUTH_B, UUID, VALID_BODY, VONAGE_SMS_URL

# GSM-7 texts of 1, 3 and 6 segments (153 characters a segment once a text is split).
TEXTS = {1: "hi", 3: "a" * (153 * 2 + 1), 6: "a" * (153 * 5 + 1)}
DAY = 86400


def body(segments: int) -> dict:
    return {**VALID_BODY, "text": TEXTS[segments]}


@pytest.fixture
def budget_app(make_app, settings):
    """The service with a budget of 6 segments a day; the request limits stay wide."""
    return make_app(
        settings,
        segment_budget="6 per day",
        rate_limit="100 per minute",
        recipient_rate_limit="100 per minute",
    )


@pytest.fixture
def clock(monkeypatch):
    """A fake clock for the limits' memory storage and the answer's Retry-After."""
    fake = types.SimpleNamespace(now=1_800_000_000.0)
    fake.time = lambda: fake.now
    for module in (limits_memory, limit_storage, rate_limits):
        monkeypatch.setattr(module, "time", fake)
    return fake


def accept(vonage, times: int) -> None:
    for _ in range(times):
        vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)


@pytest.mark.parametrize(
    "sent",
    [pytest.param((6,), id="6 then 1"), pytest.param((3, 3), id="3+3 then 1")],
)
def test_a_spent_budget_refuses_the_next_text_and_sends_nothing(budget_app, vonage, sent):
    client = budget_app.test_client()
    accept(vonage, len(sent))
    for segments in sent:
        response = client.post("/send-sms", json=body(segments), headers=AUTH)
        assert (response.status_code, response.json["segments"]) == (200, segments)

    refused = client.post("/send-sms", json=body(1), headers=AUTH)

    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert refused.json["type"].endswith("/budget-exhausted")
    assert DAY - 10 <= int(refused.headers["Retry-After"]) <= DAY
    assert len(vonage.calls) == len(sent)  # the refused text never reached Vonage


def test_a_text_longer_than_what_is_left_is_refused(budget_app, vonage):
    """3 segments left, a 6-segment text: refused, and the 3 are still there for a shorter one."""
    client = budget_app.test_client()
    accept(vonage, 2)
    assert client.post("/send-sms", json=body(3), headers=AUTH).status_code == 200

    refused = client.post("/send-sms", json=body(6), headers=AUTH)

    assert (refused.status_code, refused.headers["RateLimit-Remaining"]) == (429, "3")
    assert client.post("/send-sms", json=body(3), headers=AUTH).status_code == 200
    assert len(vonage.calls) == 2


def test_a_refusal_for_the_budget_spends_no_other_limit(budget_app, vonage):
    client = budget_app.test_client()
    accept(vonage, 1)
    assert client.post("/send-sms", json=body(6), headers=AUTH).status_code == 200

    for _ in range(3):
        assert client.post("/send-sms", json=body(1), headers=AUTH).status_code == 429

    limits = get_rate_limits(budget_app)
    stats = limits.strategy.get_window_stats
    assert stats(limits.items.per_key[0], API_KEY, "alpha").remaining == 99
    counter = recipient_key(VALID_BODY["to"])
    assert stats(limits.items.per_recipient[0], RECIPIENT, counter).remaining == 99
    assert stats(limits.items.segment_budget[0], BUDGET, "alpha").remaining == 0


def test_the_budget_is_per_key(budget_app, vonage):
    client = budget_app.test_client()
    accept(vonage, 2)
    assert client.post("/send-sms", json=body(6), headers=AUTH).status_code == 200
    assert client.post("/send-sms", json=body(6), headers=AUTH_B).status_code == 200


def test_retry_after_is_the_windows_end_and_the_budget_comes_back(budget_app, vonage, clock):
    """On a fake clock: 3+3 at the start, refused an hour later with Retry-After: the rest
    of the day; a day after the first send, the whole budget is back."""
    client = budget_app.test_client()
    accept(vonage, 3)
    start = clock.now
    assert client.post("/send-sms", json=body(3), headers=AUTH).status_code == 200
    clock.now = start + 60
    assert client.post("/send-sms", json=body(3), headers=AUTH).status_code == 200

    clock.now = start + 3600
    refused = client.post("/send-sms", json=body(1), headers=AUTH)
    assert refused.headers["Retry-After"] == str(DAY - 3600)
    assert refused.headers["RateLimit-Reset"] == str(DAY - 3600)
    clock.now = start + DAY - 1
    assert client.post("/send-sms", json=body(1), headers=AUTH).status_code == 429

    clock.now = start + DAY + 1  # the first 3 segments have left the window
    assert client.post("/send-sms", json=body(6), headers=AUTH).status_code == 429
    assert client.post("/send-sms", json=body(3), headers=AUTH).status_code == 200
    assert len(vonage.calls) == 3


def test_the_headers_show_the_budget_when_it_is_the_tightest(make_app, settings, vonage):
    app = make_app(settings, segment_budget="10 per day", rate_limit="5 per minute")
    client = app.test_client()
    accept(vonage, 2)

    first = client.post("/send-sms", json=body(3), headers=AUTH)  # 4 requests, 7 segments left
    second = client.post("/send-sms", json=body(6), headers=AUTH)  # 3 requests, 1 segment left

    assert [first.headers[f"RateLimit-{name}"] for name in ("Limit", "Remaining")] == ["5", "4"]
    assert [second.headers[f"RateLimit-{name}"] for name in ("Limit", "Remaining")] == ["10", "1"]
    assert DAY - 10 <= int(second.headers["RateLimit-Reset"]) <= DAY


def test_a_replay_costs_no_budget(make_app, settings, vonage):
    client = make_app(settings, segment_budget="12 per day").test_client()
    accept(vonage, 2)
    headers = {**AUTH, "Idempotency-Key": "order-1"}
    assert client.post("/send-sms", json=body(6), headers=headers).status_code == 200

    replay = client.post("/send-sms", json=body(6), headers=headers)

    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (200, "true")
    assert client.post("/send-sms", json=body(6), headers=AUTH).status_code == 200
    assert len(vonage.calls) == 2


def test_a_budget_refusal_is_not_kept_under_the_idempotency_key(budget_app, vonage, clock):
    """A retry with the same key once the window has passed sends."""
    client = budget_app.test_client()
    accept(vonage, 2)
    assert client.post("/send-sms", json=body(6), headers=AUTH).status_code == 200
    headers = {**AUTH, "Idempotency-Key": "order-2"}
    assert client.post("/send-sms", json=body(1), headers=headers).status_code == 429

    clock.now += DAY + 1
    retried = client.post("/send-sms", json=body(1), headers=headers)

    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers


def test_without_a_budget_long_texts_cost_only_requests(client, vonage):
    accept(vonage, 3)
    for _ in range(3):
        assert client.post("/send-sms", json=body(6), headers=AUTH).status_code == 200
