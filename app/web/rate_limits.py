"""Rate limits: per API key, per recipient, and on failed authentication per client IP; and
the key's segment budget (SEGMENT_BUDGET), a limit whose hits cost the text's segments.

flask-limiter owns the storage (process memory, or Redis when configured) and the
moving-window strategy. POST /send-sms counts its limits in its admission step
(app/store/admission.py), at their places in the request: the failed-key brake, the key's limit
before validation, the recipient's after it, the budget tested before the key's limit
and spent after the recipient's. The other credentials (the other routes'
API keys, the metrics token, webhook signatures) go through the brake in the same
admission step, stopped after it. When Redis is out of reach, the limits fail closed (503).

In process memory the counters live in BoundedMemoryStorage (app/store/limit_storage.py): idle keys
go, and at most MAX_LIMIT_KEYS are kept. A client address is always an IP address
(client_ip), so a header cannot make a key of any other string.

init_rate_limits attaches the limits and the admission that counts them, over the app's
store; get_rate_limits and get_admission reach them.
"""

from __future__ import annotations

import ipaddress
import math
import time

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many
from limits.strategies import RateLimiter

from ..domain.problems import ApiProblem, Problem
from ..metrics import RATE_LIMITED
from ..settings import Settings
from ..store import build_admission, get_store
from ..store.admission import (
    API_KEY,
    BUDGET,
    FAILED_AUTH,
    RECIPIENT,
    Admission,
    LimitItems,
    Ticket,
    Window,
)
from ..store.limit_storage import BoundedMemoryStorage
from .request_context import request_state

MAX_LIMIT_KEYS = 100_000  # counters kept in process memory; the least recently counted go first
# The refusal of each limit: the failed-key brake and the key's limit are the client's.
REFUSALS = {
    FAILED_AUTH: Problem.RATE_LIMITED,
    API_KEY: Problem.RATE_LIMITED,
    RECIPIENT: Problem.RECIPIENT_RATE_LIMITED,
    BUDGET: Problem.BUDGET_EXHAUSTED,
}
_LIMITS, _ADMISSION = "rate_limits", "admission"  # their keys in app.extensions


class RateLimits:
    """The app's limiter and its parsed limits."""

    def __init__(self, app: Flask, settings: Settings):
        app.config["RATELIMIT_ENABLED"] = True  # always explicit: flask-limiter reads it once
        # Process memory counts per process; several workers or instances need Redis.
        app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url or BoundedMemoryStorage.URI
        if settings.redis_url:  # fail fast, and as limits' own StorageError
            app.config["RATELIMIT_STORAGE_OPTIONS"] = {
                "wrap_exceptions": True,
                "socket_timeout": 1,
                "socket_connect_timeout": 1,
            }
        else:
            app.config["RATELIMIT_STORAGE_OPTIONS"] = {"max_keys": MAX_LIMIT_KEYS}
        self.limiter = Limiter(key_func=get_remote_address, strategy="moving-window")
        # Only its storage and strategy are used: every limit is counted at its place in the
        # request. Marked as registered, init_app skips its request hooks (decorated and
        # default limits, headers), which decide nothing here and cost 0.2-0.3 ms a request.
        app.extensions.setdefault("limiter", set()).add(self.limiter)
        self.limiter.init_app(app)
        self.items = LimitItems(
            failed_auth=parse_many(settings.auth_failure_limit),
            per_key=parse_many(settings.rate_limit),
            per_recipient=parse_many(settings.recipient_rate_limit),
            segment_budget=parse_many(settings.segment_budget) if settings.segment_budget else (),
        )

    @property
    def strategy(self) -> RateLimiter:
        return self.limiter.limiter


def init_rate_limits(app: Flask, settings: Settings) -> None:
    """Attach the limits, and the admission that counts them over the app's store (init_store
    first); get_rate_limits and get_admission reach them."""
    limits = app.extensions[_LIMITS] = RateLimits(app, settings)
    admission = build_admission(settings, get_store(app), limits.strategy, limits.items)
    app.extensions[_ADMISSION] = admission
    app.after_request(_add_rate_limit_headers)


def get_rate_limits(app: Flask | None = None) -> RateLimits:
    """The limits of `app`, by default of the app handling the current request."""
    return (current_app if app is None else app).extensions[_LIMITS]


def get_admission() -> Admission:
    """The current app's admission: the checks on the shared state, in one step."""
    return current_app.extensions[_ADMISSION]


def too_many(window: Window, scope: str) -> ApiProblem:
    """The 429 for the spent limit of `scope`, with Retry-After; its window is the one the
    headers show."""
    retry_after = max(1, math.ceil(window.stats.reset_time - time.time()))
    show_rate_limit(window)
    RATE_LIMITED.labels(scope).inc()
    return REFUSALS[scope].error(
        limit=window.item,
        retry_after=retry_after,
        headers={"Retry-After": str(retry_after)},
    )


def show_rate_limit(window: Window) -> None:
    """Tell the caller, in the answer's headers, where it stands on this limit."""
    request_state().rate_limit_shown = window


def admit_credential(name: str | None) -> None:
    """Put a credential already compared through the failed-key brake: `name` is whose it is,
    None when it matched nothing (a failure, counted against the client's address).

    Raise 429 while the address is braked, whether the credential is right or wrong, so that
    a guess cannot be confirmed; only a credential that succeeded from this address lately
    still passes (app/store/admission.py). Return for a right one and for a wrong one not
    braked: the caller answers the wrong one (401)."""
    verdict = get_admission().admit(Ticket(client_ip(), name, stop_after="api-key"))
    if verdict.refused_by == "failed-auth":
        raise too_many(verdict.window, FAILED_AUTH)


def client_ip() -> str:
    """The client's address, as the limits count it: the one ProxyFix took from
    X-Forwarded-For when it is an IP address, else the peer's. Anything else a header holds
    would become a limiter key of its own."""
    forwarded = _ip_address(request.remote_addr)
    if forwarded is not None:
        return forwarded
    peer = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR")
    return _ip_address(peer) or "-"


def _ip_address(value: str | None) -> str | None:
    """`value` as an IP address in its one canonical spelling, or None (an IPv6 zone too,
    which may hold any text)."""
    try:
        address = ipaddress.ip_address(value or "")
    except ValueError:
        return None
    if getattr(address, "scope_id", None):
        return None
    return str(address)


def _add_rate_limit_headers(response):
    """Tell the caller where it stands on its tightest limit (IETF RateLimit fields, seconds):
    the one with the fewest left, of the key's request limits (in requests) and its segment
    budget (in segments).

    The window was read when the limit was counted, in the same round trip, so the answer
    needs no second look at the storage."""
    window = request_state().rate_limit_shown
    if window is None:
        return response
    reset_s = max(0, math.ceil(window.stats.reset_time - time.time()))
    response.headers["RateLimit-Limit"] = str(window.item.amount)
    response.headers["RateLimit-Remaining"] = str(window.stats.remaining)
    response.headers["RateLimit-Reset"] = str(reset_s)
    return response
