"""What one request learns on its way, declared in one place.

Several modules write to a request and others read what they wrote: the body read by
app/web/body.py is checked by the send's admission, the key's name found by
app/web/api_keys.py is logged by app/web/request_log.py, the problem answered decides what
an Idempotency-Key keeps. Each such fact is a typed field of RequestState, not an ad-hoc
attribute of flask.g, so that a reader sees every one, who sets it and what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g

from ..domain.problems import Problem
from ..store.admission import Window


@dataclass
class RequestState:
    """The facts of the current request; None until the module that learns one sets it."""

    started: float = 0.0  # time.perf_counter() when the request log began (request_log)
    request_id: str | None = None  # ours or the client's X-Request-ID (request_log)
    trace_id: str | None = None  # from a W3C traceparent header (request_log)
    raw_body: bytes | None = None  # the JSON body, read whole and bounded (body)
    api_key_name: str | None = None  # the caller's key, never its secret (api_keys, send_gate)
    to_masked: str | None = None  # the recipient, masked for the log (send_gate)
    segments: int | None = None  # the SMS's segments (send_gate)
    message_uuid: str | None = None  # Vonage's id of the message (routes)
    problem: Problem | None = None  # the problem answered (problems)
    rate_limit_shown: Window | None = None  # the limit the RateLimit headers show (rate_limits)


def request_state() -> RequestState:
    """The current request's state, created on first use."""
    state = g.get("request_state")
    if state is None:
        state = g.request_state = RequestState()
    return state
