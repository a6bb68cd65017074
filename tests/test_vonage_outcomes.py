"""Every Vonage outcome maps to one row of the error table, and only safe failures are retried.

Bodies come from Vonage's own SDK test suites in ../shared/vonage/fixtures.
"""

import json

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from app.vonage.gateway import get_gateway
from tests.conftest import AUTH, UUID, VALID_BODY, VONAGE_SMS_URL, shared_file


def fixture_body(*parts: str) -> dict:
    return json.loads(shared_file("fixtures", *parts).read_text())


def send(client):
    return client.post("/send-sms", json=VALID_BODY, headers=AUTH)


def assert_problem(response, status, slug):
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["type"].endswith("/" + slug)
    assert response.json["status"] == status
    assert response.json["success"] is False
    assert response.json["request_id"] == response.headers["X-Request-ID"]


NON_WHITELISTED = {
    "type": "https://developer.vonage.com/api-errors/messages#1160",
    "title": "Non White-listed Destination",
    "detail": "The destination is not in the whitelist of this trial account.",
    "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf",
}
INVALID_RECIPIENT = {
    "type": "https://developer.nexmo.com/api-errors/messages-olympus#110",
    "title": "Invalid recipient",
    "detail": "The `to` parameter is invalid for the given channel.",
    "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf",
}


@pytest.mark.parametrize(
    ("vonage_status", "fixture", "status", "slug"),
    [
        (402, ("python-sdk", "messages", "low_balance_error.json"), 502, "upstream-account-error"),
        (403, ("python-sdk", "http_client", "403.json"), 502, "upstream-account-error"),
        (422, ("python-sdk", "messages", "invalid_error.json"), 422, "upstream-rejected"),
        (422, ("java-sdk", "messages", "error-422-invalid-channel.json"), 422, "upstream-rejected"),
        (422, ("php-sdk", "messages", "bad-request.json"), 422, "upstream-rejected"),
        (400, ("python-sdk", "http_client", "400.json"), 422, "upstream-rejected"),
        (500, ("python-sdk", "http_client", "500.json"), 502, "upstream-error"),
        (404, ("python-sdk", "messages", "not_found.json"), 502, "upstream-error"),
    ],
)
def test_vonage_fixture_maps_to_the_table_and_is_sent_once(
    client, vonage, vonage_status, fixture, status, slug
):
    vonage.post(VONAGE_SMS_URL, json=fixture_body(*fixture), status=vonage_status)

    response = send(client)

    assert_problem(response, status, slug)
    assert len(vonage.calls) == 1


@pytest.mark.parametrize("body", [NON_WHITELISTED, INVALID_RECIPIENT])
def test_recipient_problems_are_recipient_rejected_with_vonage_detail(client, vonage, body):
    vonage.post(VONAGE_SMS_URL, json=body, status=422)

    response = send(client)

    assert_problem(response, 422, "recipient-rejected")
    assert body["title"] in response.json["detail"]
    assert body["detail"] in response.json["detail"]


def test_invalid_parameter_to_is_recipient_rejected(client, vonage):
    body = {**fixture_body("python-sdk", "messages", "invalid_error.json")}
    body["invalid_parameters"] = [{"name": "to", "reason": "invalid value"}]
    vonage.post(VONAGE_SMS_URL, json=body, status=422)
    assert_problem(send(client), 422, "recipient-rejected")


def test_upstream_rejected_passes_vonage_title_and_detail(client, vonage):
    body = fixture_body("python-sdk", "messages", "invalid_error.json")
    vonage.post(VONAGE_SMS_URL, json=body, status=422)
    detail = send(client).json["detail"]
    assert "Invalid params" in detail and body["detail"] in detail


@pytest.mark.parametrize("vonage_status", [502, 504])
def test_gateway_errors_are_not_retried(client, vonage, vonage_status):
    vonage.post(VONAGE_SMS_URL, body="<html>bad gateway</html>", status=vonage_status)
    assert_problem(send(client), 502, "upstream-error")
    assert len(vonage.calls) == 1


def test_redirects_are_not_followed(client, vonage):
    """Following a redirect would send the POST again: a 3xx is an upstream error, sent once."""
    vonage.post(VONAGE_SMS_URL, status=307, headers={"Location": VONAGE_SMS_URL})
    assert_problem(send(client), 502, "upstream-error")
    assert len(vonage.calls) == 1


def test_unreadable_success_is_an_upstream_error_sent_once(client, vonage):
    vonage.post(VONAGE_SMS_URL, body="not json", status=202)
    assert_problem(send(client), 502, "upstream-error")
    assert len(vonage.calls) == 1


@pytest.mark.parametrize("answer", [{"unexpected": True}, {"message_uuid": ""}, ["x"], 7])
def test_success_without_message_uuid_is_an_upstream_error(client, vonage, answer):
    vonage.post(VONAGE_SMS_URL, json=answer, status=202)
    assert_problem(send(client), 502, "upstream-error")
    assert len(vonage.calls) == 1


def test_account_errors_are_logged_at_error_with_a_hint(client, vonage, capsys):
    vonage.post(
        VONAGE_SMS_URL,
        json=fixture_body("python-sdk", "messages", "low_balance_error.json"),
        status=402,
    )
    send(client)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert errors and "top up" in errors[0]["hint"]


