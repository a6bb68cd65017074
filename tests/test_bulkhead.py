"""The bulkhead: at most VONAGE_MAX_IN_FLIGHT sends per process; past it a quick 503."""

import time

import pytest

from app.web.bulkhead import get_bulkhead
from tests.conftest import AUTH, VALID_BODY
from tests.test_metrics_and_tracing import samples, value


@pytest.fixture
def app(make_app, settings):
    return make_app(settings, vonage_max_in_flight=2, busy_wait_ms=50)


def fill(app) -> None:
    """Take every slot, as sends waiting on a slow Vonage would."""
    for _ in range(get_bulkhead(app).size):
        get_bulkhead(app).acquire()


def test_a_send_past_the_bound_is_shed_quickly(app, client, vonage):
    """No slot within BUSY_WAIT_MS: 503 service-busy with Retry-After; Vonage is not called
    (the autouse `vonage` fixture fails on any call)."""
    fill(app)
    started = time.monotonic()
    response = client.post("/send-sms", json=VALID_BODY, headers=AUTH)

    assert response.status_code == 503
    assert response.json["type"].endswith("/service-busy")
    assert response.headers["Retry-After"] == "1"
    assert 0.05 <= time.monotonic() - started < 0.5
    assert len(vonage.calls) == 0


def test_a_shed_send_spends_no_limit(make_app, settings, vonage):
    """A caller told to retry must not lose its allowance to the refusal."""
    app = make_app(settings, vonage_max_in_flight=1, busy_wait_ms=0, rate_limit="1 per minute")
    client = app.test_client()
    bulkhead = get_bulkhead(app)
    bulkhead.acquire()
    assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 503
    bulkhead.release()
    vonage.post("https://api.nexmo.com/v1/messages", json={"message_uuid": "u-1"}, status=202)
    assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 200


def test_a_shed_send_is_not_kept_under_its_idempotency_key(app, client, accept):
    """The retry with the same key sends: nothing was sent the first time."""
    headers = {**AUTH, "Idempotency-Key": "shed-once"}
    fill(app)
    assert client.post("/send-sms", json=VALID_BODY, headers=headers).status_code == 503
    for _ in range(2):
        get_bulkhead(app).release()

    retried = client.post("/send-sms", json=VALID_BODY, headers=headers)

    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers


def test_other_routes_never_wait_for_a_slot(app, client):
    fill(app)
    started = time.monotonic()
    assert client.get("/health").status_code == 200
    assert client.get("/opt-outs/+14155550100", headers=AUTH).status_code == 200
    assert client.get("/metrics").status_code == 200
    assert time.monotonic() - started < 0.05 * 3


def test_a_slot_is_given_back_whatever_the_outcome(app, client, vonage):
    """Refusals after the slot is taken (400, a Vonage error) free it again."""
    vonage.post("https://api.nexmo.com/v1/messages", status=500)
    for _ in range(3):
        assert client.post("/send-sms", json={"to": "+1"}, headers=AUTH).status_code == 400
    assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 502
    fill(app)  # would block, then raise, if a slot had leaked


def test_shed_sends_and_sends_in_flight_are_metrics(app, client):
    before = samples(client)
    fill(app)
    client.post("/send-sms", json=VALID_BODY, headers=AUTH)
    after = samples(client)

    def delta(name):
        return value(after, name) - value(before, name)

    assert delta("sms_sends_shed_total") == 1
    assert delta("sms_sends_in_flight") == 2
