"""limits' MemoryStorage, with a bound on its moving windows' keys.

limits' own storage trims expired entries on a timer but keeps every key it has seen, with
an empty list, for the life of the process: junk client addresses once made 7 KB keys that
never went away. This subclass forgets a key once the newest entry in it is past its window
(the window then counts nothing), a few per count so that the work stays small, and keeps
at most `max_keys` keys: past it, the key counted least recently is forgotten first (its
count starts again from nothing). The moving window itself stays limits' own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from limits.storage import MemoryStorage

EXPIRED_PER_COUNT = 8  # expired keys forgotten per window length, at most, each time one is counted


class BoundedMemoryStorage(MemoryStorage):
    """limits' moving-window memory storage that forgets idle keys and holds at most max_keys."""

    STORAGE_SCHEME = ["bounded-memory"]  # limits' registry: storage_from_string finds it
    URI = "bounded-memory://"

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        max_keys: int = 100_000,
        **options,
    ):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.max_keys = int(max_keys)
        self._bound = threading.Lock()
        # For each window length, its keys by the expiry of their newest entry, soonest first:
        # within one length, the order in which keys were last counted is the order they expire.
        self._expiring: dict[int, OrderedDict[str, float]] = {}
        self._keys = 0

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        acquired = super().acquire_entry(key, limit, expiry, amount)
        if acquired:
            with self._bound:
                self._counted(key, expiry, time.time())
        return acquired

    def reset(self) -> int | None:
        with self._bound:
            self._expiring.clear()
            self._keys = 0
        return super().reset()

    def _counted(self, key: str, expiry: int, now: float) -> None:
        keys = self._expiring.setdefault(expiry, OrderedDict())
        if key not in keys:
            self._keys += 1
        keys[key] = max(keys.get(key, 0.0), now + expiry)  # a racing older count never shortens
        keys.move_to_end(key)
        for same_length in self._expiring.values():
            for _ in range(EXPIRED_PER_COUNT):
                oldest = next(iter(same_length.items()), None)
                if oldest is None or oldest[1] > now:
                    break
                self._forget(same_length, oldest[0])
        while self._keys > self.max_keys:
            _, oldest_keys = min(
                ((length, keys) for length, keys in self._expiring.items() if keys),
                key=lambda pair: next(iter(pair[1].values())) - pair[0],  # when last counted
            )
            self._forget(oldest_keys, next(iter(oldest_keys)))

    def _forget(self, keys: OrderedDict[str, float], key: str) -> None:
        del keys[key]
        self._keys -= 1
        with self.locks[key]:  # limits' own lock for the key, as its timer takes it
            self.events.pop(key, None)
        self.locks.pop(key, None)
