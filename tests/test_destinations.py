"""Destination permissions: ALLOWED_COUNTRIES and ALLOWED_NUMBER_TYPES refuse a send with
422 destination-not-allowed, naming the country or the type, before any limit is counted and
before anything reaches Vonage."""

from __future__ import annotations

import json

import phonenumbers
import pytest

from app.domain.destinations import destination_of
from app.settings import Settings
from app.store.admission import RECIPIENT, recipient_key
from app.web.rate_limits import get_rate_limits
from tests.conftest import AUTH, VALID_BODY

# Replaces the default types (premium-rate allowed, fixed-line and toll-free refused) and
# keeps two countries, written in mixed case.
RESTRICTED = {
    "ALLOWED_COUNTRIES": "gb, US",
    "ALLOWED_NUMBER_TYPES": "Mobile, fixed-line-or-mobile, premium-rate",
}
OK = None  # the send goes out
COUNTRY_FIRST = "FR"  # a refused country is named before a refused type
# (number, its region and type as phonenumbers says, answer by default, answer RESTRICTED):
# an answer is OK, or what the refusal's detail names. The numbers are phonenumbers' own
# examples (example_number_for_type), and the premium-rate one.
DESTINATIONS = [
    ("+447400123456", "GB", "mobile", OK, OK),
    ("+441212345678", "GB", "fixed-line", OK, "numbers of type fixed-line"),
    ("+449098790000", "GB", "premium-rate", "numbers of type premium-rate", OK),
    ("+448001234567", "GB", "toll-free", OK, "numbers of type toll-free"),
    ("+445612345678", "GB", "voip", OK, "numbers of type voip"),
    ("+447012345678", "GB", "personal-number", OK, "numbers of type personal-number"),
    ("+447640123456", "GB", "pager", "numbers of type pager", "numbers of type pager"),
    ("+445512345678", "GB", "uan", "numbers of type uan", "numbers of type uan"),
    ("+447797712345", "JE", "mobile", OK, "JE"),
    ("+14155550100", "US", "fixed-line-or-mobile", OK, OK),
    ("+18002345678", "US", "toll-free", OK, "numbers of type toll-free"),
    ("+19002345678", "US", "premium-rate", "numbers of type premium-rate", OK),
    ("+15062345678", "CA", "fixed-line-or-mobile", OK, "CA"),
    ("+33612345678", "FR", "mobile", OK, "FR"),
    ("+33884012345", "FR", "shared-cost", "numbers of type shared-cost", COUNTRY_FIRST),
    ("+49177991234567", "DE", "voicemail", "numbers of type voicemail", "DE"),
    ("+80012345678", "001", "toll-free", OK, "non-geographic numbers (+800)"),
]
CASES = [
    pytest.param(number, env, answer, id=f"{number}-{label}")
    for number, _, _, default, restricted in DESTINATIONS
    for label, env, answer in (("default", {}, default), ("restricted", RESTRICTED, restricted))
]


@pytest.fixture
def settings_for(test_env):
    return lambda env: Settings.from_environ({**test_env, **env})


@pytest.mark.parametrize(("number", "region", "number_type"), [d[:3] for d in DESTINATIONS])
def test_the_table_labels_each_number_as_phonenumbers_does(number, region, number_type):
    """The table below is honest: each number is valid, in the region and of the type it says."""
    parsed = phonenumbers.parse(number)
    destination = destination_of(parsed)

    assert phonenumbers.is_valid_number(parsed)
    assert (destination.region, destination.number_type) == (region, number_type)


@pytest.mark.parametrize(("number", "env", "answer"), CASES)
def test_each_destination_gets_its_answer(make_app, settings_for, vonage, number, env, answer):
    """An allowed destination is sent; a refused one is a 422 naming the country or the type,
    never the number, and Vonage is not called."""
    client = make_app(settings_for(env)).test_client()
    if answer is OK:
        vonage.post("https://api.nexmo.com/v1/messages", json={"message_uuid": "u"}, status=202)
    response = client.post("/send-sms", json={"to": number, "text": "hi"}, headers=AUTH)

    if answer is OK:
        assert response.status_code == 200, response.json
        assert len(vonage.calls) == 1
        return
    assert response.status_code == 422
    assert response.json["type"].endswith("/destination-not-allowed")
    assert response.json["detail"] == (
        f"Sending to {answer} is not allowed by this service; nothing was sent."
    )
    assert number.lstrip("+")[-6:] not in json.dumps(response.json)
    assert len(vonage.calls) == 0


def test_a_refusal_spends_no_limit(make_app, settings_for, accept):
    """A refused send counts against neither the key's limit nor the recipient's."""
    app = make_app(settings_for({"ALLOWED_COUNTRIES": "US"}))
    client, french = app.test_client(), "+33612345678"
    for _ in range(3):
        refused = client.post("/send-sms", json={"to": french, "text": "hi"}, headers=AUTH)
        assert refused.status_code == 422

    sent = client.post("/send-sms", json=VALID_BODY, headers=AUTH)

    assert sent.headers["RateLimit-Remaining"] == "59"  # RATE_LIMIT 60 per minute, one spent
    limits = get_rate_limits(app)
    for item in limits.items.per_recipient:
        stats = limits.strategy.get_window_stats(item, RECIPIENT, recipient_key(french))
        assert stats.remaining == item.amount
    assert len(accept.calls) == 1


def test_a_refusal_takes_no_idempotency_key(client, accept):
    """The refusal comes before the Idempotency-Key is taken: the key stays free for the
    corrected request, which sends."""
    key = {**AUTH, "Idempotency-Key": "order-7"}
    refused = client.post("/send-sms", json={"to": "+449098790000", "text": "hi"}, headers=key)
    sent = client.post("/send-sms", json=VALID_BODY, headers=key)

    assert refused.status_code == 422
    assert sent.status_code == 200
    assert "Idempotent-Replayed" not in sent.headers


def test_a_wrong_key_learns_nothing_of_the_destinations(client):
    """Without a valid key the answer is 401, whatever the destination: the permissions
    cannot be probed."""
    response = client.post("/send-sms", json={"to": "+449098790000", "text": "hi"})

    assert response.status_code == 401


def test_a_refusal_logs_the_masked_number_and_the_slug(client, capsys):
    """The log line names the refusal and the recipient masked, never the full number."""
    client.post("/send-sms", json={"to": "+449098790000", "text": "hi"}, headers=AUTH)

    out = capsys.readouterr().out
    line = json.loads(out.splitlines()[-1])
    assert (line["status"], line["error"]) == (422, "destination-not-allowed")
    assert line["to"] == "+44********00"
    assert "9098790000" not in out


def test_an_invalid_body_to_a_refused_destination_is_a_400(client):
    """The destination is judged only for a body that is otherwise valid."""
    response = client.post("/send-sms", json={"to": "+449098790000", "text": ""}, headers=AUTH)

    assert response.status_code == 400
