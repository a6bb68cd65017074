"""GET /metrics counts what operators need, with bounded labels; traceparent reaches the log."""

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import AUTH, SECRET_A, UUID, VALID_BODY, VONAGE_SMS_URL
from tests.webhook_signing import SIGNATURE_SECRET, inbound_body, signed_post, status_body


def samples(client, headers=None) -> dict[tuple, float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def app(make_app, settings):
    return make_app(settings, signature_secrets=(SIGNATURE_SECRET,))


def test_a_send_is_counted(client, accept):
    before = samples(client)
    client.post("/send-sms", json={**VALID_BODY, "text": "a" * 200}, headers=AUTH)
    after = samples(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("sms_accepted_total", api_key="alpha", encoding="GSM-7") == 1
    assert delta("sms_segments_sent_total", api_key="alpha") == 2
    assert delta("sms_vonage_outcomes_total", outcome="accepted") == 1
    assert delta("sms_vonage_request_duration_seconds_count") == 1
    assert delta("sms_http_requests_total", route="/send-sms", method="POST", status="200") == 1
    assert delta("sms_http_request_duration_seconds_count", route="/send-sms") == 1


def test_retries_refusals_and_replays_are_counted(make_app, settings, vonage):
    client = make_app(settings, rate_limit="2 per minute").test_client()
    vonage.post(VONAGE_SMS_URL, json={"title": "Rate Limit Hit"}, status=429)
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    before = samples(client)
    headers = {**AUTH, "Idempotency-Key": "m-1"}
    client.post("/send-sms", json=VALID_BODY, headers=headers)
    client.post("/send-sms", json=VALID_BODY, headers=headers)  # replayed
    client.post("/send-sms", json=VALID_BODY, headers=AUTH)  # 2nd of 2 per minute: validated
    client.post("/send-sms", json=VALID_BODY, headers=AUTH)  # refused
    after = samples(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("sms_vonage_retries_total", reason="vonage-429") == 1
    assert delta("sms_vonage_outcomes_total", outcome="vonage-429") == 1
    assert delta("sms_idempotency_total", result="replay") == 1
    assert delta("sms_rate_limited_total", limit="api-key") >= 1


def test_webhooks_opt_outs_and_inbound_are_counted(client):
    before = samples(client)
    signed_post(client, "/webhooks/status", status_body(UUID, "delivered", "2026-01-01T10:00:00Z"))
    signed_post(client, "/webhooks/inbound", inbound_body("14155550100", "STOP"))
    client.post("/webhooks/inbound", json=inbound_body("14155550100", "START"))  # unsigned: 503
    client.put("/opt-outs/+14155550111", headers=AUTH)
    after = samples(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("sms_webhooks_total", type="status", status="200") == 1
    assert delta("sms_webhooks_total", type="inbound", status="200") == 1
    assert delta("sms_webhooks_total", type="inbound", status="503") == 1
    assert delta("sms_delivery_receipts_total", status="delivered") == 1
    assert delta("sms_inbound_messages_total", action="opted-out") == 1
    assert delta("sms_opt_out_changes_total", change="added", source="sms") == 1
    assert delta("sms_opt_out_changes_total", change="added", source="api") == 1


def test_labels_never_hold_numbers_paths_or_secrets(client, accept):
    client.post("/send-sms", json=VALID_BODY, headers=AUTH)
    client.get("/opt-outs/+14155550123", headers=AUTH)
    client.get("/no/such/+14155550199")
    text = client.get("/metrics").get_data(as_text=True)
    for secret in ("4155550100", "4155550123", "4155550199", SECRET_A):
        assert secret not in text
    assert 'route="/opt-outs/<number>"' in text
    assert 'route="unmatched"' in text


def test_metrics_token(make_app, settings):
    client = make_app(settings, metrics_token="metrics-token-0123456789").test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    assert (
        client.get("/metrics", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    )
    bare = client.get("/metrics", headers={"Authorization": "metrics-token-0123456789"})
    assert bare.status_code == 401  # the token without the Bearer scheme
    granted = client.get("/metrics", headers={"Authorization": "Bearer metrics-token-0123456789"})
    assert granted.status_code == 200


def test_wrong_metrics_tokens_are_braked_per_ip(make_app, settings):
    """300 wrong tokens got 300 answers of 401: now the failed-key brake holds the IP, for the
    right token too (a guess is not confirmed), but not the scraper the token succeeded from."""
    client = make_app(settings, metrics_token="metrics-token-0123456789").test_client()
    scraper, attacker = {"REMOTE_ADDR": "192.0.2.10"}, {"REMOTE_ADDR": "203.0.113.9"}

    def scrape(token, source):
        headers = {"Authorization": f"Bearer {token}"}
        return client.get("/metrics", headers=headers, environ_base=source).status_code

    assert scrape("metrics-token-0123456789", scraper) == 200
    for source in (scraper, attacker):
        assert [scrape("wrong-token", source) for _ in range(10)] == [401] * 10

    assert scrape("wrong-token", attacker) == 429
    assert scrape("metrics-token-0123456789", attacker) == 429
    assert scrape("metrics-token-0123456789", scraper) == 200


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("traceparent", "logged"),
    [
        (f"00-{TRACE_ID}-00f067aa0ba902b7-01", TRACE_ID),
        (f"01-{TRACE_ID}-00f067aa0ba902b7-01-future", TRACE_ID),  # newer versions may add fields
        (f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra", None),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),
        (f"00-{TRACE_ID}-0000000000000000-01", None),
        (f"ff-{TRACE_ID}-00f067aa0ba902b7-01", None),
        (f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01", None),
        ("garbage", None),
    ],
)
def test_traceparent_trace_id_goes_into_the_log(client, capsys, traceparent, logged):
    client.get("/health", headers={"traceparent": traceparent})
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line.get("trace_id") == logged


def test_vonage_is_not_given_our_trace(client, accept):
    client.post(
        "/send-sms",
        json=VALID_BODY,
        headers={**AUTH, "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
    )
    assert "traceparent" not in accept.calls[0].request.headers
