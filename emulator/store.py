"""What the emulator remembers: accepted messages and counters, shared by all threads."""

from __future__ import annotations

import threading
from collections import Counter, deque

MAX_MESSAGES = 10_000  # keep memory flat under a long benchmark; the counters stay exact


class Store:
    """Thread-safe record of traffic; one lock, held only for a few dictionary operations."""

    def __init__(self, max_messages: int = MAX_MESSAGES) -> None:
        self._lock = threading.Lock()
        self._messages: deque[dict[str, object]] = deque(maxlen=max_messages)
        self._attempts: Counter[str] = Counter()
        self._throttled: set[str] = set()
        self._connections = self._requests = self._accepted = 0
        self._webhooks_sent = self._webhooks_failed = 0

    def count_connection(self) -> None:
        """Note one TLS connection, so tests can tell whether a client keeps its connection."""
        with self._lock:
            self._connections += 1

    def count_request(self, to: str | None) -> None:
        """Note one request to /v1/messages, per recipient when it names one."""
        with self._lock:
            self._requests += 1
            if to is not None:
                self._attempts[to] += 1

    def first_time(self, to: str) -> bool:
        """Tell whether this recipient is seen for the first time since start or reset."""
        with self._lock:
            if to in self._throttled:
                return False
            self._throttled.add(to)
            return True

    def accept(self, message: dict[str, object]) -> None:
        """Record a message answered with 202."""
        with self._lock:
            self._accepted += 1
            self._messages.append(message)

    def count_webhook(self, delivered: bool) -> None:
        """Note a webhook that reached its receiver, or one given up on."""
        with self._lock:
            if delivered:
                self._webhooks_sent += 1
            else:
                self._webhooks_failed += 1

    def messages(self) -> list[dict[str, object]]:
        """Copy the accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    def stats(self) -> dict[str, object]:
        """Copy the counters as the /_emulator/stats body."""
        with self._lock:
            return {
                "connections": self._connections,
                "requests": self._requests,
                "accepted": self._accepted,
                "attempts": dict(self._attempts),
                "webhooks": {"sent": self._webhooks_sent, "failed": self._webhooks_failed},
            }

    def reset(self) -> None:
        """Forget messages, counters and throttled-once state, as if just started."""
        with self._lock:
            self._messages.clear()
            self._attempts.clear()
            self._throttled.clear()
            self._connections = self._requests = self._accepted = 0
            self._webhooks_sent = self._webhooks_failed = 0
