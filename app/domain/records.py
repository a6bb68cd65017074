"""Message records and how status webhooks move them along.

Webhooks arrive duplicated and out of order, so applying one is idempotent and
monotonic: a final status is never replaced, the same event twice adds one history
entry, and a webhook for a message we never saw starts a record of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .phone import with_plus

FINAL_STATUSES = ("delivered", "rejected", "undeliverable")
STATUS_RANK = {"accepted": 0, "submitted": 1, **dict.fromkeys(FINAL_STATUSES, 2)}

Record = dict[str, object]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sent_record(
    message_uuid: str,
    api_key: str,
    summary: dict[str, object],
    created_at: str,
) -> Record:
    """The record of an SMS Vonage has just accepted."""
    return {
        "message_uuid": message_uuid,
        "api_key": api_key,
        "to": summary["to"],
        "from": summary["from"],
        "encoding": summary["encoding"],
        "segments": summary["segments"],
        "client_ref": summary.get("client_ref"),
        "created_at": created_at,
        "status": "accepted",
        "status_at": created_at,
        "error": None,
        "price": None,
        "currency": None,
        "history": [{"status": "accepted", "timestamp": created_at}],
    }


def merge_sent(existing: Record | None, sent: Record) -> Record:
    """Save a sent record; a webhook that overtook the send keeps its progress."""
    if existing is None:
        return sent
    merged = {**sent, **{k: existing[k] for k in ("error", "price", "currency")}}
    merged["history"] = existing["history"]
    merged["status"], merged["status_at"] = existing["status"], existing["status_at"]
    return apply_event(merged, {"status": "accepted", "timestamp": sent["created_at"]})


def apply_status(existing: Record | None, event: dict[str, object]) -> Record:
    """Apply a parsed status webhook (see parse_status_webhook) to a record."""
    record = existing if existing is not None else _unknown_message(event)
    record = apply_event(dict(record), event)
    # A late receipt that changed nothing must not bring its error along: a `rejected` after
    # `delivered` leaves a delivered message without one. Its price is still kept when none is
    # known yet: Vonage reports what it charged, whatever the order.
    took_effect = record["status"] == event["status"] and record["status_at"] == event["timestamp"]
    if event.get("error") and took_effect:
        record["error"] = event["error"]
    if event.get("price") is not None and (took_effect or record["price"] is None):
        record["price"], record["currency"] = event["price"], event.get("currency")
    return record


def apply_event(record: Record, event: dict[str, object]) -> Record:
    """Add (status, timestamp) to the history once; move the status only forwards."""
    entry = {"status": event["status"], "timestamp": event["timestamp"]}
    history = list(record["history"])
    if entry not in history:
        history.append(entry)
        # Lifecycle order first: our clock and Vonage's differ, and its timestamps may be
        # coarser than ours; within one step, by time.
        history.sort(
            key=lambda item: (STATUS_RANK.get(str(item["status"]), 0), _sort_key(item["timestamp"]))
        )
    record["history"] = history
    current = STATUS_RANK.get(str(record["status"]), 0)
    incoming = STATUS_RANK.get(str(event["status"]), 0)
    if current < incoming:  # a final status is never replaced, nor a submitted by accepted
        record["status"], record["status_at"] = event["status"], event["timestamp"]
    return record


def is_known_status(status: object) -> bool:
    """A status an SMS receipt can carry (`accepted` is ours, never Vonage's)."""
    return isinstance(status, str) and status in STATUS_RANK and status != "accepted"


def parse_status_webhook(body: object) -> dict[str, object] | str:
    """Read a messageStatusSMS body leniently; return the event, or what is wrong with it."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    uuid, status, timestamp = body.get("message_uuid"), body.get("status"), body.get("timestamp")
    if not isinstance(uuid, str) or not uuid or len(uuid) > 100:
        return "message_uuid is required"
    if not is_known_status(status):
        return "status must be submitted, delivered, rejected or undeliverable"
    if not isinstance(timestamp, str) or _sort_key(timestamp) == _UNKNOWN_TIME:
        timestamp = now_iso()
    event: dict[str, object] = {"message_uuid": uuid, "status": status, "timestamp": timestamp}
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("title", error.get("code"))  # a number or a string, per SDK tests
        event["error"] = {
            "code": str(code) if isinstance(code, (str, int)) else None,
            "reason": str(error.get("detail") or "")[:300] or None,
        }
    usage = body.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("price"), (str, int, float)):
        currency = usage.get("currency")
        event["price"] = str(usage["price"])
        event["currency"] = currency if isinstance(currency, str) else None
    for field in ("to", "from", "client_ref"):
        if isinstance(body.get(field), str):
            event[field] = body[field]
    return event


def _unknown_message(event: dict[str, object]) -> Record:
    """A record for a message sent before a restart, or by another system: nobody owns it."""
    to, sender = event.get("to"), event.get("from")
    return {
        "message_uuid": event["message_uuid"],
        "api_key": None,
        "to": with_plus(to) if isinstance(to, str) and to.isdigit() else to,
        "from": sender,
        "encoding": None,
        "segments": None,
        "client_ref": event.get("client_ref"),
        "created_at": None,
        "status": "accepted",
        "status_at": None,
        "error": None,
        "price": None,
        "currency": None,
        "history": [],
    }


_UNKNOWN_TIME = datetime.min.replace(tzinfo=UTC)


def _sort_key(timestamp: object) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(timestamp))
    except ValueError:
        return _UNKNOWN_TIME
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