def test_401_is_retried_once_with_a_fresh_token(client, vonage):
    """A 401 means nothing was accepted: one more try with a new JWT, then 502."""
    body = fixture_body("python-sdk", "http_client", "401.json")
    vonage.post(VONAGE_SMS_URL, json=body, status=401)
    vonage.post(VONAGE_SMS_URL, json=body, status=401)

    assert_problem(send(client), 502, "upstream-account-error")
    tokens = [call.request.headers["Authorization"] for call in vonage.calls]
    assert len(tokens) == 2 and tokens[0] != tokens[1]


def test_401_then_success_with_the_fresh_token(client, vonage):
    vonage.post(
        VONAGE_SMS_URL, json=fixture_body("python-sdk", "http_client", "401.json"), status=401
    )
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    assert send(client).status_code == 200


def connection_refused() -> requests.ConnectionError:
    """What requests raises when nothing listens on Vonage's port."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.ConnectionError(MaxRetryError(None, VONAGE_SMS_URL, reason))


THROTTLED = ("php-sdk", "messages", "rate-limit.json")


@pytest.mark.parametrize(
    "failure",
    [
        {"json": THROTTLED, "status": 429},
        {"json": ("python-sdk", "http_client", "429.json"), "status": 429},
        {"json": None, "status": 503},
        {"body": "refused"},
    ],
)
def test_safe_failures_are_retried_then_503(app, client, vonage, failure):
    """429, 503 and no connection: 1 + VONAGE_MAX_RETRIES attempts, then upstream-unavailable."""
    for _ in range(3):
        if "body" in failure:
            vonage.post(VONAGE_SMS_URL, body=connection_refused())
        else:
            body = fixture_body(*failure["json"]) if failure["json"] else {"title": "Unavailable"}
            vonage.post(VONAGE_SMS_URL, json=body, status=failure["status"])

    response = send(client)

    assert_problem(response, 503, "upstream-unavailable")
    assert int(response.headers["Retry-After"]) >= 1
    assert len(app.extensions["sleeps"]) == 2
    attempts = len(vonage.calls)
    assert attempts == 3


def test_throttled_once_then_sent(app, client, vonage):
    vonage.post(VONAGE_SMS_URL, json=fixture_body(*THROTTLED), status=429)
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)

    response = send(client)

    assert response.status_code == 200
    assert len(vonage.calls) == 2


def test_backoff_is_exponential_with_full_jitter(app, client, vonage):
    for _ in range(3):
        vonage.post(VONAGE_SMS_URL, json={}, status=503)
    send(client)
    first, second = app.extensions["sleeps"]
    assert 0 <= first <= 0.25 and 0 <= second <= 0.5


def test_retry_after_is_honoured(app, client, vonage):
    vonage.post(VONAGE_SMS_URL, json={}, status=429, headers={"Retry-After": "3"})
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)

    assert send(client).status_code == 200
    assert app.extensions["sleeps"] == [3]


def test_retry_after_past_the_deadline_gives_up_at_once(app, client, vonage):
    """Waiting 30 s would pass the 10 s deadline: answer 503 now, and pass the wait on."""
    vonage.post(VONAGE_SMS_URL, json={}, status=429, headers={"Retry-After": "30"})

    response = send(client)

    assert_problem(response, 503, "upstream-unavailable")
    assert response.headers["Retry-After"] == "30"
    assert app.extensions["sleeps"] == []


def test_no_retries_when_configured_so(make_app, settings, vonage):
    app = make_app(settings, vonage_max_retries=0)
    vonage.post(VONAGE_SMS_URL, json={}, status=503)
    assert_problem(send(app.test_client()), 503, "upstream-unavailable")
    assert len(vonage.calls) == 1


@pytest.mark.parametrize(
    "failure",
    [requests.ReadTimeout("read timed out"), requests.ConnectionError("Connection aborted.")],
)
def test_lost_answers_are_504_and_never_retried(app, client, vonage, failure):
    """After the request left, the outcome is unknown: never risk a second SMS."""
    vonage.post(VONAGE_SMS_URL, body=failure)

    response = send(client)

    assert_problem(response, 504, "upstream-timeout")
    assert "may or may not" in response.json["detail"]
    assert len(vonage.calls) == 1
    assert app.extensions["sleeps"] == []


def test_unhandled_exception_is_a_bare_500(make_app, settings, monkeypatch, capsys):
    app = make_app(settings)
    app.config.update(PROPAGATE_EXCEPTIONS=False)

    def explode(message):
        raise RuntimeError(f"boom with secret text for {message.to}")

    monkeypatch.setattr(get_gateway(app), "send", explode)
    response = app.test_client().post("/send-sms", json=VALID_BODY, headers=AUTH)

    assert_problem(response, 500, "internal-error")
    assert "boom" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    logged = capsys.readouterr()
    crash = next(
        json.loads(line)
        for line in logged.out.splitlines()
        if json.loads(line)["event"] == "unhandled exception"
    )
    assert (crash["exception"], crash["route"]) == ("RuntimeError", "/send-sms")
    assert any("explode" in frame for frame in crash["stack"])
    assert "boom" not in logged.out + logged.err
    assert "4155550100" not in logged.out + logged.err
