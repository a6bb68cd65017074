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
        ({"text": "\u200b\u200b"}, "text"),  # issue 11, item 13: an invisible SMS
        ({"text": " \u00ad ", "smart_encoding": True}, "text"),  # blank once smart-encoded
        ({"text": "\u200b\u200b", "smart_encoding": True}, "text"),  # empty once smart-encoded
        ({"text": "\ufeff\u2060\u200d \u00a0\u3000\u202e"}, "text"),  # Cf and odd spaces
        ({"from": "+19999999999"}, "from"),
        ({"from": 447700900000}, "from"),
        ({"client_ref": "x" * 101}, "client_ref"),
        ({"client_ref": 7}, "client_ref"),
        ({"client_ref": "line\nbreak"}, "client_ref"),
        # issue 11, item 16: DEL, C1, line separators, bidi and zero-width characters
        ({"client_ref": "order\x7f42"}, "client_ref"),
        ({"client_ref": "order\x8542"}, "client_ref"),
        ({"client_ref": "order\u202842"}, "client_ref"),
        ({"client_ref": "order\u202942"}, "client_ref"),
        ({"client_ref": "order-\u202e24"}, "client_ref"),
        ({"client_ref": "order-\u206642"}, "client_ref"),
        ({"client_ref": "order\u200b42"}, "client_ref"),
        ({"client_ref": "bad \ud800 surrogate"}, "client_ref"),
        ({"text": "nul \x00 byte"}, "text"),
        ({"text": "bell \x07"}, "text"),
        ({"text": "escape \x1b[31m"}, "text"),
        ({"text": "vertical \x0b tab"}, "text"),
        ({"text": "del \x7f"}, "text"),
        ({"text": "c1 \x9b"}, "text"),
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


@pytest.mark.parametrize(
    "text", ["\u200bhi", "👍🏽", "👨\u200d👩\u200d👧", "\u05e9\u05dc\u05d5\u05dd\u200f"]
)
def test_texts_with_a_visible_character_are_sent(client, accept, text):
    """Format characters beside visible ones are fine (emoji joiners, bidi marks)."""
    assert (
        client.post("/send-sms", json={**VALID_BODY, "text": text}, headers=AUTH).status_code == 200
    )


def test_tab_newline_carriage_return_and_form_feed_are_allowed_in_text(client, accept):
    """SMS carry line breaks (and GSM-7 a form feed); a tab is sent too (as UCS-2)."""
    body = {**VALID_BODY, "text": "Line 1\r\nLine 2\n\tindented\fnext page"}
    assert client.post("/send-sms", json=body, headers=AUTH).status_code == 200


@pytest.mark.parametrize("client_ref", ["order-42", "café/42 €", "注文-42", "👍"])
def test_printable_client_refs_are_passed(client, accept, client_ref):
    body = {**VALID_BODY, "client_ref": client_ref}
    assert client.post("/send-sms", json=body, headers=AUTH).status_code == 200


def test_every_bad_field_is_named_at_once(client):
    response = invalid(client, {"to": "nope", "text": "", "ttl": 1, "message": "x"}, "to")
    assert {e["field"] for e in response.json["errors"]} == {"to", "text", "ttl", "message"}


def test_unknown_fields_are_named_a_few_and_cut_short(client):
    """Many long unknown names get a small answer: the first three, cut to 32 characters,
    and a count of the rest (every name was echoed twice: a 40 KB answer, kept 24 h)."""
    names = [f"{n:03d}" + "x" * 57 for n in range(200)]
    body = {**VALID_BODY, **dict.fromkeys(names, 1)}
    assert len(json.dumps(body)) < 16 * 1024

    response = invalid(client, body, "body")

    assert len(response.get_data()) < 1024
    assert response.json["errors"] == [
        *({"field": name[:31] + "…", "message": "is not a known field"} for name in names[:3]),
        {"field": "body", "message": "holds 197 more unknown field(s)"},
    ]


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


@pytest.mark.parametrize(
    "raw",
    [
        b'{"to": "+14155550100", "to": "+442071838750", "text": "hi"}',
        b'{"to": "+14155550100", "text": "hi", "text": "other"}',
        b'{"to": "+14155550100", "text": "hi", "client_ref": "a", "client_ref": null}',
    ],
)
def test_duplicate_keys_are_a_400(client, raw):
    """Issue 11, item 14: with a key twice, json keeps the last one and a proxy or logger
    may have read the first; the body is refused instead. Vonage is not called."""
    response = client.post(
        "/send-sms", data=raw, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json["type"].endswith("/validation-error")
    [error] = response.json["errors"]
    assert error["field"] == "body" and "more than once" in error["message"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_a_415(client, content_type):
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/send-sms", data=json.dumps(VALID_BODY), headers=headers)
    assert response.status_code == 415
    assert response.json["type"].endswith("/unsupported-media-type")


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8", '"utf-8"'])
def test_charset_utf8_is_accepted(client, accept, charset):
    response = client.post(
        "/send-sms",
        data=json.dumps(VALID_BODY),
        headers={**AUTH, "Content-Type": f"application/json; charset={charset}"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("charset", ["utf-16", "UTF-32", "iso-8859-1", "us-ascii"])
def test_a_charset_other_than_utf8_is_a_415(client, charset):
    """Issue 11, item 15: only UTF-8 is read; a declared charset must say so."""
    response = client.post(
        "/send-sms",
        data=json.dumps(VALID_BODY),
        headers={**AUTH, "Content-Type": f"application/json; charset={charset}"},
    )
    assert response.status_code == 415
    assert response.json["type"].endswith("/unsupported-media-type")
    assert "UTF-8" in response.json["detail"]


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-8-sig"]
)
def test_bodies_not_in_plain_utf8_are_a_400_that_says_utf8(client, encoding):
    """Issue 11, item 15: json.loads guessed UTF-16 and UTF-32 (with or without a BOM) and
    skipped a UTF-8 BOM; Vonage is not called."""
    raw = json.dumps(VALID_BODY).encode(encoding)
    response = client.post(
        "/send-sms", data=raw, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    [error] = response.json["errors"]
    assert error["field"] == "body" and "UTF-8" in error["message"]


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
