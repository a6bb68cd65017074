"""Where the service keeps state: message records and the opt-out list.

One small interface; MemoryStore keeps it in this process (the embedded default),
and a shared implementation (Redis) sits behind the same methods.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from .records import Record, apply_status, merge_sent


class Store(Protocol):
    def save_sent(self, record: Record) -> None:
        """Keep the record of an SMS Vonage accepted (merging a webhook that came first)."""

    def apply_status(self, event: dict[str, object]) -> Record:
        """Apply a parsed status webhook and return the updated record."""

    def get_message(self, message_uuid: str) -> Record | None: ...

    def opt_out(self, number: str, since: str) -> str:
        """Add `number` to the opt-out list; return since when it is on it."""

    def opt_in(self, number: str) -> bool:
        """Remove `number` from the opt-out list; tell whether it was on it."""

    def opted_out_since(self, number: str) -> str | None: ...


class MemoryStore:
    """The store in process memory: records bounded by age and count, opt-outs kept."""

    def __init__(
        self,
        retention_s: int,
        max_messages: int,
        clock: Callable[[], float] = time.time,
    ):
        self.retention_s, self.max_messages, self.clock = retention_s, max_messages, clock
        self._lock = threading.Lock()
        self._messages: OrderedDict[str, tuple[float, Record]] = OrderedDict()  # oldest first
        self._opt_outs: dict[str, str] = {}

    def save_sent(self, record: Record) -> None:
        self._update(str(record["message_uuid"]), lambda existing: merge_sent(existing, record))

    def apply_status(self, event: dict[str, object]) -> Record:
        return self._update(
            str(event["message_uuid"]), lambda existing: apply_status(existing, event)
        )

    def get_message(self, message_uuid: str) -> Record | None:
        with self._lock:
            self._evict()
            stored = self._messages.get(message_uuid)
        return _copy(stored[1]) if stored else None

    def opt_out(self, number: str, since: str) -> str:
        with self._lock:
            return self._opt_outs.setdefault(number, since)

    def opt_in(self, number: str) -> bool:
        with self._lock:
            return self._opt_outs.pop(number, None) is not None

    def opted_out_since(self, number: str) -> str | None:
        with self._lock:
            return self._opt_outs.get(number)

    def _update(self, message_uuid: str, change: Callable[[Record | None], Record]) -> Record:
        with self._lock:
            stored = self._messages.get(message_uuid)
            record = change(_copy(stored[1]) if stored else None)
            stored_at = stored[0] if stored else self.clock()
            self._messages[message_uuid] = (stored_at, record)
            self._evict()
            return _copy(record)

    def _evict(self) -> None:
        """Forget records past the retention, and the oldest past the maximum count."""
        oldest_kept = self.clock() - self.retention_s
        while self._messages:
            first_uuid, (stored_at, _) = next(iter(self._messages.items()))
            if stored_at >= oldest_kept and len(self._messages) <= self.max_messages:
                break
            del self._messages[first_uuid]


def _copy(record: Record) -> Record:
    """Callers get their own copy: the stored record changes only under the lock."""
    return {**record, "history": [dict(entry) for entry in record["history"]]}
