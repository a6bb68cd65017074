"""Rate limits: per API key, per recipient, and on failed authentication per client IP.

flask-limiter owns the storage (process memory, or Redis when configured) and the
moving-window strategy; the checks are explicit calls so that each runs at its
place in the request: auth, then the key's limit, then validation, then the
recipient's limit. When Redis is out of reach, the limits fail closed (503).
"""

from __future__ import annotations

import functools
import hashlib
import math
import time

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.strategies import RateLimiter

from .errors import ApiProblem
from .metrics import RATE_LIMITED
from .store import StorageUnavailable


class RateLimits:
    """The app's limiter and its parsed limits."""

    def __init__(self, app: Flask):
        settings = app.extensions["settings"]
        app.config["RATELIMIT_ENABLED"] = True  # always explicit: flask-limiter reads it once
        app.config["RATELIMIT_STORAGE_URI"] = settings.ratelimit_storage_uri
        if settings.redis_url:  # fail fast, and as limits' own StorageError
            app.config["RATELIMIT_STORAGE_OPTIONS"] = {
                "wrap_exceptions": True,
                "socket_timeout": 1,
                "socket_connect_timeout": 1,
            }
        self.limiter = Limiter(key_func=get_remote_address, strategy="moving-window")
        self.limiter.init_app(app)
        self.per_key = parse_many(settings.rate_limit)
        self.per_recipient = parse_many(settings.recipient_rate_limit)
        self.failed_auth = parse_many(settings.auth_failure_limit)
        app.extensions["rate_limits"] = self
        app.after_request(_add_rate_limit_headers)

    @property
    def strategy(self) -> RateLimiter:
        return self.limiter.limiter

    def hit(self, items: list[RateLimitItem], scope: str, key: str, slug: str) -> None:
        """Count one request against every limit in `items`; raise 429 when one is spent."""
        for item in items:
            if not _reachable(self.strategy.hit, item, scope, key):
                raise self._too_many(item, scope, key, slug)

    def check(self, items: list[RateLimitItem], scope: str, key: str, slug: str) -> None:
        """Raise 429 when a limit is already spent, without counting this request."""
        for item in items:
            if not _reachable(self.strategy.test, item, scope, key):
                raise self._too_many(item, scope, key, slug)

    def _too_many(self, item: RateLimitItem, scope: str, key: str, slug: str) -> ApiProblem:
        stats = _reachable(self.strategy.get_window_stats, item, scope, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        g.rate_limit_shown = ([item], scope, key)
        RATE_LIMITED.labels(scope).inc()
        what = "this recipient" if slug == "recipient-rate-limited" else "this client"
        return ApiProblem(
            429,
            slug,
            "Too many requests",
            f"The limit of {item} for {what} is spent; retry after {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )


def _reachable(call, *args):
    """Run a storage call; a storage out of reach refuses the request (fail closed)."""
    try:
        return call(*args)
    except StorageError as exc:
        raise StorageUnavailable() from exc


def _rate_limits() -> RateLimits:
    return current_app.extensions["rate_limits"]


def limit_per_api_key(view):
    """Count the request against the calling key's RATE_LIMIT (after authentication)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        limits = _rate_limits()
        limits.hit(limits.per_key, "api-key", g.api_key_name, "rate-limited")
        g.rate_limit_shown = (limits.per_key, "api-key", g.api_key_name)
        return view(*args, **kwargs)

    return wrapped


def limit_recipient(e164: str) -> None:
    """Count one SMS to `e164` across all keys (against SMS pumping); raise 429 past the limit."""
    limits = _rate_limits()
    # Hashed so that phone numbers never become storage keys.
    key = hashlib.sha256(e164.encode()).hexdigest()[:32]
    limits.hit(limits.per_recipient, "recipient", key, "recipient-rate-limited")


def refuse_if_auth_failures_spent() -> None:
    """Refuse a client IP that has failed authentication too often, before checking its key."""
    limits = _rate_limits()
    limits.check(limits.failed_auth, "failed-auth", request.remote_addr or "-", "rate-limited")


def count_auth_failure() -> None:
    """Count one failed authentication against the client IP."""
    limits = _rate_limits()
    for item in limits.failed_auth:
        _reachable(limits.strategy.hit, item, "failed-auth", request.remote_addr or "-")


def _add_rate_limit_headers(response):
    """Tell the caller where it stands on its tightest limit (IETF RateLimit fields, seconds)."""
    shown = g.get("rate_limit_shown")
    if shown is None:
        return response
    items, scope, key = shown
    strategy = _rate_limits().strategy
    try:
        stats, item = min(
            ((strategy.get_window_stats(item, scope, key), item) for item in items),
            key=lambda pair: pair[0].remaining,
        )
    except StorageError:
        return response  # the answer stands; only the hint is missing
    response.headers["RateLimit-Limit"] = str(item.amount)
    response.headers["RateLimit-Remaining"] = str(stats.remaining)
    response.headers["RateLimit-Reset"] = str(max(0, math.ceil(stats.reset_time - time.time())))
    return response
