"""The Store contract: what every store answers (memory.py in this process, redis_store.py
shared), and the one way it fails. tests/test_store_contract.py runs one set of tests
against both; the rules they keep are the domain's (records, opt-outs, claims)."""

from __future__ import annotations

from typing import Protocol

from ..domain.claims import Claim
from ..domain.optouts import OptIn, OptOut, OptOutSource
from ..domain.records import Record


class StorageUnavailable(Exception):
    """The state (Redis, or the STATE_PATH file) is out of reach or cannot be written: the
    caller refuses rather than send unlimited or twice (app/web/problems.py answers it
    503 storage-unavailable)."""


class Store(Protocol):
    """What every store answers; a shared one raises StorageUnavailable when out of reach."""

    kind: str  # "sqlite", "redis" or "memory", as /health reports it

    def save_sent(self, record: Record) -> None:
        """Keep the record of an SMS Vonage accepted (merging a webhook that came first)."""

    def apply_status(self, event: dict[str, object]) -> Record:
        """Apply a parsed status webhook and return the updated record."""

    def get_message(self, message_uuid: str) -> Record | None: ...

    def opt_out(self, number: str, since: str, source: OptOutSource) -> OptOut:
        """Add `number` to the opt-out list (see added_opt_out); return its entry."""

    def opt_in(self, number: str, by: OptOutSource, override: bool = False) -> OptIn:
        """Take `number` off the opt-out list if may_lift allows it, atomically."""

    def opt_out_entry(self, number: str) -> OptOut | None: ...

    def opted_out_since(self, number: str) -> str | None: ...

    def note_key_at(self, client_ip: str, name: str, ttl_s: int) -> None:
        """Remember for `ttl_s` that the credential `name` succeeded from `client_ip`."""

    def key_known_at(self, client_ip: str, name: str) -> bool:
        """Tell whether the credential `name` succeeded from `client_ip` lately."""

    def use_webhook_token(self, jti: str, ttl_s: int) -> bool:
        """Remember a webhook token's id for `ttl_s`; False when it was used already."""

    def forget_webhook_token(self, jti: str) -> None:
        """Forget a token's id, so that a retry of a webhook that failed is applied."""

    def begin_request(self, key: str, fingerprint: str, lock_s: int) -> Claim:
        """Take `key` for a new request, atomically, or say who holds it."""

    def finish_request(self, key: str, token: str, response: dict, ttl_s: int) -> None:
        """Keep the final answer under `key` (if we still hold it) for `ttl_s`."""

    def release_request(self, key: str, token: str) -> None:
        """Let go of `key` without an answer, so the caller may retry with it."""

    def ping(self) -> bool:
        """Tell whether the store answers and takes writes."""
