"""POST /send-sms."""

from flask import Blueprint, current_app, g

from .auth import require_api_key
from .limits import limit_per_api_key, limit_recipient
from .optouts import refuse_if_opted_out
from .phone import mask_number
from .records import now_iso, sent_record
from .sms import send_sms
from .validation import parse_json_object, parse_send_sms, require_json

bp = Blueprint("api", __name__)


@bp.post("/send-sms")
@require_json
@require_api_key
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
    record = sent_record(g.message_uuid, g.api_key_name, summary, now_iso())
    current_app.extensions["store"].save_sent(record)
    return {"success": True, "message_uuid": g.message_uuid, **summary}
