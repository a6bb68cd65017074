"""The store in process memory: the embedded default, for one process.

A shared store (redis_store.py) sits behind the same methods (contract.py); the rules
both keep are the domain's (app/domain: records, optouts, claims).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from ..domain.claims import Claim, claim_from
from ..domain.optouts import OptIn, OptOut, OptOutSource, added_opt_out, may_lift
from ..domain.records import Record, apply_status, merge_sent

# Idempotency entries past their expiry forgotten by one begin_request, at most: it holds the
# lock, so its work is bounded; each begin adds one entry, so the expired still drain.
EXPIRED_PER_BEGIN = 8
ENTRY_OVERHEAD = 300  # bytes an idempotency entry costs beyond its key and answer body, roughly
MAX_KNOWN_KEYS = 100_000  # (address, credential) pairs that pass the brake; the oldest go first
# Webhook token ids kept in memory at most: about 200 bytes each, so 20 MB. Only tokens
# signed with our secret get here, and they live WEBHOOK_MAX_AGE + 61 s (6 min by default):
# the bound holds up to about 270 webhooks a second; past it the oldest id goes first.
MAX_WEBHOOK_TOKENS = 100_000


def request_entry_size(key: str, entry: dict) -> int:
    """About how many bytes an idempotency entry costs: its key, its answer's body, overhead."""
    return len(key) + ENTRY_OVERHEAD + len(entry.get("response", {}).get("body", ""))


class MemoryStore:
    """The store in process memory: records and webhook token ids bounded by age and count,
    opt-outs kept, and Idempotency-Key answers bounded by age, count (max_messages) and bytes."""

    kind = "memory"

    def __init__(
        self,
        retention_s: int,
        max_messages: int,
        clock: Callable[[], float] = time.time,
        max_answer_bytes: int = 64 * 1024 * 1024,
        max_webhook_tokens: int = MAX_WEBHOOK_TOKENS,
    ):
        self.retention_s, self.max_messages, self.clock = retention_s, max_messages, clock
        self.max_answer_bytes = max_answer_bytes
        self.max_webhook_tokens = max_webhook_tokens
        self._lock = threading.Lock()
        self._messages: OrderedDict[str, tuple[float, Record]] = OrderedDict()  # oldest first
        self._opt_outs: dict[str, OptOut] = {}
        # key -> (expires at, entry, bytes), in the order the keys were taken: oldest first
        self._requests: OrderedDict[str, tuple[float, dict, int]] = OrderedDict()
        self._request_bytes = 0
        # (address, credential name) -> when it stops passing the brake: soonest first
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._tokens: OrderedDict[str, float] = OrderedDict()  # jti -> expires at, oldest first

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

    def opt_out(self, number: str, since: str, source: OptOutSource) -> OptOut:
        with self._lock:
            entry = added_opt_out(self._opt_outs.get(number), since, source)
            self._opt_outs[number] = entry
            return entry

    def opt_in(self, number: str, by: OptOutSource, override: bool = False) -> OptIn:
        with self._lock:
            found = self._opt_outs.get(number)
            if found is None or not may_lift(found, by, override):
                return OptIn(found, removed=False)
            del self._opt_outs[number]
            return OptIn(found, removed=True)

    def opt_out_entry(self, number: str) -> OptOut | None:
        with self._lock:
            return self._opt_outs.get(number)

    def note_key_at(self, client_ip: str, name: str, ttl_s: int) -> None:
        with self._lock:
            now = self.clock()
            self._known[(client_ip, name)] = now + ttl_s
            self._known.move_to_end((client_ip, name))
            for _ in range(EXPIRED_PER_BEGIN):  # a few at a time, as for idempotency keys
                oldest = next(iter(self._known.items()), None)
                if oldest is None or oldest[1] > now:
                    break
                del self._known[oldest[0]]
            while len(self._known) > MAX_KNOWN_KEYS:
                self._known.popitem(last=False)

    def key_known_at(self, client_ip: str, name: str) -> bool:
        with self._lock:
            return self._known.get((client_ip, name), 0.0) > self.clock()

    def opted_out_since(self, number: str) -> str | None:
        entry = self.opt_out_entry(number)
        return entry.since if entry else None

    def use_webhook_token(self, jti: str, ttl_s: int) -> bool:
        with self._lock:
            now = self.clock()
            while self._tokens and next(iter(self._tokens.values())) <= now:
                self._tokens.popitem(last=False)  # expired, from the oldest
            if self._tokens.get(jti, now) > now:
                return False  # used, and still live
            self._tokens.pop(jti, None)  # an expired one, kept behind a longer-lived one
            self._tokens[jti] = now + ttl_s
            while len(self._tokens) > self.max_webhook_tokens:
                self._tokens.popitem(last=False)
            return True

    def forget_webhook_token(self, jti: str) -> None:
        with self._lock:
            self._tokens.pop(jti, None)

    def begin_request(self, key: str, fingerprint: str, lock_s: int) -> Claim:
        with self._lock:
            current = self._live_request(key)
            if current is not None:
                return claim_from(current, fingerprint)
            self._make_room()
            token = uuid.uuid4().hex
            entry = {"state": "in_flight", "token": token, "fingerprint": fingerprint}
            self._keep_request(key, self.clock() + lock_s, entry)
            return Claim("started", token=token)

    def finish_request(self, key: str, token: str, response: dict, ttl_s: int) -> None:
        with self._lock:
            current = self._live_request(key)
            if current is not None and current["token"] == token:
                done = {**current, "state": "done", "response": response}
                self._keep_request(key, self.clock() + ttl_s, done)

    def release_request(self, key: str, token: str) -> None:
        with self._lock:
            current = self._live_request(key)
            if current is not None and current["token"] == token:
                self._forget_request(key)

    def ping(self) -> bool:
        return True

    def _live_request(self, key: str) -> dict | None:
        stored = self._requests.get(key)
        if stored is None:
            return None
        if stored[0] <= self.clock():
            self._forget_request(key)
            return None
        return stored[1]

    def _keep_request(self, key: str, expires_at: float, entry: dict) -> None:
        """Store an entry (a key kept again keeps its place in the order)."""
        size = request_entry_size(key, entry)
        previous = self._requests.get(key)
        self._request_bytes += size - (previous[2] if previous else 0)
        self._requests[key] = (expires_at, entry, size)

    def _forget_request(self, key: str) -> None:
        self._request_bytes -= self._requests.pop(key)[2]

    def _make_room(self) -> None:
        """Before a new key: forget a few expired entries from the oldest end, then the oldest
        while the entries are at max_messages or past max_answer_bytes. Never a full scan."""
        now = self.clock()
        for _ in range(EXPIRED_PER_BEGIN):
            oldest = next(iter(self._requests.items()), None)
            if oldest is None or oldest[1][0] > now:
                break
            self._forget_request(oldest[0])
        while self._requests and (
            len(self._requests) >= self.max_messages or self._request_bytes > self.max_answer_bytes
        ):
            self._forget_request(next(iter(self._requests)))

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
