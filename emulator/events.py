"""Webhook bodies shaped as the spec's messageStatusSMS and inboundMessageSMS schemas."""

from __future__ import annotations

import datetime as dt
import uuid

from emulator.magic import Outcome

PRICE_PER_SEGMENT = 0.0333  # EUR, the spec's example price
ERROR_DOCS = "https://developer.nexmo.com/api-errors/messages-olympus"


def iso_now() -> str:
    """Stamp an event the way Vonage does: ISO 8601 UTC with milliseconds and a Z."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_events(message: dict[str, object], outcome: Outcome) -> list[dict[str, object]]:
    """Build the status webhooks for one accepted message: submitted, then its final status."""
    return [_status(message, "submitted"), _status(message, outcome.final_status, outcome)]


def inbound_sms(sender: str, text: str, to: str) -> dict[str, object]:
    """Build the inbound-message webhook for an SMS a phone sent to our number."""
    words = text.split()
    return {
        "channel": "sms",
        "message_uuid": str(uuid.uuid4()),
        "to": to,
        "from": sender.lstrip("+"),
        "timestamp": iso_now(),
        "text": text,
        "sms": {"num_messages": "1", "keyword": words[0].upper() if words else ""},
    }


def _status(
    message: dict[str, object], status: str, outcome: Outcome | None = None
) -> dict[str, object]:
    event: dict[str, object] = {
        "message_uuid": message["message_uuid"],
        "to": message["to"],
        "from": message["from"],
        "timestamp": iso_now(),
        "status": status,
        "channel": "sms",
    }
    if message.get("client_ref") is not None:
        event["client_ref"] = message["client_ref"]  # "present in every message status"
    if status == "delivered":
        price = PRICE_PER_SEGMENT * int(str(message["segments"]))
        event["usage"] = {"currency": "EUR", "price": f"{price:.4f}"}
    if outcome is not None and outcome.error_code:
        event["error"] = {
            "type": f"{ERROR_DOCS}#{outcome.error_code}",
            "title": outcome.error_code,  # the spec types the code as a string
            "detail": outcome.error_detail,
            "instance": str(uuid.uuid4()),
        }
    event["sms"] = {"count_total": str(message["segments"])}
    return event
