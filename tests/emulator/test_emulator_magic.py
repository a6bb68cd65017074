"""Magic recipient numbers: each triggers its documented outcome over real HTTPS."""

from __future__ import annotations

import json
import time

import pytest
import requests

from emulator.magic import number_for

pytestmark = pytest.mark.slow  # starts a real emulator process


@pytest.mark.parametrize(
    ("outcome", "status", "title"),
    [
        ("non-whitelisted", 422, "Non White-listed Destination"),
        ("invalid-recipient", 422, "Invalid recipient"),
        ("low-balance", 402, "Low balance"),
        ("bad-credentials", 401, "Unauthorized"),
        ("throttled-always", 429, "Rate Limit Hit"),
        ("internal-error", 500, "Internal error"),
        ("service-unavailable", 503, "Service Unavailable"),
    ],
)
def test_error_numbers_answer_with_vonage_problem(emulator, sms, outcome, status, title):
    """Each error number gets its status and a Vonage problem body; nothing is recorded."""
    to = number_for(outcome)
    response = emulator.send(sms(to=to))

    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"type", "title", "detail", "instance"}
    assert body["title"] == title
    assert body["detail"] and body["type"].startswith("https://developer.")
    assert emulator.get("/_emulator/messages").json() == []
    assert emulator.stats()["attempts"] == {to: 1}


def test_non_whitelisted_points_to_the_dashboard(emulator, sms):
    """The whitelist error carries Vonage's code 1160 and says where to fix it."""
    body = emulator.send(sms(to=number_for("non-whitelisted"))).json()
    assert body["type"].endswith("/api-errors/messages#1160")
    assert "whitelist" in body["detail"] and "Dashboard" in body["detail"]


def test_invalid_recipient_uses_the_spec_wording(emulator, sms):
    """The invalid-recipient body is the spec's ErrorRecipient example."""
    body = emulator.send(sms(to=number_for("invalid-recipient"))).json()
    assert body["detail"] == "The `to` parameter is invalid for the given channel."


@pytest.mark.parametrize(
    ("outcome", "fixture"),
    [
        ("low-balance", "python-sdk/messages/low_balance_error.json"),
        ("bad-credentials", "python-sdk/http_client/401.json"),
        ("throttled-always", "python-sdk/http_client/429.json"),
    ],
)
def test_error_bodies_match_vonage_fixtures(emulator, sms, vonage_contract, outcome, fixture):
    """title and detail are Vonage's own, as in the SDK's recorded responses."""
    expected = json.loads((vonage_contract / "fixtures" / fixture).read_text())
    body = emulator.send(sms(to=number_for(outcome))).json()
    assert (body["title"], body["detail"]) == (expected["title"], expected["detail"])


def test_throttled_once_then_accepted_until_reset(emulator, sms):
    """The first request is a 429, the retry a 202; a reset re-arms the throttle."""
    to = number_for("throttled-once")
    assert emulator.send(sms(to=to)).status_code == 429
    assert emulator.send(sms(to=to)).status_code == 202
    assert emulator.send(sms(to=to)).status_code == 202
    assert emulator.stats()["attempts"] == {to: 3}
    emulator.reset()
    assert emulator.send(sms(to=to)).status_code == 429


def test_drop_closes_the_connection_without_an_answer(emulator, sms):
    """The client sees the connection close; the request was counted but not accepted."""
    to = number_for("drop")
    with pytest.raises(requests.ConnectionError, match=r"RemoteDisconnected|without response"):
        emulator.send(sms(to=to), timeout=5)
    stats = emulator.stats()
    assert stats["attempts"] == {to: 1}
    assert (stats["requests"], stats["accepted"]) == (1, 0)


def test_hang_sends_nothing_before_the_client_gives_up(emulator, sms):
    """A 1 s client timeout expires; the request is counted, not accepted."""
    to = number_for("hang")
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        emulator.send(sms(to=to), timeout=1)
    assert time.monotonic() - started >= 1
    stats = emulator.stats()
    assert stats["attempts"] == {to: 1}
    assert stats["accepted"] == 0


@pytest.mark.parametrize("outcome", ["rejected", "undeliverable"])
def test_failing_delivery_numbers_are_still_accepted(emulator, sms, outcome):
    """Delivery failures show only in webhooks: the send itself is a 202 and recorded."""
    response = emulator.send(sms(to=number_for(outcome)))
    assert response.status_code == 202
    assert emulator.stats()["accepted"] == 1


def test_errors_before_the_magic_still_win(emulator, sms):
    """A magic number in an invalid body is a 422 about the body; the attempt still counts."""
    to = number_for("throttled-once")
    assert emulator.send(sms(to=to, text="")).status_code == 422
    assert emulator.send(sms(to=to)).status_code == 429  # the throttle was not used up
    assert emulator.stats()["attempts"] == {to: 2}


def test_latency_delays_every_answer(start_emulator, sms):
    """--latency-ms holds each /v1/messages answer, errors included."""
    slow = start_emulator("--latency-ms", "300")
    for to, status in (("442079460123", 202), (number_for("low-balance"), 402)):
        started = time.monotonic()
        assert slow.send(sms(to=to)).status_code == status
        assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    slow.get("/_emulator/stats")
    assert time.monotonic() - started < 0.3  # inspection is not slowed down
