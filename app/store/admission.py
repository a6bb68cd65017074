"""Admission of one POST /send-sms: every check that needs the shared state, in one step.

The API promises an order of refusals: the failed-key brake, a wrong key, a destination
not allowed (known in Python: its ticket stops after the key), an Idempotency-Key already
taken, the key's segment budget (of a valid body only: its cost is the text's segments),
the key's limit, the body, the opt-out list, the recipient's limit. The budget is tested
before any request limit is counted and spent last, once every other gate has passed: a
send it refuses spends nothing, and a send another gate refuses spends none of it. A replay
of an Idempotency-Key costs nothing either.

Comparing the key and validating the body are CPU work; the other checks read or count
shared state. So the caller works out a Ticket first (who asks, and how far the storage
checks must go before a refusal Python already knows about), then one `admit` runs the
storage checks in that order and returns a Verdict: the first gate that refused, or none.

The brake: once an address has failed AUTH_FAILURE_LIMIT, every credential it sends is
refused (429), right or wrong, so that a guess cannot be confirmed; except a credential
that succeeded from that same address within the last `known_key_s` (24 h). An attacker
has no such credential, and a braked shared address (a NAT, a sidecar, a load balancer)
still serves the callers who were already using it. Other routes' credentials (the
metrics token, webhook signatures) use the same brake: a ticket stopped after the key.

Two implementations keep one contract (tests/test_admission_contract.py).
StepwiseAdmission calls limits' strategy and the Store one check at a time: in process
memory a call costs nothing. RedisAdmission (redis_admission.py) runs the same
sequence as one Lua script, so that a send waits on Redis once for all of it.

The window the answer's RateLimit headers show is the tightest (fewest left) of the key's
request limits and its segment budget, once the key's limit has passed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from limits import RateLimitItem
from limits.errors import StorageError
from limits.strategies import RateLimiter
from limits.util import WindowStats

from ..domain.claims import Claim
from .contract import StorageUnavailable, Store

# The identifiers of limits' counters, as limits' key_for(scope, id) spells them.
FAILED_AUTH, API_KEY, RECIPIENT = "failed-auth", "api-key", "recipient"
BUDGET = "segment-budget"  # the key's segments, not its requests

Gate = Literal[
    "failed-auth", "api-key", "idempotency", "budget", "key-limit", "opt-out", "recipient-limit"
]
# The last gate a ticket needs: past it, Python already holds the refusal (a malformed
# Idempotency-Key or a destination not allowed after the key's check, an invalid body after
# the key's limit).
StopAfter = Literal["api-key", "key-limit", "recipient-limit"]


KNOWN_KEY_S = 24 * 3600  # how long a credential that succeeded from an address passes its brake


@dataclass(frozen=True)
class LimitItems:
    """The parsed limits: failed keys per client IP, per API key, per recipient; how long
    a credential that succeeded from an address passes that address's brake; and the
    key's segment budget (empty: none)."""

    failed_auth: list[RateLimitItem]
    per_key: list[RateLimitItem]
    per_recipient: list[RateLimitItem]
    known_key_s: int = KNOWN_KEY_S
    segment_budget: Sequence[RateLimitItem] = ()


@dataclass(frozen=True)
class IdempotencyTicket:
    """An Idempotency-Key to take for this request before the key's limit is counted."""

    key: str  # "<api key name>:<sha256 of the header>"
    fingerprint: str  # the body's meaning
    lock_s: int  # how long the request may hold it if it never finishes


@dataclass(frozen=True)
class Ticket:
    """What one request asks of the shared state, worked out before any round trip."""

    client_ip: str
    # The key's name (or another credential's: "#metrics", "#webhook"); None when the
    # presented secret matched none.
    api_key: str | None
    stop_after: StopAfter = "recipient-limit"
    idempotency: IdempotencyTicket | None = None
    recipient: str | None = None  # E.164; needed when stop_after is "recipient-limit"
    segments: int = 1  # the text's cost against the segment budget, with the recipient


@dataclass(frozen=True)
class Window:
    """Where one limit stands: limits' own WindowStats (reset time, remaining)."""

    item: RateLimitItem
    stats: WindowStats


@dataclass(frozen=True)
class Verdict:
    """The first gate that refused (None: every gate run let the request through)."""

    refused_by: Gate | None
    # The refusing limit's window, or else the tightest of the key's limits and segment
    # budget once its limit has passed.
    window: Window | None = None
    claim: Claim | None = None  # the Idempotency-Key's, once its gate has run
    opted_out_since: str | None = None


