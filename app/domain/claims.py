"""Idempotency-Key claims: what a request with a key is told when it arrives.

The first request with a key takes it and runs ("started", with a token that proves it
holds the key); a later one with the same body gets the kept answer ("replay") or, while
the first still runs, a "conflict"; one with another body, a "mismatch".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Claim:
    """What the store says when a request with an Idempotency-Key arrives."""

    outcome: Literal["started", "replay", "conflict", "mismatch"]
    token: str | None = None  # "started": proves ownership when finishing or releasing
    response: dict | None = None  # "replay": the stored answer


def claim_from(current: dict | None, fingerprint: str) -> Claim:
    """Interpret the entry found under a key another request already holds."""
    if current is None:
        return Claim("conflict")  # it vanished between two looks: let the caller retry
    if current["fingerprint"] != fingerprint:
        return Claim("mismatch")
    if current["state"] == "done":
        return Claim("replay", response=current["response"])
    return Claim("conflict")
