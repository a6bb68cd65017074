"""Webhook signatures: the verification matrix, and Vonage's own signed-token vectors."""

import base64
import hashlib
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from app.store import get_store
from app.web.webhook_auth import BadSignature, check_claims, check_payload_hash, verify_signature
from tests.conftest import shared_file
from tests.webhook_signing import OLD_SECRET, SIGNATURE_SECRET, sign, signed_post, status_body

STATUS = status_body("aaaaaaaa-0000-4000-8000-000000000001", "delivered", "2026-01-01T10:00:00Z")


@pytest.fixture
def app(make_app, settings):
    return make_app(settings, signature_secrets=(SIGNATURE_SECRET, OLD_SECRET))


def post(client, raw: bytes, authorization: str | None, source: dict | None = None):
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return client.post("/webhooks/status", data=raw, headers=headers, environ_base=source or {})


def stored(app):
    return get_store(app).get_message(STATUS["message_uuid"])


def test_valid_signature_is_accepted_and_stored(app, client):
    assert signed_post(client, "/webhooks/status", STATUS).status_code == 200
    assert stored(app)["status"] == "delivered"


def test_second_secret_of_a_rotation_is_accepted(app, client):
    assert signed_post(client, "/webhooks/status", STATUS, secret=OLD_SECRET).status_code == 200


RAW = json.dumps(STATUS).encode()
NOW = int(time.time())


