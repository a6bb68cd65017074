"""Status and inbound webhooks: order, Vonage's signing, and the spec's schemas."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import jwt
import pytest
import requests
import yaml

from emulator.magic import number_for
from emulator.signing import SignatureError, verify_webhook

pytestmark = pytest.mark.slow  # starts a real emulator process


def _claims(received, emulator) -> dict[str, object]:
    """Verify a webhook's token as a receiver would, with an ordinary JWT library."""
    scheme, _, token = received.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    return jwt.decode(token, emulator.secret, algorithms=["HS256"], issuer="Vonage")


def test_status_webhooks_report_submitted_then_delivered(emulator, sms, receiver):
    """Two signed webhooks arrive in order, shaped as Vonage's message-status callback."""
    response = emulator.send(sms(client_ref="order-7", text="x" * 200))
    message_uuid = response.json()["message_uuid"]

    first, second = receiver.wait_for(2, about=message_uuid)
    assert (first.path, second.path) == ("/status", "/status")
    assert [first.json()["status"], second.json()["status"]] == ["submitted", "delivered"]
    delivered = second.json()
    assert delivered["message_uuid"] == message_uuid
    assert (delivered["to"], delivered["from"], delivered["channel"]) == (
        "442079460123",
        "Acme",
        "sms",
    )
    assert delivered["client_ref"] == "order-7"
    assert delivered["usage"] == {"currency": "EUR", "price": "0.0666"}  # two parts
    assert delivered["sms"] == {"count_total": "2"}
    assert delivered["timestamp"].endswith("Z")
    assert first.headers["Content-Type"] == "application/json"


def test_status_webhooks_are_signed_like_vonage(emulator, sms, receiver):
    """HS256 with the signature secret; payload_hash is the SHA-256 of the exact bytes."""
    message_uuid = emulator.send(sms()).json()["message_uuid"]
    for received in receiver.wait_for(2, about=message_uuid):
        claims = _claims(received, emulator)
        assert claims["payload_hash"] == hashlib.sha256(received.body).hexdigest()
        assert claims["api_key"] == emulator.api_key
        assert claims["application_id"] == emulator.application_id
        assert uuid.UUID(str(claims["jti"]))
        assert abs(int(claims["iat"]) - time.time()) < 30
        assert verify_webhook(received.headers["Authorization"][7:], emulator.secret, received.body)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            received.headers["Authorization"][7:], "x" * 32, algorithms=["HS256"]
        )  # another secret fails


@pytest.mark.parametrize(
    ("outcome", "status", "code"),
    [("rejected", "rejected", "1250"), ("undeliverable", "undeliverable", "1190")],
)
def test_failing_numbers_report_their_error(emulator, sms, receiver, outcome, status, code):
    """The final webhook carries the failed status and a Vonage error with its code."""
    message_uuid = emulator.send(sms(to=number_for(outcome))).json()["message_uuid"]
    _, final = receiver.wait_for(2, about=message_uuid)
    body = final.json()
    assert body["status"] == status
    assert body["error"]["title"] == code
    assert body["error"]["type"].endswith(f"#{code}")
    assert body["error"]["detail"]
    assert "usage" not in body


