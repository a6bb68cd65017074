"""POST /webhooks/status and /webhooks/inbound: Vonage's callbacks, verified first."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from flask import Blueprint, request

from ..domain.phone import InvalidNumber, e164, mask_digits, parse_webhook_number, without_plus
from ..domain.problems import Problem
from ..domain.records import is_known_status, parse_status_webhook
from ..metrics import INBOUND, RECEIPTS
from ..store import get_store
from ..store.contract import StorageUnavailable
from ..web.app_settings import current_settings
from ..web.body import read_body
from ..web.optout_list import apply_keyword
from ..web.problems import InvalidPayload
from ..web.rate_limits import admit_credential
from ..web.request_context import request_state
from ..web.webhook_auth import (
    BadSignature,
    MissingToken,
    bearer_token,
    check_claims,
    check_payload_hash,
    token_life_s,
    verify_signature,
)

bp = Blueprint("webhooks", __name__)
logger = logging.getLogger("sms_service")
VONAGE = "#webhook"  # a good signature's name at the failed-key brake; no API key holds a '#'


@bp.post("/webhooks/status")
def post_status_webhook():
    body, jti = _verified_json()
    return apply_once(jti, "status", lambda: _apply_status(body))


@bp.post("/webhooks/inbound")
def post_inbound_webhook():
    body, jti = _verified_json()
    return apply_once(jti, "inbound", lambda: _apply_inbound(body))


def apply_once(jti: str | None, kind: str, apply: Callable[[], dict]) -> dict:
    """Apply a signed webhook once per token. A replay while the token is still acceptable
    (a captured STOP sent again after a START; or Vonage resending one we applied) is
    answered 200, so that Vonage stops retrying, and changes nothing. A webhook that fails
    forgets its token, so that a retry of it is applied."""
    if jti is None:  # unsigned, allowed in development: there is no token to remember
        return apply()
    store = get_store()
    life_s = token_life_s(current_settings().webhook_max_age_s)
    if not store.use_webhook_token(jti, life_s):
        logger.info("webhook replay ignored", extra={"fields": {"type": kind}})
        return {"received": True}
    try:
        return apply()
    except BaseException:
        try:
            store.forget_webhook_token(jti)
        except StorageUnavailable:
            logger.error("webhook token not forgotten: storage unavailable")
        raise


def _apply_status(body: object) -> dict:
    if isinstance(body, dict) and not is_known_status(body.get("status")):
        # Statuses of other channels (e.g. `read`) mean nothing for SMS: take them, change nothing.
        logger.info("status webhook ignored", extra={"fields": {"status": str(body.get("status"))}})
        return {"received": True}
    event = parse_status_webhook(body)
    if isinstance(event, str):
        raise InvalidPayload({"body": event})
    record = get_store().apply_status(event)
    RECEIPTS.labels(event["status"]).inc()
    request_state().message_uuid = event["message_uuid"]
    logger.info(
        "status webhook",
        extra={"fields": {"status": event["status"], "current_status": record["status"]}},
    )
    return {"received": True}


def _apply_inbound(body: object) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("from"), str):
        raise InvalidPayload({"from": "is required: the sender's number"})
    text = body.get("text")
    try:
        sender = parse_webhook_number(body["from"])
    except InvalidNumber:  # a sender ID, or digits of another script: no keyword acts
        sender = None
    action = "none"
    if sender is not None:
        action = apply_keyword(sender, text if isinstance(text, str) else "")
    INBOUND.labels(action).inc()
    masked = mask_digits(without_plus(e164(sender))) if sender is not None else "not-a-number"
    logger.info(  # the number masked, the text never
        "inbound sms", extra={"fields": {"from": masked, "action": action}}
    )
    return {"received": True}


def _verified_json() -> tuple[object, str | None]:
    """Check the token before reading the body (a stranger's body costs nothing), then the
    body against the token's payload_hash, and only then parse it. Return the body and the
    token's jti (None for an unsigned webhook that is allowed)."""
    claims = _verified_claims()
    raw = read_body()
    if claims is not None:
        check_payload_hash(claims, raw)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidPayload({"body": "must be valid JSON"}) from None
    return body, str(claims["jti"]) if claims is not None else None


def _verified_claims() -> dict[str, object] | None:
    """The signed token's claims; None when unsigned webhooks are allowed and this is one.

    A bad signature is a failed key at the brake, as a wrong API key is: a client address
    cannot try secrets unbounded, and a braked one gets 429 whether its token is good or not
    (but the addresses Vonage's good tokens came from lately)."""
    settings = current_settings()
    if not settings.signature_secrets:
        if settings.webhook_allow_unsigned:
            return None
        raise Problem.WEBHOOK_NOT_CONFIGURED.error()
    try:
        token = bearer_token(request.headers.get("Authorization", ""))
        claims = verify_signature(token, settings.signature_secrets)
        check_claims(claims, settings.webhook_max_age_s)
    except MissingToken:
        if settings.webhook_allow_unsigned:
            return None
        raise
    except BadSignature:
        admit_credential(None)  # a bad token counts as a failed key: 429 once braked
        raise
    admit_credential(VONAGE)  # braked: 429 for a good token too, unless Vonage's own address
    return claims
