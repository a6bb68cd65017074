"""POST /send-sms."""

import logging

from flask import Blueprint

from ..domain.records import now_iso, sent_record
from ..domain.sms_request import SmsRequest
from ..metrics import SMS_ACCEPTED, SMS_SEGMENTS
from ..store import get_store
from ..store.contract import StorageUnavailable
from ..vonage.gateway import send_sms
from ..web.body import require_json
from ..web.bulkhead import one_slot_per_send
from ..web.request_context import request_state
from ..web.send_gate import admit_send

bp = Blueprint("api", __name__)
logger = logging.getLogger("sms_service")


@bp.post("/send-sms")
@require_json
@one_slot_per_send  # past VONAGE_MAX_IN_FLIGHT: a quick 503, before any limit is spent
@admit_send  # key, Idempotency-Key, limits, body, opt-out: in order, one round trip to Redis
def post_send_sms(message: SmsRequest):
    state = request_state()
    state.message_uuid = send_sms(message)
    summary = message.summary()
    SMS_ACCEPTED.labels(state.api_key_name, message.encoded.encoding).inc()
    SMS_SEGMENTS.labels(state.api_key_name).inc(message.encoded.segments)
    record = sent_record(state.message_uuid, state.api_key_name, summary, now_iso())
    try:
        get_store().save_sent(record)
    except StorageUnavailable:
        # The SMS is sent: say so. A 503 would invite a retry, and a second SMS.
        logger.error("message record not saved: storage unavailable")
    return {"success": True, "message_uuid": state.message_uuid, **summary}
