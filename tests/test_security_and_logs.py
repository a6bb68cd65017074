"""Security headers on every answer, request ids, and logs with no secret, text or number."""

import json
import re
from pathlib import Path

import pytest
import requests

from app.web.security_headers import SECURITY_HEADERS
from tests.conftest import AUTH, SECRET_A, SECRET_B, UUID, VALID_BODY, VONAGE_SMS_URL

ROOT = Path(__file__).resolve().parents[1]
SECRET_TEXT = "Your one-time code is 834201, keep it private"
ARABIC_INDIC_NUMBER = "".join(chr(0x0660 + int(digit)) for digit in "4155550190")


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/health", {}),
        ("post", "/send-sms", {"json": {}}),
        ("post", "/send-sms", {"json": {}, "headers": AUTH}),
        ("get", "/nowhere", {}),
        ("delete", "/health", {}),
    ],
)
def test_every_response_carries_the_security_headers(client, method, path, kwargs):
    response = getattr(client, method)(path, **kwargs)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "storage": "ok", "store": "memory", "writable": True}


@pytest.mark.parametrize("path_info", ["//health", "///health", "/health//", "//send-sms"])
def test_a_path_with_an_empty_segment_is_a_404_logged_as_unmatched(client, capsys, path_info):
    """As gunicorn passes `//health` (werkzeug's router would drop the leading slashes)."""
    response = client.get("/health", environ_overrides={"PATH_INFO": path_info})

    assert (response.status_code, response.json["type"].split("/")[-1]) == (404, "not-found")
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (line["status"], line["error"]) == (404, "not-found")


def test_unknown_route_and_method_are_problems(client):
    missing = client.get("/nowhere")
    assert (missing.status_code, missing.json["type"].split("/")[-1]) == (404, "not-found")
    wrong = client.get("/send-sms")
    assert (wrong.status_code, wrong.json["type"].split("/")[-1]) == (405, "method-not-allowed")
    assert "POST" in wrong.headers["Allow"]
    assert wrong.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("presented", "echoed"),
    [
        ("abc-123_X.y", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("bad id", False),
        ("<script>", False),
        ("", False),
    ],
)
def test_request_id_is_echoed_only_when_well_formed(client, presented, echoed):
    response = client.get("/health", headers={"X-Request-ID": presented})
    assert (response.headers["X-Request-ID"] == presented) is echoed
    assert 1 <= len(response.headers["X-Request-ID"]) <= 128


def run_everything(make_app, settings, vonage):
    """A run of requests touching every path that logs: success and each kind of failure."""
    app = make_app(settings, recipient_rate_limit="2 per minute")
    client = app.test_client()
    body = {**VALID_BODY, "text": SECRET_TEXT}
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    vonage.post(
        VONAGE_SMS_URL, json={"title": "Invalid recipient", "detail": "bad `to`"}, status=422
    )
    vonage.post(VONAGE_SMS_URL, json={"title": "Unauthorized"}, status=401)
    vonage.post(VONAGE_SMS_URL, json={"title": "Unauthorized"}, status=401)
    vonage.post(VONAGE_SMS_URL, body=requests.ReadTimeout("slow"))
    for _ in range(3):
        vonage.post(VONAGE_SMS_URL, json={"title": "Rate Limit Hit"}, status=429)
    numbers = [
        "+14155550100",
        "+14155550100",
        "+442071838750",
        "+442071838750",
        "+33142685300",
        "+4930901820",
    ]
    for number in numbers:
        client.post("/send-sms", json={**body, "to": number}, headers=AUTH)
    client.post("/send-sms", json={**body, "ttl": 1}, headers=AUTH)
    client.post("/send-sms", json=body, headers={"X-API-Key": SECRET_B + "wrong"})
    client.post("/send-sms", json={**body, "message": SECRET_TEXT}, headers=AUTH)
    client.post("/send-sms", data=SECRET_TEXT, content_type="text/plain", headers=AUTH)


def test_logs_hold_no_secret_text_or_full_number(
    make_app, settings, vonage, capsys, private_key_pem
):
    run_everything(make_app, settings, vonage)
    tokens = [call.request.headers["Authorization"].decode().split()[1] for call in vonage.calls]

    out = capsys.readouterr()
    logged = out.out + out.err
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert len([line for line in lines if line["event"] == "request"]) == 10
    forbidden = [
        SECRET_TEXT,
        "834201",
        SECRET_A,
        SECRET_B,
        "14155550100",
        "4155550100",
        "442071838750",
        "2071838750",
        "33142685300",
        "4930901820",
        private_key_pem.splitlines()[1],
        *tokens,
    ]
    for value in forbidden:
        assert value not in logged


def test_request_log_line_has_the_fields(client, accept, capsys):
    client.post("/send-sms", json=VALID_BODY, headers={**AUTH, "X-Request-ID": "req-1"})
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["request_id"] == "req-1"
    assert line["level"] == "INFO"
    assert line["time"].endswith("+00:00")
    assert (line["method"], line["path"], line["status"]) == ("POST", "/send-sms", 200)
    assert (line["api_key"], line["to"], line["segments"]) == ("alpha", "+1********00", 1)
    assert line["message_uuid"] == UUID
    assert line["duration_ms"] >= 0


def test_the_operations_guide_names_the_fields_of_the_request_log(client, accept, capsys):
    """docs/operations.md's security notes list exactly the fields a request's log line can
    carry (`path`, not `route`)."""
    notes = (ROOT / "docs" / "operations.md").read_text()
    bullet = notes[notes.index("- Logs: one JSON line per request") :].split("\n- ")[0]
    documented = set(re.findall(r"`([a-z_]+)`", bullet)) - {"request"}  # the event's value
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    client.post("/send-sms", json=VALID_BODY, headers={**AUTH, "traceparent": traceparent})
    client.post("/send-sms", json={}, headers=AUTH)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()[-2:]]
    assert documented == set(lines[0]) | set(lines[1])


def test_error_slug_is_logged(client, capsys):
    client.post("/send-sms", json={}, headers=AUTH)
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["error"] == "validation-error"
    assert "to" not in line


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/messages/+14155550100/extra", "/messages/+***********/extra"),
        ("/opt-outs/+1-415-555-0190/x", "/opt-outs/+*-***-***-****/x"),
        ("/opt-outs/1.415.555.0190/x", "/opt-outs/*.***.***.****/x"),
        ("/opt-outs/(415) 555 0190/x", "/opt-outs/(***) *** ****/x"),
        (f"/opt-outs/{ARABIC_INDIC_NUMBER}/x", "/opt-outs/**********/x"),
    ],
)
def test_unmatched_paths_are_logged_with_every_digit_masked(client, capsys, path, logged):
    """However a number is split or spelled, no digit of an unmatched path is logged."""
    client.get(path)
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (line["status"], line["path"]) == (404, logged)


def test_an_unusual_method_is_logged_as_other(client, capsys):
    """gunicorn accepts any method of capitals and digits: it may carry a number."""
    response = client.open("/health", method="G14155550172T")

    out = capsys.readouterr().out
    assert response.status_code == 405
    assert json.loads(out.splitlines()[-1])["method"] == "OTHER"
    assert "14155550172" not in out


def test_vonage_sdk_never_logs_at_debug(make_app, settings):
    import logging

    make_app(settings, log_level="DEBUG")
    assert not logging.getLogger("vonage").isEnabledFor(logging.DEBUG)
