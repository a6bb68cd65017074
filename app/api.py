"""POST /send-sms."""

import logging

from flask import Blueprint, current_app, g

from .auth import require_api_key
from .bulkhead import one_slot_per_send
from .idempotency import idempotent
from .limits import limit_per_api_key, limit_recipient
from .metrics import SMS_ACCEPTED, SMS_SEGMENTS
from .optouts import refuse_if_opted_out
from .phone import mask_number
from .records import now_iso, sent_record
from .sms import send_sms
from .store import StorageUnavailable
from .validation import parse_json_object, parse_send_sms, require_json, with_body

bp = Blueprint("api", __name__)
logger = logging.getLogger("sms_service")


@bp.post("/send-sms")
@require_json
@require_api_key  # before the body is read: a stranger's slow body costs nothing
@with_body
@idempotent  # a replay costs no rate limit and never reaches Vonage
@one_slot_per_send  # a shed send spends no limit
@limit_per_api_key
def post_send_sms():
    body = parse_json_object(g.raw_body)
    message = parse_send_sms(body, current_app.extensions["settings"])
    g.to_masked = mask_number(message.to, message.country_code)
    g.segments = message.encoded.segments
    refuse_if_opted_out(message.to)
    limit_recipient(message.to)
    g.message_uuid = send_sms(message)
    summary = message.summary()
    SMS_ACCEPTED.labels(g.api_key_name, message.encoded.encoding).inc()
    SMS_SEGMENTS.labels(g.api_key_name).inc(message.encoded.segments)
    record = sent_record(g.message_uuid, g.api_key_name, summary, now_iso())
    try:
        current_app.extensions["store"].save_sent(record)
    except StorageUnavailable:
        # The SMS is sent: say so. A 503 would invite a retry, and a second SMS.
        logger.error("message record not saved: storage unavailable")
    return {"success": True, "message_uuid": g.message_uuid, **summary}
