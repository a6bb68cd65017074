"""POST /send-sms: what is accepted, what is sent to Vonage, and every field rule."""

import io
import json

import pytest

from tests.conftest import AUTH, UUID, VALID_BODY, VONAGE_SMS_URL


def sent_body(vonage) -> dict:
    return json.loads(vonage.calls[-1].request.body)


def test_success_answers_with_the_summary(client, accept):
    response = client.post("/send-sms", json={**VALID_BODY, "client_ref": "order-7"}, headers=AUTH)

    assert response.status_code == 200
    assert response.json == {
        "success": True,
        "message_uuid": UUID,
        "to": "+14155550100",
        "from": "+447700900000",
        "encoding": "GSM-7",
        "segments": 1,
        "characters": len(VALID_BODY["text"]),
        "client_ref": "order-7",
    }


def test_vonage_receives_numbers_without_plus_and_the_jwt(client, accept):
    client.post("/send-sms", json=VALID_BODY, headers=AUTH)

    request = accept.calls[0].request
    assert request.url == VONAGE_SMS_URL
    assert request.headers["Authorization"].startswith(b"Bearer ey")
    assert sent_body(accept) == {
        "to": "14155550100",
        "from": "447700900000",
        "text": VALID_BODY["text"],
        "channel": "sms",
        "message_type": "text",
    }


def test_optional_fields_are_passed_to_vonage(client, accept):
    body = {**VALID_BODY, "client_ref": "ref-1", "ttl": 600, "encoding": "unicode"}
    response = client.post("/send-sms", json=body, headers=AUTH)

    assert response.json["encoding"] == "UCS-2"
    sent = sent_body(accept)
    assert (sent["client_ref"], sent["ttl"], sent["sms"]) == (
        "ref-1",
        600,
        {"encoding_type": "unicode"},
    )


def test_smart_encoding_sends_the_gsm7_text(client, accept):
    body = {**VALID_BODY, "text": "It’s “quoted” – fine…", "smart_encoding": True}
    response = client.post("/send-sms", json=body, headers=AUTH)

    assert response.json["encoding"] == "GSM-7"
    assert sent_body(accept)["text"] == 'It\'s "quoted" - fine...'


def test_without_smart_encoding_look_alikes_cost_ucs2(client, accept):
    response = client.post("/send-sms", json={**VALID_BODY, "text": "It’s"}, headers=AUTH)
    assert response.json["encoding"] == "UCS-2"
    assert sent_body(accept)["text"] == "It’s"


@pytest.mark.parametrize(
    ("sender", "sent_as", "answered"),
    [
        ("MyBrand", "MyBrand", "MyBrand"),
        ("14155550199", "14155550199", "+14155550199"),
        ("+447700900000", "447700900000", "+447700900000"),
    ],
)
def test_allowed_senders(make_app, settings, accept, sender, sent_as, answered):
    app = make_app(settings, allowed_senders=("MyBrand", "+14155550199"))
    response = app.test_client().post(
        "/send-sms", json={**VALID_BODY, "from": sender}, headers=AUTH
    )

    assert response.status_code == 200
    assert response.json["from"] == answered
    assert sent_body(accept)["from"] == sent_as


@pytest.mark.parametrize(
    "number",
    [
        "+14155550100",
        "+442071838750",
        "+33142685300",
        "+4930901820",
        "+61293744000",
        "+81312345678",
        "+919876543210",
        "+5511987654321",
        "+1 (415) 555-0100",
        "+44 20 7183 8750",
    ],
)
def test_valid_international_numbers(client, accept, number):
    response = client.post("/send-sms", json={**VALID_BODY, "to": number}, headers=AUTH)
    assert response.status_code == 200
    assert response.json["to"] == "+" + sent_body(accept)["to"]


@pytest.mark.parametrize(
    ("region", "national", "e164"),
    [
        ("GB", "020 7183 8750", "+442071838750"),
        ("US", "(415) 555-0100", "+14155550100"),
        ("DE", "030 901820", "+4930901820"),
    ],
)
def test_national_format_with_default_region(make_app, settings, accept, region, national, e164):
    app = make_app(settings, default_region=region)
    response = app.test_client().post(
        "/send-sms", json={**VALID_BODY, "to": national}, headers=AUTH
    )
    assert response.status_code == 200
    assert response.json["to"] == e164


def test_national_format_without_default_region_is_refused(client):
    response = client.post("/send-sms", json={**VALID_BODY, "to": "020 7183 8750"}, headers=AUTH)
    assert response.status_code == 400
    assert "international" in response.json["errors"][0]["message"]


