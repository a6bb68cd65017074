"""Check an SMS request body as the Messages API does, naming every bad field."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from emulator import problems
from emulator.problems import Problem

TO_PATTERN = re.compile(r"[1-9][0-9]{6,14}")  # E.164 without + or 00, as the SDK's PhoneNumber
MAX_TEXT = 1000  # characters, per the spec's `text` description
MAX_CLIENT_REF = 100
TTL_RANGE = (20, 604800)
ENCODING_TYPES = ("text", "unicode", "auto")
WEBHOOK_VERSIONS = ("v0.1", "v1")


def parse_body(raw: bytes) -> dict[str, object] | Problem:
    """Decode the body into a JSON object, or return the invalid-json problem."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return problems.invalid_json("The request body is not UTF-8.")
    except json.JSONDecodeError as exc:
        return problems.invalid_json(f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    if not isinstance(body, dict):
        return problems.invalid_json("The request body must be a JSON object.")
    return body


def check_sms(body: dict[str, object]) -> Problem | None:
    """Return the invalid-params problem naming each bad field, or None when all are fine."""
    reasons: dict[str, str] = {}
    for name, check in _REQUIRED.items():
        reason = check(body[name]) if name in body else "is required."
        if reason:
            reasons[name] = reason
    for name, check in _OPTIONAL.items():
        if body.get(name) is not None and (reason := check(body[name])):
            reasons[name] = reason
    sms = body.get("sms")
    if isinstance(sms, dict):
        for name, check in _SMS_OPTIONS.items():
            if sms.get(name) is not None and (reason := check(sms[name])):
                reasons[f"sms.{name}"] = reason
    return problems.invalid_params(reasons) if reasons else None


def _equals(expected: str) -> Callable[[object], str | None]:
    return lambda value: None if value == expected else f"must be `{expected}`."


def _one_of(*allowed: str) -> Callable[[object], str | None]:
    listed = ", ".join(f"`{a}`" for a in allowed)
    return lambda value: None if value in allowed else f"must be one of {listed}."


def _string(max_length: int | None = None) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if not isinstance(value, str) or not value:
            return "must be a non-empty string."
        if max_length is not None and len(value) > max_length:
            return f"must be at most {max_length} characters."
        return None

    return check


def _to(value: object) -> str | None:
    if isinstance(value, str) and TO_PATTERN.fullmatch(value):
        return None
    return "must be 7-15 digits in E.164 format without a leading + or 00."


def _ttl(value: object) -> str | None:
    low, high = TTL_RANGE
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return None
    return f"must be an integer from {low} to {high}."


def _boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be a boolean."


def _object(value: object) -> str | None:
    return None if isinstance(value, dict) else "must be an object."


def _array(value: object) -> str | None:
    return None if isinstance(value, list) else "must be an array."


_REQUIRED: dict[str, Callable[[object], str | None]] = {
    "channel": _equals("sms"),
    "message_type": _equals("text"),
    "to": _to,
    "from": _string(),
    "text": _string(MAX_TEXT),
}
_OPTIONAL: dict[str, Callable[[object], str | None]] = {
    "client_ref": _string(MAX_CLIENT_REF),
    "ttl": _ttl,
    "sms": _object,
    "webhook_url": _string(),
    "webhook_version": _one_of(*WEBHOOK_VERSIONS),
    "trusted_recipient": _boolean,
    "failover": _array,
}
_SMS_OPTIONS: dict[str, Callable[[object], str | None]] = {
    "encoding_type": _one_of(*ENCODING_TYPES),
    "content_id": _string(),
    "entity_id": _string(),
    "pool_id": _string(),
}
