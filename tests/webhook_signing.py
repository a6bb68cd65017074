"""Sign webhooks in tests as Vonage does: HS256 over claims with the body's SHA-256."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import jwt

SIGNATURE_SECRET = "webhook-signature-secret-0123456789abcdef"
OLD_SECRET = "previous-signature-secret-0123456789abcdef"


def sign(body: bytes, secret: str = SIGNATURE_SECRET, **claims) -> str:
    payload = {
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret, algorithm="HS256")


def signed_post(client, path: str, body: dict, secret: str = SIGNATURE_SECRET, **claims):
    raw = json.dumps(body).encode()
    return client.post(
        path,
        data=raw,
        headers={
            "Authorization": f"Bearer {sign(raw, secret, **claims)}",
            "Content-Type": "application/json",
        },
    )


def status_body(message_uuid: str, status: str, timestamp: str, **extra) -> dict:
    return {
        "message_uuid": message_uuid,
        "to": "14155550100",
        "from": "447700900000",
        "timestamp": timestamp,
        "status": status,
        "channel": "sms",
        **extra,
    }


def inbound_body(sender: str, text: str) -> dict:
    return {
        "channel": "sms",
        "message_uuid": str(uuid.uuid4()),
        "to": "447700900000",
        "from": sender,
        "timestamp": "2026-01-01T10:00:00Z",
        "text": text,
        "sms": {"num_messages": "1", "keyword": text.split()[0].upper() if text.split() else ""},
    }
