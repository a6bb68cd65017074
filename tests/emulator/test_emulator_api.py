"""POST /v1/messages over real HTTPS: authentication, body checks, recording, inspection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

pytestmark = pytest.mark.slow  # starts a real emulator process


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_token(header: dict[str, object], claims: dict[str, object], key: bytes) -> str:
    """Build a token by hand, for algorithms PyJWT rightly refuses to produce."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{_b64(signature)}"


def _claims() -> dict[str, object]:
    now = int(time.time())
    return {
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        "iat": now,
        "jti": "x",
        "exp": now + 900,
    }


def test_valid_token_and_body_are_accepted_and_recorded(emulator, sms):
    """A request as the SDK makes it gets 202 and a uuid4, and appears in the message list."""
    body = sms(client_ref="order-1")
    response = emulator.send(body)

    assert response.status_code == 202
    assert response.headers["Content-Type"] == "application/json"
    message_uuid = response.json()["message_uuid"]
    assert len(message_uuid) == 36 and message_uuid[14] == "4"
    [message] = emulator.get("/_emulator/messages").json()
    assert message["message_uuid"] == message_uuid
    assert (message["to"], message["from"], message["text"]) == (body["to"], "Acme", body["text"])
    assert message["client_ref"] == "order-1"
    assert (message["segments"], message["encoding"]) == (1, "GSM-7")
    assert message["request"] == body
    assert message["time"].endswith("Z")


def test_recorded_message_counts_unicode_segments(emulator, sms):
    """Text outside GSM-7 is recorded as UCS-2 with its part count."""
    emulator.send(sms(text="Привет " * 10))  # 70 characters, one UCS-2 part
    emulator.send(sms(text="Привет " * 11))
    parts = [(m["encoding"], m["segments"]) for m in emulator.get("/_emulator/messages").json()]
    assert parts == [("UCS-2", 1), ("UCS-2", 2)]


def _wrong_key_token() -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(_claims(), other, "RS256")


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda e: _wrong_key_token(), id="wrong-key"),
        pytest.param(lambda e: e.token(application_id="someone-else"), id="wrong-application"),
        pytest.param(lambda e: e.token(application_id=None), id="no-application-id"),
        pytest.param(lambda e: e.token(exp=int(time.time()) - 60), id="expired"),
        pytest.param(lambda e: e.token(exp=None), id="no-exp"),
        pytest.param(
            lambda e: _unsigned_token(
                {"alg": "HS256", "typ": "JWT"},
                _claims(),
                e.private_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
            ),
            id="hs256-with-public-key",
        ),
        pytest.param(lambda e: _unsigned_token({"alg": "none"}, _claims(), b""), id="alg-none"),
        pytest.param(lambda e: "not.a.jwt", id="garbage"),
    ],
)
def test_bad_tokens_get_vonage_401(emulator, sms, make_token):
    """Anything but a live RS256 token for our application is refused with Vonage's 401 body."""
    response = emulator.send(sms(), token=make_token(emulator))

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["title"] == "Unauthorized"
    assert body["detail"] == "You did not provide correct credentials."
    assert set(body) == {"type", "title", "detail", "instance"}
    assert emulator.get("/_emulator/messages").json() == []


def test_token_expired_within_leeway_is_accepted(emulator, sms):
    """A token that expired seconds ago still passes: clocks drift a little."""
    response = emulator.send(sms(), token=emulator.token(exp=int(time.time()) - 5))
    assert response.status_code == 202


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YWJjOmRlZg=="}, {"Authorization": "Bearer"}],
    ids=["missing", "basic", "empty-bearer"],
)
def test_missing_bearer_token_gets_401(emulator, sms, headers):
    """No bearer token, no message."""
    response = requests.post(
        f"{emulator.url}/v1/messages", json=sms(), headers=headers, verify=emulator.ca, timeout=5
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channel", None),
        ("channel", "whatsapp"),
        ("message_type", "image"),
        ("to", None),
        ("to", "+442079460123"),
        ("to", "123456"),
        ("to", "1234567890123456"),
        ("to", "44207946012x"),
        ("to", 442079460123),
        ("from", ""),
        ("from", None),
        ("from", 12345),
        ("text", ""),
        ("text", None),
        ("text", "x" * 1001),
        ("client_ref", "r" * 101),
        ("ttl", 19),
        ("ttl", 604801),
        ("ttl", "60"),
        ("ttl", True),
        ("sms", "unicode"),
        ("sms", {"encoding_type": "binary"}),
        ("webhook_url", 5),
        ("webhook_version", "v2"),
        ("trusted_recipient", "yes"),
    ],
)
def test_invalid_field_gets_422_naming_it(emulator, sms, field, value):
    """Each rule breaks alone and is named in invalid_parameters; nothing is recorded."""
    body = sms()
    body.pop(field, None)
    if value is not None:
        body[field] = value
    response = emulator.send(body)

    assert response.status_code == 422
    problem = response.json()
    assert problem["title"] == "Invalid params"
    assert {"type", "title", "detail", "instance"} <= set(problem)
    names = [p["name"] for p in problem["invalid_parameters"]]
    expected = "sms.encoding_type" if field == "sms" and isinstance(value, dict) else field
    assert names == [expected]
    assert emulator.get("/_emulator/messages").json() == []


