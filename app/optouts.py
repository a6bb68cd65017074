"""Opt-outs: STOP by SMS or by hand, honoured before every send (TCPA and friends)."""

from __future__ import annotations

import phonenumbers
from flask import Blueprint, current_app

from .auth import require_api_key
from .errors import ApiProblem, InvalidPayload
from .metrics import OPT_OUTS
from .phone import InvalidNumber, e164, parse_number
from .records import now_iso

bp = Blueprint("optouts", __name__)

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})


def apply_keyword(sender: phonenumbers.PhoneNumber, text: str) -> str:
    """Opt the sender out or back in when the whole text is a keyword; say what was done."""
    keyword = text.strip().upper()
    if keyword not in OPT_OUT_WORDS | OPT_IN_WORDS:
        return "none"
    store = current_app.extensions["store"]
    number = e164(sender)
    if keyword in OPT_OUT_WORDS:
        store.opt_out(number, now_iso())
        OPT_OUTS.labels("added", "sms").inc()
        return "opted-out"
    store.opt_in(number)
    OPT_OUTS.labels("removed", "sms").inc()
    return "opted-in"


def opted_out(since: str) -> ApiProblem:
    """The refusal to send to a number that asked not to be texted (checked in admission)."""
    return ApiProblem(
        422,
        "recipient-opted-out",
        "Recipient opted out",
        f"The recipient opted out of SMS on {since}; nothing was sent.",
    )


@bp.get("/opt-outs/<number>")
@require_api_key
def get_opt_out(number: str):
    number = _e164_path(number)
    since = current_app.extensions["store"].opted_out_since(number)
    return {"number": number, "opted_out": since is not None, "since": since}


@bp.put("/opt-outs/<number>")
@require_api_key
def put_opt_out(number: str):
    number = _e164_path(number)
    since = current_app.extensions["store"].opt_out(number, now_iso())
    OPT_OUTS.labels("added", "api").inc()
    return {"number": number, "opted_out": True, "since": since}


@bp.delete("/opt-outs/<number>")
@require_api_key
def delete_opt_out(number: str):
    number = _e164_path(number)
    current_app.extensions["store"].opt_in(number)
    OPT_OUTS.labels("removed", "api").inc()
    return {"number": number, "opted_out": False, "since": None}


def _e164_path(number: str) -> str:
    """A number from the path: E.164, with or without its +."""
    candidate = number if number.startswith("+") else "+" + number
    try:
        return e164(parse_number(candidate))
    except InvalidNumber as exc:
        raise InvalidPayload({"number": str(exc)}) from None
