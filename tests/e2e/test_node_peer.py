"""End to end: the benchmark's Node/Express peer sends through the emulator over real TLS.

Needs node 20+ and the peer's node_modules, which `make bench` installs (`npm ci` in
bench/node_peer); skipped with the reason otherwise: tests never run npm.
"""

from __future__ import annotations

import pytest
import requests

from bench import node
from tools.emulator_client import EmulatorClient
from tools.stack import running

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def peer(credentials, emulator):
    reason = node.unavailable_reason()
    if reason:
        pytest.skip(f"node peer unavailable: {reason}")
    if node.needs_install():
        pytest.skip("bench/node_peer/node_modules is not installed: run `npm ci` there")
    with running(node.start_peer(credentials, emulator)) as process:
        yield process


def test_the_peer_sends_one_sms_that_the_emulator_accepts(peer, credentials, emulator):
    """200 {success, message_uuid}, and the emulator holds that very message, as sent."""
    upstream = EmulatorClient(emulator.url, credentials.ca)

    response = requests.post(
        peer.url + "/send-sms", json={"to": node.PEER_TO, "text": "Hello from Express"}, timeout=30
    )

    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    sent = [m for m in upstream.messages() if m["message_uuid"] == response.json()["message_uuid"]]
    assert [(m["to"], m["from"], m["text"]) for m in sent] == [
        (node.PEER_TO, "+447700900000", "Hello from Express")
    ]
    upstream.close()


@pytest.mark.parametrize("body", [{"to": node.PEER_TO}, {"text": "no number"}, {}])
def test_the_peer_checks_only_that_to_and_text_are_present(peer, body):
    response = requests.post(peer.url + "/send-sms", json=body, timeout=30)

    assert response.status_code == 400
    assert response.json()["success"] is False


def test_the_peer_answers_500_when_vonage_refuses(peer):
    """A number with + is forwarded untouched; Vonage (the emulator) answers 422: a 500 here."""
    response = requests.post(
        peer.url + "/send-sms", json={"to": "+14155550100", "text": "hi"}, timeout=30
    )

    assert response.status_code == 500
    assert response.json() == {"success": False, "error": "failed to send SMS"}
