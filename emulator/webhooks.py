"""Deliver signed webhooks from background threads, so no request ever waits on a receiver."""

from __future__ import annotations

import http.client
import json
import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from emulator.signing import sign_webhook
from emulator.store import Store

log = logging.getLogger("emulator")

WORKERS = 4  # parallel receivers; each message's events still go out in order on one worker
TIMEOUT_S = 5.0
BACKOFF_S = (0.1, 0.3, 0.9)  # waits before each retry; then the event is given up


@dataclass(frozen=True)
class Delivery:
    """Events for one URL, sent in order once their time has come."""

    url: str
    events: list[dict[str, object]]
    due: float  # time.monotonic() before which nothing is sent


@dataclass(frozen=True)
class Signer:
    """What sign_webhook needs; no secret means unsigned webhooks."""

    secret: str | None
    api_key: str
    application_id: str | None


class WebhookSender:
    """A queue and a few worker threads that POST events and retry the failures."""

    def __init__(self, signer: Signer, store: Store, workers: int = WORKERS) -> None:
        self._signer = signer
        self._store = store
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"webhooks-{n}", daemon=True)
            for n in range(workers)
        ]

    def start(self) -> None:
        """Start the workers."""
        for thread in self._threads:
            thread.start()

    def stop(self, wait_s: float = 1.0) -> None:
        """Stop the workers, dropping events not yet sent: the emulator is going away."""
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + wait_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def send(self, url: str, events: list[dict[str, object]], delay_s: float = 0.0) -> None:
        """Queue events for url; returns at once."""
        self._queue.put(Delivery(url, events, time.monotonic() + delay_s))

    def _work(self) -> None:
        connections: dict[tuple[str, str], http.client.HTTPConnection] = {}
        try:
            while (delivery := self._queue.get()) is not None:
                if self._stopping.wait(max(0.0, delivery.due - time.monotonic())):
                    return
                for event in delivery.events:
                    self._deliver(connections, delivery.url, event)
        finally:
            for connection in connections.values():
                connection.close()

    def _deliver(
        self,
        connections: dict[tuple[str, str], http.client.HTTPConnection],
        url: str,
        event: dict[str, object],
    ) -> None:
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "vonage-emulator"}
        signer = self._signer
        if signer.secret:
            token = sign_webhook(body, signer.secret, signer.api_key, signer.application_id)
            headers["Authorization"] = f"Bearer {token}"
        for attempt, backoff in enumerate((*BACKOFF_S, None), start=1):
            problem = _post(connections, url, body, headers)
            if problem is None:
                self._store.count_webhook(delivered=True)
                return
            kind = event.get("status", "inbound")
            log.warning("webhook %s to %s failed (try %d): %s", kind, _where(url), attempt, problem)
            if backoff is None or self._stopping.wait(backoff):
                break
        self._store.count_webhook(delivered=False)


def _post(
    connections: dict[tuple[str, str], http.client.HTTPConnection],
    url: str,
    body: bytes,
    headers: dict[str, str],
) -> str | None:
    """POST once over a kept-alive connection; return why it failed, or None."""
    parts = urlsplit(url)
    key = (parts.scheme, parts.netloc)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # A kept connection the receiver closed while idle fails at once: retry it fresh, unlogged.
    for fresh in (key not in connections, True):
        try:
            connection = connections.get(key) or _connect(parts.scheme, parts.netloc)
            connections[key] = connection
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.will_close:
                connections.pop(key).close()
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            dropped = connections.pop(key, None)
            if dropped is not None:
                dropped.close()
            if fresh:
                return f"{type(exc).__name__}: {exc}"
    return "unreachable"


def _connect(scheme: str, netloc: str) -> http.client.HTTPConnection:
    if scheme == "https":
        context = ssl.create_default_context()
        return http.client.HTTPSConnection(netloc, timeout=TIMEOUT_S, context=context)
    if scheme == "http":
        return http.client.HTTPConnection(netloc, timeout=TIMEOUT_S)
    raise ValueError(f"unsupported webhook scheme {scheme!r}")


def _where(url: str) -> str:
    # Enough to find the receiver; a query string might carry a token, so it is left out.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
