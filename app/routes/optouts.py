"""GET, PUT and DELETE /opt-outs/<number>: the opt-out list by hand, for API keys.

A recipient's own STOP is theirs to lift: only their START takes it away, or a key
named in OPT_OUT_OVERRIDE_KEYS (the rules are in app/domain/optouts.py). Each change is
audited (app/web/optout_list.py).
"""

from __future__ import annotations

import phonenumbers
from flask import Blueprint

from ..domain.optouts import OptOut
from ..domain.phone import InvalidNumber, e164, parse_number, with_plus
from ..domain.problems import ApiProblem, Problem
from ..store import get_store
from ..web.api_keys import require_api_key
from ..web.app_settings import current_settings
from ..web.optout_list import opt_in, opt_out
from ..web.problems import InvalidPayload
from ..web.request_context import request_state

bp = Blueprint("optouts", __name__)


@bp.get("/opt-outs/<number>")
@require_api_key
def get_opt_out(number: str):
    number = e164(_path_number(number))
    return _answer(number, get_store().opt_out_entry(number))


@bp.put("/opt-outs/<number>")
@require_api_key
def put_opt_out(number: str):
    parsed = _path_number(number)
    return _answer(e164(parsed), opt_out(parsed, "api"))


@bp.delete("/opt-outs/<number>")
@require_api_key
def delete_opt_out(number: str):
    parsed = _path_number(number)
    override = request_state().api_key_name in current_settings().opt_out_override_keys
    found = opt_in(parsed, "api", override)
    if found is not None:
        raise _kept_by_recipient(found)
    return _answer(e164(parsed), None)


def _kept_by_recipient(entry: OptOut) -> ApiProblem:
    """The refusal to lift an opt-out the recipient made (or one whose source is unknown)."""
    whose = (
        f"The recipient opted out by SMS on {entry.since}"
        if entry.source == "sms"
        else f"The number was opted out on {entry.since}, before the service recorded who asked"
    )
    return Problem.OPTED_OUT_BY_RECIPIENT.error(whose=whose)


def _answer(number: str, entry: OptOut | None) -> dict[str, object]:
    return {
        "number": number,
        "opted_out": entry is not None,
        "since": entry.since if entry else None,
        "source": entry.source if entry else None,
    }


def _path_number(number: str) -> phonenumbers.PhoneNumber:
    """A number from the path: E.164, with or without its +."""
    try:
        return parse_number(with_plus(number))
    except InvalidNumber as exc:
        raise InvalidPayload({"number": str(exc)}) from None