def invalid(client, body, field):
    response = client.post("/send-sms", json=body, headers=AUTH)
    assert response.status_code == 400, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["type"].endswith("/validation-error")
    assert response.json["success"] is False
    assert field in {error["field"] for error in response.json["errors"]}
    return response


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": "+447700900123"}, "to"),  # the fictional range in Vonage's docs is not valid
        ({"to": "+1415555"}, "to"),
        ({"to": "+99912345678"}, "to"),
        ({"to": "+1 800 FLOWERS"}, "to"),
        ({"to": 14155550100}, "to"),
        ({"to": ""}, "to"),
        ({"to": "+" + "1" * 300}, "to"),
        ({"to": None}, "to"),
        ({"text": ""}, "text"),
        ({"text": " \n\t "}, "text"),
        ({"text": 42}, "text"),
        ({"text": ["hi"]}, "text"),
        ({"text": "a" * 919}, "text"),  # 7 GSM-7 segments, over MAX_SEGMENTS 6
        ({"text": "ж" * 403}, "text"),  # 7 UCS-2 segments
        ({"text": "bad \ud800 surrogate"}, "text"),
        ({"from": "+19999999999"}, "from"),
        ({"from": 447700900000}, "from"),
        ({"client_ref": "x" * 101}, "client_ref"),
        ({"client_ref": 7}, "client_ref"),
        ({"client_ref": "line\nbreak"}, "client_ref"),
        ({"ttl": 19}, "ttl"),
        ({"ttl": 604801}, "ttl"),
        ({"ttl": "600"}, "ttl"),
        ({"ttl": True}, "ttl"),
        ({"ttl": 60.5}, "ttl"),
        ({"encoding": "ascii"}, "encoding"),
        ({"encoding": "text", "text": "Привет"}, "text"),
        ({"smart_encoding": "yes"}, "smart_encoding"),
        ({"message": "hi"}, "message"),
        ({"body": "hi"}, "body"),
    ],
)
def test_invalid_field_is_named_and_nothing_is_sent(client, change, field):
    """An invalid body is a 400 problem naming the field; Vonage is not called."""
    invalid(client, {**VALID_BODY, **change}, field)


def test_every_bad_field_is_named_at_once(client):
    response = invalid(client, {"to": "nope", "text": "", "ttl": 1, "message": "x"}, "to")
    assert {e["field"] for e in response.json["errors"]} == {"to", "text", "ttl", "message"}


def test_missing_fields_are_named(client):
    response = invalid(client, {}, "to")
    assert {e["field"] for e in response.json["errors"]} == {"to", "text"}


def test_exactly_max_segments_is_accepted(client, accept):
    response = client.post("/send-sms", json={**VALID_BODY, "text": "a" * 918}, headers=AUTH)
    assert response.json["segments"] == 6


def test_max_segments_setting(make_app, settings):
    app = make_app(settings, max_segments=1)
    invalid(app.test_client(), {**VALID_BODY, "text": "a" * 161}, "text")


def test_vonage_limit_of_1000_characters(make_app, settings):
    app = make_app(settings, max_segments=15)
    invalid(app.test_client(), {**VALID_BODY, "text": "a" * 1001}, "text")


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"",
        b"[1, 2]",
        b'"text"',
        b"null",
        b"\xff\xfe{}",
        b"[" * 5000 + b"]" * 5000,
        b'{"to": NaN}',
        b'{"to": "+14155550100", "text": Infinity}',
    ],
)
def test_malformed_or_non_object_json_is_a_400(client, raw):
    response = client.post(
        "/send-sms", data=raw, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "body"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_a_415(client, content_type):
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/send-sms", data=json.dumps(VALID_BODY), headers=headers)
    assert response.status_code == 415
    assert response.json["type"].endswith("/unsupported-media-type")


def test_charset_parameter_is_accepted(client, accept):
    response = client.post(
        "/send-sms",
        data=json.dumps(VALID_BODY),
        headers={**AUTH, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_oversized_body_is_a_413(client):
    body = json.dumps({**VALID_BODY, "text": "a" * 17000})
    response = client.post(
        "/send-sms", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json["type"].endswith("/payload-too-large")


def padded_body(size: int) -> bytes:
    """A valid send of exactly `size` bytes: JSON allows whitespace after the value."""
    body = json.dumps(VALID_BODY).encode()
    return body + b" " * (size - len(body))


def post_raw(client, body: bytes, chunked: bool):
    """POST /send-sms with a Content-Length, or chunked as gunicorn hands it over: no
    length, a stream the server ends at the body's end."""
    if not chunked:
        return client.post(
            "/send-sms", data=body, headers={**AUTH, "Content-Type": "application/json"}
        )
    return client.post(
        "/send-sms",
        input_stream=io.BytesIO(body),
        headers={**AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
def test_a_body_of_exactly_16_kib_is_read(client, accept, chunked):
    """16,384 bytes are within the limit, whether sized or chunked."""
    response = post_raw(client, padded_body(16 * 1024), chunked)

    assert response.status_code == 200, response.json


@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
def test_a_body_one_byte_over_16_kib_is_a_413_naming_the_limit(client, chunked):
    response = post_raw(client, padded_body(16 * 1024 + 1), chunked)

    assert response.status_code == 413
    assert response.json["type"].endswith("/payload-too-large")
    assert response.json["detail"] == "The body must be at most 16384 bytes (16 KiB)."


def test_oversized_body_without_content_length_is_a_413(client):
    """A chunked body (no Content-Length) is still cut off at 16 KiB."""
    body = json.dumps({**VALID_BODY, "text": "a" * 40000}).encode()
    response = client.post(
        "/send-sms",
        input_stream=io.BytesIO(body),
        headers={**AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
