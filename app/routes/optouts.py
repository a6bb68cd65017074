"""Opt-outs: STOP by SMS or by hand, honoured before every send (TCPA and friends).

A recipient's own STOP is theirs to lift: only their START takes it away, or a key
named in OPT_OUT_OVERRIDE_KEYS (the rules are in app/store/memory.py). Every change, and every
refused attempt, writes one audit line: who (the key's name, or the recipient by SMS),
which number (masked), what.
"""

from __future__ import annotations

import logging

import phonenumbers
from flask import Blueprint, current_app, g

from ..domain.phone import InvalidNumber, e164, mask_number, parse_number
from ..domain.records import now_iso
from ..metrics import OPT_OUTS
from ..store.memory import OptOut, OptOutSource
from ..web.api_keys import require_api_key
from ..web.problems import ApiProblem, InvalidPayload

bp = Blueprint("optouts", __name__)
logger = logging.getLogger("sms_service")

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})


def apply_keyword(sender: phonenumbers.PhoneNumber, text: str) -> str:
    """Opt the sender out or back in when the whole text is a keyword; say what was done."""
    keyword = text.strip().upper()
    if keyword not in OPT_OUT_WORDS | OPT_IN_WORDS:
        return "none"
    if keyword in OPT_OUT_WORDS:
        _opt_out(sender, "sms")
        return "opted-out"
    _opt_in(sender, "sms", override=False)
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
    number = e164(_path_number(number))
    return _answer(number, _store().opt_out_entry(number))


@bp.put("/opt-outs/<number>")
@require_api_key
def put_opt_out(number: str):
    parsed = _path_number(number)
    return _answer(e164(parsed), _opt_out(parsed, "api"))


@bp.delete("/opt-outs/<number>")
@require_api_key
def delete_opt_out(number: str):
    parsed = _path_number(number)
    override = g.api_key_name in current_app.extensions["settings"].opt_out_override_keys
    found = _opt_in(parsed, "api", override)
    if found is not None:
        raise _kept_by_recipient(found)
    return _answer(e164(parsed), None)


def _opt_out(number: phonenumbers.PhoneNumber, by: OptOutSource) -> OptOut:
    entry = _store().opt_out(e164(number), now_iso(), by)
    OPT_OUTS.labels("added", by).inc()
    _audit("opt-out", "listed", number, by, entry)
    return entry


def _opt_in(number: phonenumbers.PhoneNumber, by: OptOutSource, override: bool) -> OptOut | None:
    """Take the number off the list; return the entry that stays, None when none does."""
    result = _store().opt_in(e164(number), by, override)
    if result.removed:
        OPT_OUTS.labels("removed", by).inc()
        overrode = by == "api" and result.found.source != "api"
        _audit("opt-in", "removed", number, by, result.found, override=overrode)
        return None
    if result.found is None:
        _audit("opt-in", "not-listed", number, by, None)
        return None
    _audit("opt-in", "refused", number, by, result.found)
    return result.found


def _audit(
    action: str,
    outcome: str,
    number: phonenumbers.PhoneNumber,
    by: OptOutSource,
    entry: OptOut | None,
    override: bool = False,
) -> None:
    """One line per attempt to change the list: never the full number."""
    fields = {
        "action": action,  # opt-out or opt-in
        "outcome": outcome,  # listed, removed, not-listed or refused
        "by": by,  # sms (the recipient) or api
        "api_key": g.get("api_key_name") if by == "api" else None,
        "number": mask_number(e164(number), number.country_code),
        "entry_source": entry.source if entry else None,
        "override": override,
    }
    logger.info("opt-out audit", extra={"fields": fields})


def _kept_by_recipient(entry: OptOut) -> ApiProblem:
    """The refusal to lift an opt-out the recipient made (or one whose source is unknown)."""
    whose = (
        f"The recipient opted out by SMS on {entry.since}"
        if entry.source == "sms"
        else f"The number was opted out on {entry.since}, before the service recorded who asked"
    )
    return ApiProblem(
        409,
        "opted-out-by-recipient",
        "Opted out by the recipient",
        f"{whose}; only the recipient's START lifts it, or a key named in "
        "OPT_OUT_OVERRIDE_KEYS. Nothing was changed.",
    )


def _answer(number: str, entry: OptOut | None) -> dict[str, object]:
    return {
        "number": number,
        "opted_out": entry is not None,
        "since": entry.since if entry else None,
        "source": entry.source if entry else None,
    }


def _store():
    return current_app.extensions["store"]


def _path_number(number: str) -> phonenumbers.PhoneNumber:
    """A number from the path: E.164, with or without its +."""
    candidate = number if number.startswith("+") else "+" + number
    try:
        return parse_number(candidate)
    except InvalidNumber as exc:
        raise InvalidPayload({"number": str(exc)}) from None
