"""GET /messages/<message_uuid>: a sent message's record, for the key that sent it."""

from __future__ import annotations

from flask import Blueprint

from ..domain.problems import Problem
from ..store import get_store
from ..web.api_keys import require_api_key
from ..web.request_context import request_state

bp = Blueprint("messages", __name__)


@bp.get("/messages/<message_uuid>")
@require_api_key
def get_message(message_uuid: str):
    record = get_store().get_message(message_uuid)
    state = request_state()
    # Another key's message is "not found" too (never 403), so existence does not leak.
    if record is None or record.get("api_key") != state.api_key_name:
        raise Problem.NOT_FOUND.error("No message with this id was sent with your key.")
    state.message_uuid = message_uuid
    return record  # api_key is the key's name, never its secret