class Admission(Protocol):
    def admit(self, ticket: Ticket) -> Verdict:
        """Run the storage's gates in order up to `ticket.stop_after`; raise
        StorageUnavailable when the storage is out of reach."""


def recipient_key(e164: str) -> str:
    """The recipient's limit counter: hashed, so that phone numbers never become keys."""
    return hashlib.sha256(e164.encode()).hexdigest()[:32]


class StepwiseAdmission:
    """Admission by one call per check, through limits' strategy and the Store.

    Right for process memory and the SQLite file, where a call costs no round trip (tens of
    microseconds in SQLite). Each check is atomic, as limits' and the store's own are; the
    sequence is not, and need not be: two requests that interleave still each see counters
    that only grow.
    """

    def __init__(self, strategy: RateLimiter, store: Store, limits: LimitItems):
        self.strategy, self.store, self.limits = strategy, store, limits

    def admit(self, ticket: Ticket) -> Verdict:
        try:
            return self._admit(ticket)
        except StorageError as exc:
            raise StorageUnavailable() from exc

    def _admit(self, ticket: Ticket) -> Verdict:
        verdict = self._credential(ticket)
        if verdict is not None or ticket.stop_after == "api-key":
            return verdict or Verdict(None)
        claim = None
        if ticket.idempotency is not None:  # before the key's limit: a replay costs nothing
            wanted = ticket.idempotency
            claim = self.store.begin_request(wanted.key, wanted.fingerprint, wanted.lock_s)
            if claim.outcome != "started":
                return Verdict("idempotency", claim=claim)
        return self._limits(ticket, claim)

    def _credential(self, ticket: Ticket) -> Verdict | None:
        """The brake, then the key: a refusal, or None once the key is noted at the address."""
        limits, ip = self.limits, ticket.client_ip
        for item in limits.failed_auth:  # the brake: refuse whatever key comes next...
            if not self.strategy.test(item, FAILED_AUTH, ip):
                if ticket.api_key is None or not self.store.key_known_at(ip, ticket.api_key):
                    return Verdict("failed-auth", self._window(item, FAILED_AUTH, ip))
                break  # ...but a key that succeeded from this address lately
        if ticket.api_key is None:
            for item in limits.failed_auth:
                self.strategy.hit(item, FAILED_AUTH, ip)
            return Verdict("api-key")
        self.store.note_key_at(ip, ticket.api_key, limits.known_key_s)
        return None

    def _limits(self, ticket: Ticket, claim: Claim | None) -> Verdict:
        """The budget's test, the key's limit, the opt-out list, the recipient's limit, and
        last the budget's spending."""
        limits, key, cost = self.limits, ticket.api_key, ticket.segments
        sending = ticket.stop_after == "recipient-limit"  # a valid body: its cost is known
        for item in limits.segment_budget if sending else ():
            if not self.strategy.test(item, BUDGET, key, cost=cost):
                return Verdict("budget", self._window(item, BUDGET, key), claim)
        for item in limits.per_key:
            if not self.strategy.hit(item, API_KEY, key):
                return Verdict("key-limit", self._window(item, API_KEY, key), claim)
        if not sending:
            return Verdict(None, self._tightest(key), claim)
        assert ticket.recipient is not None, "a ticket that goes to the end names its recipient"
        since = self.store.opted_out_since(ticket.recipient)
        if since is not None:  # before the recipient's limit: a refusal uses no allowance
            return Verdict("opt-out", self._tightest(key), claim, since)
        counter = recipient_key(ticket.recipient)
        for item in limits.per_recipient:
            if not self.strategy.hit(item, RECIPIENT, counter):
                return Verdict("recipient-limit", self._window(item, RECIPIENT, counter), claim)
        for item in limits.segment_budget:  # spent by a racing send since the test
            if not self.strategy.hit(item, BUDGET, key, cost=cost):
                return Verdict("budget", self._window(item, BUDGET, key), claim)
        return Verdict(None, self._tightest(key), claim)

    def _tightest(self, key: str) -> Window:
        """The key's window with the fewest left: a request limit, or the segment budget."""
        windows = [self._window(item, API_KEY, key) for item in self.limits.per_key]
        windows += [self._window(item, BUDGET, key) for item in self.limits.segment_budget]
        return min(windows, key=lambda window: window.stats.remaining)

    def _window(self, item: RateLimitItem, scope: str, key: str) -> Window:
        return Window(item, self.strategy.get_window_stats(item, scope, key))
