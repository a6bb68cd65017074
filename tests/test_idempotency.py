"""Idempotency-Key: a retried request replays the first answer and never sends twice."""

import hashlib
import json

import pytest
import requests

from app.store import get_store
from app.web.idempotency import MAX_KEPT_BODY, fingerprint, kept_answer
from app.web.problems import InvalidPayload, problem_response
from app.web.request_context import request_state
from tests.conftest import AUTH, AUTH_B, UUID, VALID_BODY, VONAGE_SMS_URL


def send(client, key="order-1", body=None, headers=AUTH):
    extra = {} if key is None else {"Idempotency-Key": key}
    return client.post("/send-sms", json=body or VALID_BODY, headers={**headers, **extra})


def test_same_key_same_body_replays_without_calling_vonage(client, accept):
    first = send(client)
    second = send(client)

    assert first.status_code == second.status_code == 200
    assert second.json == first.json
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.mimetype == "application/json"
    assert len(accept.calls) == 1


def test_the_body_fingerprint_ignores_spacing_and_key_order(client, accept):
    send(client)
    reordered = json.dumps({"text": VALID_BODY["text"], "to": VALID_BODY["to"]}, indent=2)
    response = client.post(
        "/send-sms",
        data=reordered,
        headers={**AUTH, "Idempotency-Key": "order-1", "Content-Type": "application/json"},
    )
    assert response.headers.get("Idempotent-Replayed") == "true"


def test_same_key_different_body_is_refused(client, accept):
    send(client)
    response = send(client, body={**VALID_BODY, "text": "something else"})
    assert response.status_code == 422
    assert response.json["type"].endswith("/idempotency-key-reused")
    assert len(accept.calls) == 1


def test_keys_are_scoped_per_api_key(client, vonage):
    for _ in range(2):
        vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    assert send(client).status_code == 200
    other = send(client, headers=AUTH_B)
    assert other.status_code == 200
    assert "Idempotent-Replayed" not in other.headers
    assert len(vonage.calls) == 2


def test_in_flight_key_is_a_409_with_retry_after(app, client):
    store = get_store(app)
    scope_key = "alpha:" + hashlib.sha256(b"order-1").hexdigest()
    store.begin_request(scope_key, fingerprint(json.dumps(VALID_BODY).encode()), 30)

    response = send(client)

    assert response.status_code == 409
    assert response.json["type"].endswith("/idempotency-conflict")
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve-key", "tab\there"])
def test_malformed_keys_are_a_400(client, key):
    response = send(client, key=key)
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "Idempotency-Key"


def test_longest_key_is_accepted(client, accept):
    assert send(client, key="k" * 255).status_code == 200


@pytest.mark.parametrize(
    ("stub", "status"),
    [
        ({"json": {"title": "Invalid recipient", "detail": "bad"}, "status": 422}, 422),
        ({"body": requests.ReadTimeout("slow")}, 504),
        ({"json": {"title": "Internal Error"}, "status": 500}, 502),
    ],
)
def test_rejections_and_unknown_outcomes_are_replayed(client, vonage, stub, status):
    """A replay must not risk a second SMS: 4xx, 502 and 504 answers are kept."""
    vonage.post(VONAGE_SMS_URL, **stub)
    first = send(client)
    second = send(client)
    assert first.status_code == second.status_code == status
    assert second.get_data() == first.get_data()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.mimetype == "application/problem+json"
    assert len(vonage.calls) == 1


def test_validation_errors_are_replayed(client):
    body = {**VALID_BODY, "ttl": 1}
    assert send(client, body=body).status_code == 400
    assert send(client, body=body).headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize(
    ("failure", "attempts", "status"),
    [
        ({"json": {"title": "Unavailable"}, "status": 503}, 3, 503),
        ({"json": {"title": "Low balance"}, "status": 402}, 1, 502),
    ],
)
def test_answers_that_prove_nothing_was_sent_are_not_kept(
    client, vonage, failure, attempts, status
):
    for _ in range(attempts):
        vonage.post(VONAGE_SMS_URL, **failure)
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    assert send(client).status_code == status

    second = send(client)

    assert second.status_code == 200
    assert "Idempotent-Replayed" not in second.headers


def test_rate_limited_answer_is_not_kept_and_replays_cost_nothing(make_app, settings, vonage):
    client = make_app(settings, rate_limit="1 per minute").test_client()
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    assert send(client, key="a").status_code == 200
    assert send(client, key="a").headers["Idempotent-Replayed"] == "true"  # free
    assert send(client, key="b").status_code == 429
    assert send(client, key="b").status_code == 429  # not kept: still counted, still refused


def test_without_a_key_every_request_sends(client, vonage):
    for _ in range(2):
        vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    send(client, key=None)
    send(client, key=None)
    assert len(vonage.calls) == 2


def test_answers_kept_in_memory_are_bounded_by_count(make_app, settings):
    """New keys past MAX_MESSAGES forget the oldest answers: memory stays bounded."""
    client = make_app(settings, max_messages=5, rate_limit="100 per minute").test_client()
    junk = {"to": "nope", "text": "hi"}
    for n in range(20):
        assert send(client, key=f"k{n}", body=junk).status_code == 400

    assert send(client, key="k19", body=junk).headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in send(client, key="k0", body=junk).headers


def test_a_kept_answer_is_at_most_4_kib(app):
    """An answer larger than the ceiling (none of ours is) keeps its short fields: a problem
    keeps its type, status and request_id, and loses its `errors` list."""
    problem = InvalidPayload({f"field-{n}": "m" * 50 for n in range(200)})
    with app.test_request_context():
        request_state().request_id = "r1"
        kept = kept_answer(problem_response(problem))

    body = json.loads(kept["body"])
    assert len(kept["body"].encode()) <= MAX_KEPT_BODY
    assert (kept["status"], body["status"], body["request_id"]) == (400, 400, "r1")
    assert body["type"].endswith("/validation-error")
    assert "errors" not in body
    assert kept["headers"] == {"Content-Type": "application/problem+json"}
