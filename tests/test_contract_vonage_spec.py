"""What we send to Vonage, and how we read its errors, checked against Vonage's own spec.

The spec (Messages API 1.4.0, January 2023) has known defects, listed in
../shared/vonage/README.md; each patch below names the one it works around.
"""

import itertools
import json

import pytest

from tests.conftest import AUTH, UUID, VALID_BODY, VONAGE_SMS_URL
from tests.vonage_spec import SMS_REQUEST, component, example_of, load_spec, validator


@pytest.fixture(scope="module")
def sms_request_validator():
    spec = load_spec()
    schemas = spec["components"]["schemas"]
    # Defect 1: `message` is a v0.1 field that no v1 client sends.
    schemas["baseMessageType"]["required"].remove("message")
    # Stricter than the spec's words, which only describe these rules in prose:
    schemas["ToNumber"]["pattern"] = r"^[1-9][0-9]{6,14}$"  # "Don't use a leading + or 00"
    schemas["FromNumber"]["pattern"] = r"^([1-9][0-9]{6,14}|[A-Za-z0-9 ]{1,11})$"
    schemas["Text"]["allOf"][1]["properties"]["text"]["maxLength"] = 1000  # "limited to 1000"
    # Newer fields the 1.4.0 file lacks, as the current reference documents them.
    schemas["channelOptionsSms"]["properties"].update(
        {
            "ttl": {"type": "integer", "minimum": 20, "maximum": 604800},
            "sms": {
                "type": "object",
                "properties": {"encoding_type": {"enum": ["text", "unicode", "auto"]}},
                "additionalProperties": False,
            },
        }
    )
    return validator(spec, SMS_REQUEST)


OPTIONAL = {
    "from": ["MyBrand", "+14155550199"],
    "client_ref": ["order-1", "r" * 100],
    "ttl": [20, 604800],
    "encoding": ["auto", "text", "unicode"],
    "smart_encoding": [True],
}


def combinations():
    names = list(OPTIONAL)
    for size in range(len(names) + 1):
        for chosen in itertools.combinations(names, size):
            for values in itertools.product(*(OPTIONAL[name] for name in chosen)):
                yield dict(zip(chosen, values, strict=True))


def test_every_request_body_we_send_matches_the_spec(
    make_app, settings, vonage, sms_request_validator
):
    app = make_app(
        settings,
        allowed_senders=("MyBrand", "+14155550199"),
        rate_limit="10000 per minute",
        recipient_rate_limit="10000 per minute",
    )
    client = app.test_client()
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    cases = list(combinations())
    texts = ["Hello", "Grüße 😀", "x" * 400]  # 400: 3 GSM-7 or 6 UCS-2 segments

    for number, extra in enumerate(cases):
        body = {**VALID_BODY, "text": texts[number % len(texts)], **extra}
        if body.get("encoding") == "text" and not body["text"].isascii():
            body["text"] = "Hello"
        response = client.post("/send-sms", json=body, headers=AUTH)
        assert response.status_code == 200, (body, response.json)

    assert len(vonage.calls) == len(cases) > 100
    for call in vonage.calls:
        sent = json.loads(call.request.body)
        errors = list(sms_request_validator.iter_errors(sent))
        assert errors == [], (sent, [e.message for e in errors])


def test_the_patched_schema_still_catches_a_bad_body(sms_request_validator):
    """The validator is not vacuous: a leading + and a missing channel fail."""
    bad = {"to": "+14155550100", "from": "447700900000", "text": "x", "message_type": "text"}
    messages = [error.message for error in sms_request_validator.iter_errors(bad)]
    assert messages


ERROR_EXAMPLES = [
    # (HTTP status, spec schema, our status, our slug, Vonage calls made)
    (401, "ErrorUnauthorizedMissingCredentials", 502, "upstream-account-error", 2),
    (401, "ErrorUnauthorizedInvalidApplication", 502, "upstream-account-error", 2),
    (402, "ErrorPaymentRequired", 502, "upstream-account-error", 1),
    (422, "ErrorInvalidJson", 422, "upstream-rejected", 1),
    (422, "ErrorChannel", 422, "upstream-rejected", 1),
    (422, "ErrorChannelParams", 422, "upstream-rejected", 1),
    (422, "ErrorSender", 422, "upstream-rejected", 1),
    (422, "ErrorRecipient", 422, "recipient-rejected", 1),
    (422, "ErrorMessageType", 422, "upstream-rejected", 1),
    (422, "ErrorMessageParams", 422, "upstream-rejected", 1),
    (422, "ErrorClientReference", 422, "upstream-rejected", 1),
    (429, "ErrorThrottled", 503, "upstream-unavailable", 3),
    (500, "ErrorInternal", 502, "upstream-error", 1),
]


def test_the_table_covers_every_error_the_spec_lists():
    spec = load_spec()
    responses = spec["paths"]["/"]["post"]["responses"]
    listed = set()
    for status, response in responses.items():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        for ref in schema.get("oneOf", [schema]):
            if ref.get("$ref", "").split("/")[-1].startswith("Error"):
                listed.add((int(status), ref["$ref"].split("/")[-1]))
    assert listed == {(status, name) for status, name, *_ in ERROR_EXAMPLES}


@pytest.mark.parametrize(("vonage_status", "schema", "status", "slug", "calls"), ERROR_EXAMPLES)
def test_each_spec_error_example_maps_to_our_table(
    client, vonage, vonage_status, schema, status, slug, calls
):
    spec = load_spec()
    body = example_of(spec, schema)
    assert body["title"]
    for _ in range(calls):
        vonage.post(VONAGE_SMS_URL, json=body, status=vonage_status)

    response = client.post("/send-sms", json=VALID_BODY, headers=AUTH)

    assert response.status_code == status
    assert response.json["type"].endswith("/" + slug)
    assert len(vonage.calls) == calls
    errors = list(validator(spec, component(schema)).iter_errors(body))
    assert [e for e in errors if "details" not in e.message] == []  # defect 4: `details` typo
