"""Verify that a webhook comes from Vonage before reading anything in it.

Vonage signs Messages webhooks with `Authorization: Bearer <JWT>`: HS256 with the
account's signature secret, claims iat, jti, iss "Vonage", payload_hash (SHA-256 of
the raw body) and api_key. The SDK's own verifier checks only the signature; we also
check the body hash and the token's age.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import warnings
from collections.abc import Callable, Sequence

import jwt

from ..domain.problems import ApiProblem, Problem
from .bearer import bearer_credentials

FUTURE_LEEWAY_S = 60
MAX_JTI_LENGTH = 128  # Vonage's are UUIDs

# Vonage chooses the secret's length ("no less than 32 bits" in its docs); PyJWT's warning
# about short HMAC keys would only repeat on every webhook.
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)


class MissingToken(ApiProblem):
    """No token at all: Vonage documents rare unsigned callbacks and retries them on a 5xx."""

    def __init__(self):
        super().__init__(Problem.WEBHOOK_UNSIGNED, Problem.WEBHOOK_UNSIGNED.describe())


class BadSignature(ApiProblem):
    """A token that is not Vonage's: unauthorized, with a title that says which credential."""

    def __init__(self, reason: str):
        super().__init__(
            Problem.UNAUTHORIZED,
            reason,
            title="Invalid webhook signature",
            headers={"WWW-Authenticate": "Bearer"},
        )


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer` header; MissingToken when there is none."""
    if not authorization.strip():
        raise MissingToken()
    token = bearer_credentials(authorization)
    if token is None:
        raise BadSignature("The Authorization header must be 'Bearer <JWT>'.")
    return token


def verify_signature(token: str, secrets: Sequence[str]) -> dict[str, object]:
    """Return the claims of an HS256 token signed with one of `secrets` (several for rotation)."""
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError:
        raise BadSignature("The token is not a JWT.") from None
    if algorithm != "HS256":
        raise BadSignature("The token must be signed with HS256.")
    for secret in secrets:
        try:
            return jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                options={"verify_exp": True, "verify_iat": False, "verify_aud": False},
            )
        except jwt.InvalidSignatureError:
            continue  # perhaps the next secret of a rotation
        except jwt.InvalidTokenError as exc:
            raise BadSignature(f"The token is invalid ({type(exc).__name__}).") from None
    raise BadSignature("The token is not signed with our signature secret.")


def check_claims(
    claims: dict[str, object],
    max_age_s: int,
    clock: Callable[[], float] = time.time,
) -> None:
    """Check the token's age, issuer and id (before the body is read); all are required."""
    issued_at = claims.get("iat")
    now = clock()
    if not isinstance(issued_at, (int, float)) or isinstance(issued_at, bool):
        raise BadSignature("The token has no iat.")
    if issued_at < now - max_age_s:
        raise BadSignature(f"The token is older than {max_age_s} s.")
    if issued_at > now + FUTURE_LEEWAY_S:
        raise BadSignature("The token is issued in the future.")
    if claims.get("iss") != "Vonage":  # Vonage's docs: always "Vonage"; its real tokens agree
        raise BadSignature("The token is not issued by Vonage (iss must be 'Vonage').")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise BadSignature("The token has no jti: each token is applied once, by its id.")


def token_life_s(max_age_s: int) -> int:
    """The longest a token can stay acceptable after it first arrives (iat may be up to
    FUTURE_LEEWAY_S ahead): how long its jti must be remembered to refuse a replay."""
    return max_age_s + FUTURE_LEEWAY_S + 1


def check_payload_hash(claims: dict[str, object], body: bytes) -> None:
    """Check the token's payload_hash against the raw body."""
    expected = hashlib.sha256(body).hexdigest()
    presented = claims.get("payload_hash")
    if not isinstance(presented, str) or not hmac.compare_digest(presented, expected):
        raise BadSignature("payload_hash does not match the body.")
