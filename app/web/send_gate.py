"""The checks before an SMS goes out, in the order the API promises, over one admission.

Order of refusals: the failed-key brake (429 whatever key comes next, so that a guess
cannot be confirmed; but a key that succeeded from that address lately), a wrong key
(401, counted against the client IP), a malformed Idempotency-Key (400), a destination
the service may not send to (422 destination-not-allowed, for a body otherwise valid:
before the Idempotency-Key is taken and before any limit is counted, so that a pumping
attempt spends none of the key's or the recipient's allowance), an Idempotency-Key
already used (a replay costs no limit, no budget, and never reaches Vonage), the key's
segment budget (429 budget-exhausted; a valid body's only, as its cost is the text's
segments: tested before any limit is counted, spent once every gate passed, so that a send
it refuses spends nothing else), the key's limit (429), the body (400), the opt-out list
(422, before the recipient's limit so that refused sends use none of its allowance), the
recipient's limit (429).

The CPU work (comparing the key, reading the header, validating the body) runs first,
and always: the brake's answer then takes as long whether the key was right or not.
The storage's gates run next in one admission step (one round trip with Redis), told
where to stop; the refusals are raised here, in order, from its verdict.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import request

from ..domain.destinations import destination_refusal
from ..domain.phone import mask_number
from ..domain.sms_request import SmsRequest
from ..store.admission import API_KEY, BUDGET, FAILED_AUTH, RECIPIENT, Ticket, Verdict
from .api_keys import identify_api_key, unauthorized
from .app_settings import current_settings
from .body import parse_sms_request
from .idempotency import HEADER, answer_once, idempotency_ticket
from .optout_list import opted_out
from .problems import InvalidPayload
from .rate_limits import client_ip, get_admission, show_rate_limit, too_many
from .request_context import request_state


def admit_send(view: Callable[[SmsRequest], object]):
    """Call `view(message)` once the request passes every check; else raise the first
    refusal (or replay the Idempotency-Key's answer)."""

    @functools.wraps(view)
    def wrapped():
        settings, state = current_settings(), request_state()
        api_key = identify_api_key(request.headers.get("X-API-Key", ""))
        idempotency, bad_header = _deferred(
            idempotency_ticket,
            request.headers.get(HEADER),
            api_key or "",
            state.raw_body,
            settings.request_deadline_s,
        )
        message, bad_body = _deferred(parse_sms_request, state.raw_body, settings)
        refusal = destination_refusal(message.destination, settings) if message else None
        # Refused before the Idempotency-Key is taken and before any limit is counted:
        early = bad_header if bad_header is not None else refusal
        stop_after = (
            "api-key" if early is not None else "key-limit" if bad_body else "recipient-limit"
        )
        recipient, segments = (message.to, message.encoded.segments) if message else (None, 1)
        ticket = Ticket(client_ip(), api_key, stop_after, idempotency, recipient, segments)
        verdict = get_admission().admit(ticket)
        if verdict.refused_by == "failed-auth":
            raise too_many(verdict.window, FAILED_AUTH)
        if verdict.refused_by == "api-key":
            raise unauthorized()
        state.api_key_name = api_key  # for logs and metrics; the secret goes nowhere
        if early is not None:
            _describe(message)
            raise early
        return answer_once(
            idempotency, verdict.claim, lambda: view(_after_claim(verdict, message, bad_body))
        )

    return wrapped


def _after_claim(
    verdict: Verdict, message: SmsRequest | None, bad_body: InvalidPayload | None
) -> SmsRequest:
    """Raise the refusals that come after the Idempotency-Key, so that its answer is kept."""
    if verdict.refused_by in ("budget", "key-limit"):
        raise too_many(verdict.window, BUDGET if verdict.refused_by == "budget" else API_KEY)
    show_rate_limit(verdict.window)  # the key's tightest limit or budget
    if bad_body is not None:
        raise bad_body
    _describe(message)
    if verdict.refused_by == "opt-out":
        raise opted_out(verdict.opted_out_since)
    if verdict.refused_by == "recipient-limit":
        raise too_many(verdict.window, RECIPIENT)
    return message


def _describe(message: SmsRequest | None) -> None:
    """Note the recipient (masked) and the segments for the request's log line."""
    if message is not None:
        state = request_state()
        state.to_masked = mask_number(message.to, message.destination.country_code)
        state.segments = message.encoded.segments


def _deferred(check: Callable, *args) -> tuple:
    """Run a CPU check now and keep its refusal for its turn: (result, None) or (None, 400)."""
    try:
        return check(*args), None
    except InvalidPayload as problem:
        return None, problem
