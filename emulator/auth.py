"""Check the application JWT as Vonage does: RS256, our application, not expired."""

from __future__ import annotations

import threading
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

LEEWAY_S = 30  # tolerate clock skew between the client and us
CACHE_LIMIT = 4096  # tokens remembered; a client reusing its JWT skips the RSA check


class KeyFileError(ValueError):
    """The key file holds no RSA key we can verify with."""


def load_public_key(pem: bytes) -> RSAPublicKey:
    """Accept the application's public key or its private key (whose public half we keep)."""
    try:
        if b"PRIVATE KEY" in pem:
            key = serialization.load_pem_private_key(pem, password=None)
            if isinstance(key, RSAPrivateKey):
                return key.public_key()
        else:
            public = serialization.load_pem_public_key(pem)
            if isinstance(public, RSAPublicKey):
                return public
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"cannot read the key: {exc}") from exc
    raise KeyFileError("the key is not an RSA key (Vonage application keys are RSA)")


class JwtVerifier:
    """Verify bearer tokens with a key loaded once, remembering tokens already checked."""

    def __init__(self, public_key: RSAPublicKey, application_id: str) -> None:
        self._key = public_key
        self._application_id = application_id
        self._known: dict[str, float] = {}  # token -> exp
        self._lock = threading.Lock()

    def is_valid(self, authorization: str | None) -> bool:
        """Tell whether an Authorization header carries an acceptable application JWT."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        now = time.time()
        with self._lock:
            exp = self._known.get(token)
        if exp is not None:
            return exp + LEEWAY_S > now
        claims = self._decode(token)
        if claims is None:
            return False
        with self._lock:
            if len(self._known) >= CACHE_LIMIT:
                self._known.clear()  # crude but bounded; a miss only costs one RSA verify
            self._known[token] = float(claims["exp"])
        return True

    def _decode(self, token: str) -> dict[str, object] | None:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["RS256"],  # never HS256 with the public key, never "none"
                leeway=LEEWAY_S,
                options={"require": ["exp", "application_id"]},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("application_id") != self._application_id:
            return None
        return claims
