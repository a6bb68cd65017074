"""The whole loop: send → the emulator posts signed receipts → the record shows `delivered`;
an inbound STOP through the emulator → the next send is refused and nothing is sent."""

import time

import pytest
import requests

from emulator.magic import number_for
from tools.emulator_client import EmulatorClient
from tools.stack import wired_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loop(credentials):
    with wired_stack(credentials, emulator_env={"EMULATOR_WEBHOOK_DELAY_MS": "50"}) as stack:
        yield stack


def wait_for_status(service, api_key, message_uuid, wanted, timeout_s=10) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        record = requests.get(
            f"{service.url}/messages/{message_uuid}", headers={"X-API-Key": api_key}, timeout=5
        ).json()
        if record.get("status") == wanted or time.monotonic() > deadline:
            return record
        time.sleep(0.1)


def send(service, api_key, to):
    return requests.post(
        f"{service.url}/send-sms",
        json={"to": to, "text": "loop"},
        headers={"X-API-Key": api_key},
        timeout=10,
    )


def test_receipts_reach_the_record(loop, credentials):
    _, service = loop
    sent = send(service, credentials.api_key, "+14155550123")
    assert sent.status_code == 200
    message_uuid = sent.json()["message_uuid"]

    record = wait_for_status(service, credentials.api_key, message_uuid, "delivered")

    assert record["status"] == "delivered"
    assert [h["status"] for h in record["history"]] == ["accepted", "submitted", "delivered"]
    assert record["price"] and record["currency"] == "EUR"


def test_rejected_receipt_carries_the_error(loop, credentials):
    _, service = loop
    sent = send(service, credentials.api_key, "+" + number_for("rejected"))
    record = wait_for_status(service, credentials.api_key, sent.json()["message_uuid"], "rejected")
    assert record["status"] == "rejected"
    assert record["error"]["code"] == "1250"


def test_inbound_stop_blocks_the_next_send(loop, credentials):
    emulator, service = loop
    upstream = EmulatorClient(emulator.url, credentials.ca)
    number = "14155550177"
    assert upstream.inbound(number, "STOP").status_code == 202
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        opt_out = requests.get(
            f"{service.url}/opt-outs/+{number}",
            headers={"X-API-Key": credentials.api_key},
            timeout=5,
        ).json()
        if opt_out["opted_out"]:
            break
        time.sleep(0.1)
    before = upstream.stats()["requests"]

    refused = send(service, credentials.api_key, "+" + number)

    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/recipient-opted-out")
    assert upstream.stats()["requests"] == before
    upstream.close()