def test_boundary_values_are_accepted(emulator, sms):
    """The limits themselves are allowed: 1000 characters, 100-char ref, ttl 20 and 604800."""
    for body in (
        sms(text="x" * 1000, client_ref="r" * 100, ttl=20),
        sms(to="1234567", ttl=604800, sms={"encoding_type": "unicode"}),
        sms(to="123456789012345", trusted_recipient=True, webhook_version="v1"),
    ):
        assert emulator.send(body).status_code == 202, body


@pytest.mark.parametrize("raw", [b'{"to": "44"', b"[]", b'"text"'], ids=["broken", "list", "str"])
def test_body_that_is_not_a_json_object_gets_invalid_json(emulator, raw):
    """Unparseable or non-object bodies get the invalid-json problem."""
    response = requests.post(
        f"{emulator.url}/v1/messages",
        data=raw,
        headers={"Authorization": f"Bearer {emulator.token()}", "Content-Type": "application/json"},
        verify=emulator.ca,
        timeout=5,
    )
    assert response.status_code == 422
    body = response.json()
    assert body["title"] == "The request body did not contain valid JSON"
    assert body["type"].endswith("#invalid-json")


def test_authentication_is_checked_before_the_body(emulator):
    """A bad token with a bad body is a 401: Vonage authenticates first."""
    response = emulator.send({"channel": "fax"}, token="bad")
    assert response.status_code == 401


def test_stats_count_connections_requests_and_attempts(emulator, sms):
    """A session's requests share one TLS connection; separate clients each open one."""
    headers = {"Authorization": f"Bearer {emulator.token()}"}
    with requests.Session() as session:
        for _ in range(2):
            response = session.post(
                f"{emulator.url}/v1/messages", json=sms(), headers=headers,
                verify=emulator.ca,
            )  # fmt: skip
            assert response.status_code == 202
        session.post(
            f"{emulator.url}/v1/messages", json=sms(to="442079460903"), headers=headers,
            verify=emulator.ca,
        )  # fmt: skip
        stats = session.get(f"{emulator.url}/_emulator/stats", verify=emulator.ca).json()

    assert stats["connections"] == 1
    assert stats["requests"] == 3
    assert stats["accepted"] == 2
    assert stats["attempts"] == {"442079460123": 2, "442079460903": 1}
    assert emulator.stats()["connections"] == 2  # requests.get: a connection of its own


def test_reset_forgets_messages_and_counters(emulator, sms):
    """DELETE /_emulator/messages answers 204 and zeroes everything."""
    emulator.send(sms())
    emulator.reset()
    assert emulator.get("/_emulator/messages").json() == []
    stats = emulator.stats()
    assert (stats["requests"], stats["accepted"], stats["attempts"]) == (0, 0, {})


def test_concurrent_requests_are_all_counted(emulator, sms):
    """Forty clients at once: every request answered and counted exactly once."""
    token = emulator.token()
    numbers = [f"4420794602{n:02d}" for n in range(40)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda to: emulator.send(sms(to=to), token).status_code, numbers))
    assert statuses == [202] * 40
    stats = emulator.stats()
    assert stats["accepted"] == 40
    assert stats["attempts"] == dict.fromkeys(numbers, 1)


def test_inbox_page_escapes_message_text(emulator, sms):
    """The HTML inbox shows a <script> text as text."""
    emulator.send(sms(text="<script>alert('x')</script>", client_ref="<b>ref</b>"))
    response = emulator.get("/")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in response.text
    assert "<script>" not in response.text and "<b>ref" not in response.text
    assert "+442079460123" in response.text


def test_unknown_path_and_method_get_json_errors(emulator):
    """Wrong paths are 404, wrong methods 405, both as JSON problems."""
    assert emulator.get("/v1/nothing").status_code == 404
    response = emulator.get("/v1/messages")
    assert response.status_code == 405
    assert response.json()["title"] == "Method Not Allowed"


def test_logs_mask_numbers_and_omit_text(emulator, sms):
    """One line per request, with the number masked and no message text."""
    emulator.send(sms(text="secret words here"))
    emulator.get("/_emulator/stats")
    time.sleep(0.1)  # the log line is written after the answer
    log = emulator.log()
    assert "POST /v1/messages 202 to=**********23" in log
    assert "442079460123" not in log
    assert "secret words" not in log
