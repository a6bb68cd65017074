"""Where the service keeps its state: message records, the opt-out list, Idempotency-Key
answers, webhook token ids and the rate limits' counters; in process memory or in Redis.

contract.py is what every store answers; memory.py and redis_store.py keep it. The
admission (admission.py, and redis_admission.py in one round trip) runs a send's checks
on the shared state. The factories below choose between process memory and Redis;
init_store attaches the app's store, and get_store reaches it.
"""

from __future__ import annotations

from flask import Flask, current_app
from limits.strategies import RateLimiter

from ..settings import Settings
from .admission import Admission, LimitItems, StepwiseAdmission
from .contract import Store
from .memory import MemoryStore
from .redis_admission import RedisAdmission
from .redis_store import RedisStore, connect

_EXTENSION = "store"  # the store's key in app.extensions


def init_store(app: Flask, settings: Settings) -> None:
    """Attach the app's store (get_store reaches it)."""
    app.extensions[_EXTENSION] = build_store(settings)


def get_store(app: Flask | None = None) -> Store:
    """The store of `app`, by default of the app handling the current request."""
    return (current_app if app is None else app).extensions[_EXTENSION]


def build_store(settings: Settings) -> Store:
    """Redis when REDIS_URL is set (shared by workers and instances), else process memory."""
    if settings.redis_url:
        return RedisStore(
            connect(settings.redis_url), settings.message_retention_s, settings.max_messages
        )
    return MemoryStore(
        settings.message_retention_s,
        settings.max_messages,
        max_answer_bytes=settings.idempotency_max_mb * 1024 * 1024,
    )


def build_admission(
    settings: Settings, store: Store, strategy: RateLimiter, limits: LimitItems
) -> Admission:
    """One round trip when the state is in Redis; one call per check in process memory."""
    if settings.redis_url:
        return RedisAdmission(store.redis, limits, strategy.storage.prefixed_key)
    return StepwiseAdmission(strategy, store, limits)
