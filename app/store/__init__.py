"""Where the service keeps its state: message records, the opt-out list, Idempotency-Key
answers, webhook token ids and the rate limits' counters; in a SQLite file, in Redis, or in
process memory.

contract.py is what every store answers; sqlite.py (the embedded default), redis_store.py
(shared by workers and instances) and memory.py (unit tests, STATE_PATH=:memory:) keep it. The
admission (admission.py, and redis_admission.py in one round trip) runs a send's checks
on the state. The factories below choose the store; init_store attaches the app's
store, and get_store reaches it.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app
from limits.strategies import RateLimiter

from ..settings import Settings
from .admission import Admission, LimitItems, StepwiseAdmission
from .contract import Store
from .memory import MemoryStore
from .sqlite import SQLiteStore

logger = logging.getLogger("sms_service")

_EXTENSION = "store"  # the store's key in app.extensions


def init_store(app: Flask, settings: Settings) -> None:
    """Attach the app's store (get_store reaches it)."""
    app.extensions[_EXTENSION] = build_store(settings)


def get_store(app: Flask | None = None) -> Store:
    """The store of `app`, by default of the app handling the current request."""
    return (current_app if app is None else app).extensions[_EXTENSION]


def build_store(settings: Settings) -> Store:
    """Redis when REDIS_URL is set (shared by workers and instances); else the SQLite file at
    STATE_PATH; process memory only when STATE_PATH is :memory:, with a warning."""
    if settings.redis_url:
        from .redis_store import RedisStore, connect  # redis-py only where it is used

        return RedisStore(
            connect(settings.redis_url), settings.message_retention_s, settings.max_messages
        )
    max_answer_bytes = settings.idempotency_max_mb * 1024 * 1024
    if settings.state_file:
        return SQLiteStore(
            settings.state_file,
            settings.message_retention_s,
            settings.max_messages,
            max_answer_bytes=max_answer_bytes,
        )
    logger.warning(
        "STATE_PATH=:memory: keeps state in process memory: a restart forgets opt-outs, "
        "idempotency keys and message records"
    )
    return MemoryStore(
        settings.message_retention_s, settings.max_messages, max_answer_bytes=max_answer_bytes
    )


def build_admission(
    settings: Settings, store: Store, strategy: RateLimiter, limits: LimitItems
) -> Admission:
    """One round trip when the state is in Redis; one call per check otherwise (the SQLite
    file or process memory: no round trip)."""
    if settings.redis_url:
        from .redis_admission import RedisAdmission

        return RedisAdmission(store.redis, limits, strategy.storage.prefixed_key)
    return StepwiseAdmission(strategy, store, limits)