def none_token(body: bytes) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {
        "iat": int(time.time()),
        "payload_hash": hashlib.sha256(body).hexdigest(),
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def rs256_token(body: bytes, key_pem: str) -> str:
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    claims = {"iat": int(time.time()), "payload_hash": hashlib.sha256(body).hexdigest()}
    return jwt.encode(claims, key, algorithm="RS256")


@pytest.mark.parametrize(
    ("case", "make_header"),
    [
        ("wrong secret", lambda pem: f"Bearer {sign(RAW, 'some-other-secret-0123456789abcdefgh')}"),
        ("tampered body", lambda pem: f"Bearer {sign(RAW.replace(b'delivered', b'submitted'))}"),
        ("stale iat", lambda pem: f"Bearer {sign(RAW, iat=int(time.time()) - 301)}"),
        ("future iat", lambda pem: f"Bearer {sign(RAW, iat=int(time.time()) + 120)}"),
        ("no payload_hash", lambda pem: f"Bearer {sign(RAW, payload_hash=None)}"),
        ("no iat", lambda pem: f"Bearer {sign(RAW, iat=None)}"),
        ("wrong issuer", lambda pem: f"Bearer {sign(RAW, iss='Mallory')}"),
        ("no issuer", lambda pem: f"Bearer {sign(RAW, iss=None)}"),  # issue 11, item 12
        ("no jti", lambda pem: f"Bearer {sign(RAW, jti=None)}"),  # issue 11, item 10
        ("alg none", lambda pem: f"Bearer {none_token(RAW)}"),
        ("RS256", lambda pem: f"Bearer {rs256_token(RAW, pem)}"),
        ("not a JWT", lambda pem: "Bearer not-a-jwt"),
        ("basic auth", lambda pem: "Basic dXNlcjpwYXNz"),
    ],
)
def test_bad_tokens_are_refused_and_nothing_is_stored(
    app, client, private_key_pem, case, make_header
):
    """Each token is presented with the body RAW; "tampered body" signed another body."""
    response = post(client, RAW, make_header(private_key_pem))

    assert response.status_code == 401, case
    assert response.mimetype == "application/problem+json"
    assert stored(app) is None


def test_token_within_the_allowed_window_is_accepted(app, client):
    assert post(client, RAW, f"Bearer {sign(RAW, iat=int(time.time()) - 290)}").status_code == 200
    assert post(client, RAW, f"Bearer {sign(RAW, iat=int(time.time()) + 50)}").status_code == 200


def test_missing_token_is_a_503_so_vonage_retries(app, client):
    response = post(client, RAW, None)
    assert response.status_code == 503
    assert response.json["type"].endswith("/webhook-unsigned")
    assert stored(app) is None


def test_without_a_secret_webhooks_are_refused(make_app, settings):
    client = make_app(settings, signature_secrets=()).test_client()
    response = signed_post(client, "/webhooks/status", STATUS)
    assert response.status_code == 503
    assert "webhook verification not configured" in response.json["detail"]


def test_allow_unsigned_takes_unsigned_webhooks(make_app, settings, capsys):
    app = make_app(settings, signature_secrets=(), webhook_allow_unsigned=True)
    assert "WEBHOOK_ALLOW_UNSIGNED" in capsys.readouterr().out
    response = post(app.test_client(), RAW, None)
    assert response.status_code == 200
    assert get_store(app).get_message(STATUS["message_uuid"])["status"] == "delivered"


def test_check_claims_uses_max_age():
    body = b"{}"
    claims = jwt.decode(sign(body, iat=1000), SIGNATURE_SECRET, algorithms=["HS256"])
    check_claims(claims, max_age_s=300, clock=lambda: 1299)
    with pytest.raises(BadSignature):
        check_claims(claims, max_age_s=300, clock=lambda: 1301)


def vectors() -> list[dict]:
    return json.loads(shared_file("fixtures", "signed-webhook-vectors.json").read_text())["vectors"]


def vector(vector_id: str) -> dict:
    return next(v for v in vectors() if v["id"] == vector_id)


def test_ruby_sdk_vector_verifies_with_its_secret_and_not_the_other():
    v = vector("ruby-sdk-messaging-webhook")
    claims = verify_signature(v["token"], [v["valid_secret"]])
    assert claims["payload_hash"] == v["derived_claims"]["payload_hash"]
    with pytest.raises(BadSignature):
        verify_signature(v["token"], [v["invalid_secret"]])


def test_ruby_sdk_vector_verifies_in_a_rotation_and_is_stale_today():
    v = vector("ruby-sdk-messaging-webhook")
    claims = verify_signature(v["token"], [v["invalid_secret"], v["valid_secret"]])
    with pytest.raises(BadSignature, match="older"):
        check_claims(claims, 300)  # issued in 2020
    iat = v["derived_claims"]["iat"]
    check_claims(claims, 300, clock=lambda: iat)
    with pytest.raises(BadSignature, match="payload_hash"):
        check_payload_hash(claims, b"not the body")


def test_vonage_sends_iss_vonage_so_it_is_required():
    """Vonage's docs say `iss` is always "Vonage", and the real Messages token (the Ruby SDK's
    vector, equal to the docs' sample) carries it: a token without it is refused."""
    v = vector("ruby-sdk-messaging-webhook")
    claims = verify_signature(v["token"], [v["valid_secret"]])
    assert claims["iss"] == "Vonage"
    check_claims(claims, 300, clock=lambda: claims["iat"])
    with pytest.raises(BadSignature, match="iss"):
        check_claims({k: c for k, c in claims.items() if k != "iss"}, 300, lambda: claims["iat"])


def test_python_sdk_vector():
    v = vector("python-sdk-vonage-jwt-verify-signature")
    assert verify_signature(v["token"], [v["valid_secret"]])["iat"] == v["derived_claims"]["iat"]
    with pytest.raises(BadSignature):
        verify_signature(v["token"], [v["invalid_secret"]])
    with pytest.raises(BadSignature):
        verify_signature(v["malformed_token"], [v["valid_secret"]])


def test_java_sdk_vector():
    v = vector("java-sdk-messages-verify-signature")
    assert verify_signature(v["token"], [v["valid_secret"]])["name"] == "Java_SDK"
    with pytest.raises(BadSignature):
        verify_signature(v["bad_signature_token"], [v["valid_secret"]])


def test_bad_signatures_are_braked_per_ip(app, client):
    """A client IP cannot try signature secrets unbounded: past AUTH_FAILURE_LIMIT it gets 429,
    for a good token too (a guess is not confirmed); the address Vonage's good tokens came
    from lately is not held back."""
    vonage, attacker = {"REMOTE_ADDR": "192.0.2.40"}, {"REMOTE_ADDR": "203.0.113.9"}
    wrong = f"Bearer {sign(RAW, 'some-other-secret-0123456789abcdefgh')}"
    good = f"Bearer {sign(RAW)}"
    assert post(client, RAW, good, vonage).status_code == 200
    for source in (vonage, attacker):
        for _ in range(10):
            assert post(client, RAW, wrong, source).status_code == 401

    for header in (wrong, good, "Basic dXNlcjpwYXNz"):
        assert post(client, RAW, header, attacker).status_code == 429
    assert post(client, RAW, good, vonage).status_code == 200
