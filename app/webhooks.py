"""POST /webhooks/status and /webhooks/inbound: Vonage's callbacks, verified first."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, current_app, g, request

from . import optouts
from .errors import ApiProblem, InvalidPayload
from .metrics import INBOUND, RECEIPTS
from .phone import InvalidNumber, e164, mask_digits, parse_webhook_number
from .records import is_known_status, parse_status_webhook
from .validation import read_body
from .webhook_auth import (
    MissingToken,
    bearer_token,
    check_claims,
    check_payload_hash,
    verify_signature,
)

bp = Blueprint("webhooks", __name__)
logger = logging.getLogger("sms_service")


@bp.post("/webhooks/status")
def post_status_webhook():
    body = _verified_json()
    if isinstance(body, dict) and not is_known_status(body.get("status")):
        # Statuses of other channels (e.g. `read`) mean nothing for SMS: take them, change nothing.
        logger.info("status webhook ignored", extra={"fields": {"status": str(body.get("status"))}})
        return {"received": True}
    event = parse_status_webhook(body)
    if isinstance(event, str):
        raise InvalidPayload({"body": event})
    record = current_app.extensions["store"].apply_status(event)
    RECEIPTS.labels(event["status"]).inc()
    g.message_uuid = event["message_uuid"]
    logger.info(
        "status webhook",
        extra={"fields": {"status": event["status"], "current_status": record["status"]}},
    )
    return {"received": True}


@bp.post("/webhooks/inbound")
def post_inbound_webhook():
    body = _verified_json()
    if not isinstance(body, dict) or not isinstance(body.get("from"), str):
        raise InvalidPayload({"from": "is required: the sender's number"})
    text = body.get("text")
    try:
        sender = parse_webhook_number(body["from"])
    except InvalidNumber:  # a sender ID, or digits of another script: no keyword acts
        sender = None
    action = "none"
    if sender is not None:
        action = optouts.apply_keyword(sender, text if isinstance(text, str) else "")
    INBOUND.labels(action).inc()
    masked = mask_digits(e164(sender).lstrip("+")) if sender is not None else "not-a-number"
    logger.info(  # the number masked, the text never
        "inbound sms", extra={"fields": {"from": masked, "action": action}}
    )
    return {"received": True}


def _verified_json() -> object:
    """Check the token before reading the body (a stranger's body costs nothing), then the
    body against the token's payload_hash, and only then parse it."""
    claims = _verified_claims()
    raw = read_body()
    if claims is not None:
        check_payload_hash(claims, raw)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidPayload({"body": "must be valid JSON"}) from None


def _verified_claims() -> dict[str, object] | None:
    """The signed token's claims; None when unsigned webhooks are allowed and this is one."""
    settings = current_app.extensions["settings"]
    if not settings.signature_secrets:
        if settings.webhook_allow_unsigned:
            return None
        raise ApiProblem(
            503,
            "webhook-not-configured",
            "Webhook verification not configured",
            "webhook verification not configured: set VONAGE_SIGNATURE_SECRET.",
        )
    try:
        token = bearer_token(request.headers.get("Authorization", ""))
    except MissingToken:
        if settings.webhook_allow_unsigned:
            return None
        raise
    claims = verify_signature(token, settings.signature_secrets)
    check_claims(claims, settings.webhook_max_age_s)
    return claims