def test_failed_webhook_is_retried(emulator, sms, receiver):
    """A receiver answering 500 gets the same webhook again shortly after."""
    receiver.failures_left = 1
    message_uuid = emulator.send(sms()).json()["message_uuid"]
    first, second = receiver.wait_for(2, about=message_uuid)
    assert [first.json()["status"], second.json()["status"]] == ["submitted", "delivered"]
    deadline = time.monotonic() + 2
    while emulator.stats()["webhooks"]["sent"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulator.stats()["webhooks"] == {"sent": 2, "failed": 0}


def test_per_message_webhook_url_wins(emulator, sms, receiver):
    """webhook_url in the request sends that message's statuses there instead."""
    body = sms(webhook_url=f"{receiver.url}/elsewhere")
    message_uuid = emulator.send(body).json()["message_uuid"]
    paths = {r.path for r in receiver.wait_for(2, about=message_uuid)}
    assert paths == {"/elsewhere"}


def test_inbound_helper_sends_a_signed_inbound_sms(emulator, receiver):
    """POST /_emulator/inbound delivers an inbound-message webhook and echoes it."""
    response = requests.post(
        f"{emulator.url}/_emulator/inbound",
        json={"from": "+447700900123", "text": "stop sending please"},
        verify=emulator.ca,
        timeout=5,
    )
    assert response.status_code == 202
    sent = response.json()
    [received] = receiver.wait_for(1, about=sent["message_uuid"])

    assert received.path == "/inbound"
    assert received.json() == sent
    assert (sent["from"], sent["to"], sent["channel"]) == ("447700900123", "447700900000", "sms")
    assert sent["sms"] == {"num_messages": "1", "keyword": "STOP"}
    assert _claims(received, emulator)["payload_hash"] == hashlib.sha256(received.body).hexdigest()


@pytest.mark.parametrize(
    "body",
    [{"text": "hi"}, {"from": "12ab", "text": "hi"}, {"from": "447700900123", "text": ""}, []],
)
def test_inbound_helper_refuses_bad_input(emulator, receiver, body):
    """Bad input is a 400 and sends nothing."""
    response = requests.post(
        f"{emulator.url}/_emulator/inbound", json=body, verify=emulator.ca, timeout=5
    )
    assert response.status_code == 400


def test_inbound_helper_needs_a_url(start_emulator):
    """Without INBOUND_WEBHOOK_URL the helper answers 409."""
    plain = start_emulator()
    response = requests.post(
        f"{plain.url}/_emulator/inbound",
        json={"from": "447700900123", "text": "hi"},
        verify=plain.ca,
        timeout=5,
    )
    assert response.status_code == 409


# --- contract: Vonage's own schemas and signed-webhook vectors ------------------------


@pytest.fixture(scope="session")
def spec_validator(vonage_contract):
    """Validate against a component schema of Vonage's messages-api.yml."""
    jsonschema = pytest.importorskip(
        "jsonschema", reason="jsonschema is needed to check webhooks against Vonage's spec"
    )
    spec = yaml.safe_load((vonage_contract / "messages-api.yml").read_text())

    def validate(schema_name: str, instance: object) -> None:
        schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
        jsonschema.Draft7Validator(schema).validate(instance)

    return validate


def test_status_webhooks_match_the_spec(emulator, sms, receiver, spec_validator):
    """Every status body validates against messageStatusSMS, failures included."""
    uuids = [
        emulator.send(sms(to=to, client_ref="r")).json()["message_uuid"]
        for to in ("442079460123", number_for("rejected"), number_for("undeliverable"))
    ]
    for message_uuid in uuids:
        for received in receiver.wait_for(2, about=message_uuid):
            spec_validator("messageStatusSMS", received.json())


def test_inbound_webhook_matches_the_spec(emulator, receiver, spec_validator):
    """The inbound body validates against inboundMessageSMS."""
    sent = requests.post(
        f"{emulator.url}/_emulator/inbound",
        json={"from": "447700900123", "text": "Hello"},
        verify=emulator.ca,
        timeout=5,
    ).json()
    [received] = receiver.wait_for(1, about=sent["message_uuid"])
    spec_validator("inboundMessageSMS", received.json())


def test_spec_validation_is_not_vacuous(spec_validator):
    """The loaded schemas do reject a body missing a required field or with a wrong type."""
    import jsonschema

    good = {
        "message_uuid": "u", "to": "447700900000", "from": "Acme",
        "timestamp": "2020-01-01T14:00:00.000Z", "status": "delivered", "channel": "sms",
    }  # fmt: skip
    spec_validator("messageStatusSMS", good)
    for broken in (
        {**good, "status": "read"},
        {k: v for k, v in good.items() if k != "status"},
        {**good, "error": {"title": 1250}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            spec_validator("messageStatusSMS", broken)


def _vectors(vonage_contract) -> list[dict[str, object]]:
    path = vonage_contract / "fixtures" / "signed-webhook-vectors.json"
    return json.loads(path.read_text())["vectors"]


def test_vonage_signed_webhook_vectors_verify(vonage_contract):
    """Tokens from Vonage's SDK tests verify with their secret under our reversed signing."""
    vectors = {v["id"]: v for v in _vectors(vonage_contract)}
    assert len(vectors) == 3
    for vector in vectors.values():
        claims = verify_webhook(vector["token"], vector["valid_secret"])
        assert claims == vector["derived_claims"]
        if "invalid_secret" in vector:
            with pytest.raises(SignatureError):
                verify_webhook(vector["token"], vector["invalid_secret"])
    java = vectors["java-sdk-messages-verify-signature"]
    with pytest.raises(SignatureError):
        verify_webhook(java["bad_signature_token"], java["valid_secret"])
    python = vectors["python-sdk-vonage-jwt-verify-signature"]
    with pytest.raises(SignatureError, match="malformed"):
        verify_webhook(python["malformed_token"], python["valid_secret"])


def test_ruby_vector_has_the_claims_we_sign(vonage_contract):
    """Vonage's sample token carries exactly the claim names our webhooks carry."""
    from emulator.signing import sign_webhook

    ruby = next(v for v in _vectors(vonage_contract) if v["id"] == "ruby-sdk-messaging-webhook")
    ours = verify_webhook(sign_webhook(b"{}", "s", "a1b2c3d", "app"), "s")
    assert set(ours) == set(ruby["derived_claims"])
    assert jwt.get_unverified_header(ruby["token"]) == {"alg": "HS256", "typ": "JWT"}
