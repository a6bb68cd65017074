"""The bulkhead: at most VONAGE_MAX_IN_FLIGHT sends in progress per process.

A slow Vonage must not take every greenlet, socket and byte of memory with it. A send
that finds no free slot waits BUSY_WAIT_MS at most, then is refused 503 `service-busy`
with Retry-After: fast, before any limit is spent or anything reaches Vonage, and not
kept under its Idempotency-Key. Only sends take slots: /health, /metrics, webhooks,
GET /messages and opt-outs never wait behind them. init_bulkhead attaches the process's
bulkhead; get_bulkhead reaches it.
"""

from __future__ import annotations

import functools
import threading

from flask import Flask, current_app

from ..metrics import SENDS_IN_FLIGHT, SENDS_SHED
from ..settings import Settings
from .problems import service_busy

_EXTENSION = "bulkhead"  # its key in app.extensions


class Bulkhead:
    """A bounded set of slots with a short wait for one (threads or greenlets alike)."""

    def __init__(self, size: int, wait_s: float):
        self.size, self.wait_s = size, wait_s
        self._slots = threading.BoundedSemaphore(size)

    def acquire(self) -> None:
        """Take a slot, or raise ServiceBusy after wait_s."""
        if not self._slots.acquire(timeout=self.wait_s):
            SENDS_SHED.inc()
            raise service_busy()
        SENDS_IN_FLIGHT.inc()

    def release(self) -> None:
        SENDS_IN_FLIGHT.dec()
        self._slots.release()


def init_bulkhead(app: Flask, settings: Settings) -> None:
    """Attach the bulkhead of VONAGE_MAX_IN_FLIGHT slots (get_bulkhead reaches it)."""
    size, wait_s = settings.vonage_max_in_flight, settings.busy_wait_ms / 1000
    app.extensions[_EXTENSION] = Bulkhead(size, wait_s)


def get_bulkhead(app: Flask | None = None) -> Bulkhead:
    """The bulkhead of `app`, by default of the app handling the current request."""
    return (current_app if app is None else app).extensions[_EXTENSION]


def one_slot_per_send(view):
    """Hold one of the process's send slots for the rest of the request."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        bulkhead = get_bulkhead()
        bulkhead.acquire()
        try:
            return view(*args, **kwargs)
        finally:
            bulkhead.release()

    return wrapped
