"""GET /messages/<message_uuid>: a sent message's record, for the key that sent it."""

from __future__ import annotations

from flask import Blueprint, current_app, g

from ..web.api_keys import require_api_key
from ..web.problems import NOT_FOUND_TITLE, ApiProblem

bp = Blueprint("messages", __name__)


@bp.get("/messages/<message_uuid>")
@require_api_key
def get_message(message_uuid: str):
    record = current_app.extensions["store"].get_message(message_uuid)
    # Another key's message is "not found" too (never 403), so existence does not leak.
    if record is None or record.get("api_key") != g.api_key_name:
        raise ApiProblem(
            404, "not-found", NOT_FOUND_TITLE, "No message with this id was sent with your key."
        )
    g.message_uuid = message_uuid
    return record  # api_key is the key's name, never its secret
