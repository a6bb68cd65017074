"""Changes to the opt-out list, by hand (PUT and DELETE /opt-outs) or by the recipient's own
STOP and START (inbound SMS), honoured before every send (TCPA and friends).

The rules of the list are the domain's (app/domain/optouts.py). Every change, and every
refused attempt, writes one audit line: who (the key's name, or the recipient by SMS),
which number (masked), what.
"""

from __future__ import annotations

import logging

import phonenumbers

from ..domain.optouts import OptOut, OptOutSource, keyword_of
from ..domain.phone import e164, mask_number
from ..domain.problems import ApiProblem, Problem
from ..domain.records import now_iso
from ..metrics import OPT_OUTS
from ..store import get_store
from .request_context import request_state

logger = logging.getLogger("sms_service")


def apply_keyword(sender: phonenumbers.PhoneNumber, text: str) -> str:
    """Opt the sender out or back in when the whole text is a keyword; say what was done."""
    keyword = keyword_of(text)
    if keyword is None:
        return "none"
    if keyword == "opt-out":
        opt_out(sender, "sms")
        return "opted-out"
    opt_in(sender, "sms", override=False)
    return "opted-in"


def opted_out(since: str) -> ApiProblem:
    """The refusal to send to a number that asked not to be texted (checked in admission)."""
    return Problem.RECIPIENT_OPTED_OUT.error(since=since)


def opt_out(number: phonenumbers.PhoneNumber, by: OptOutSource) -> OptOut:
    """Put the number on the list (or leave it there); return its entry."""
    entry = get_store().opt_out(e164(number), now_iso(), by)
    OPT_OUTS.labels("added", by).inc()
    _audit("opt-out", "listed", number, by, entry)
    return entry


def opt_in(number: phonenumbers.PhoneNumber, by: OptOutSource, override: bool) -> OptOut | None:
    """Take the number off the list; return the entry that stays, None when none does."""
    result = get_store().opt_in(e164(number), by, override)
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
        "api_key": request_state().api_key_name if by == "api" else None,
        "number": mask_number(e164(number), number.country_code),
        "entry_source": entry.source if entry else None,
        "override": override,
    }
    logger.info("opt-out audit", extra={"fields": fields})
