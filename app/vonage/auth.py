"""Application JWTs for Vonage, signed once and reused until they are due for renewal.

The SDK, as its README uses it, re-reads the PEM for every request (about 50 ms
of CPU for a 2048-bit key). We keep the parsed key and one signed token, and
renew the token well before its 15 minutes run out (an old SDK cached tokens
past expiry and every call failed after 15 minutes: vonage-python-sdk#223).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from vonage import Auth

TOKEN_LIFETIME_S = 15 * 60
RENEW_AFTER_S = 10 * 60


class CachedJwtAuth(Auth):
    """The SDK's Auth, answering with a cached application JWT."""

    def __init__(
        self,
        application_id: str,
        private_key: RSAPrivateKey,
        clock: Callable[[], float] = time.time,
    ):
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,  # the SDK refuses PKCS#1 text
            serialization.NoEncryption(),
        ).decode()
        super().__init__(application_id=application_id, private_key=pem)
        self._key = private_key
        self._clock = clock
        self._lock = threading.Lock()
        self._token = b""
        self._renew_at = 0.0

    def generate_application_jwt(self, claims: dict | None = None) -> bytes:
        """Return the cached token; custom claims get a token of their own."""
        if claims:
            return self._sign(claims)
        with self._lock:
            if self._clock() >= self._renew_at:
                self._token = self._sign({})
                self._renew_at = self._clock() + RENEW_AFTER_S
            return self._token

    def create_jwt_auth_string(self) -> bytes:
        return b"Bearer " + self.generate_application_jwt()

    def renew(self) -> None:
        """Forget the token, e.g. after Vonage refused it; the next call signs a new one."""
        with self._lock:
            self._renew_at = 0.0

    def _sign(self, claims: dict) -> bytes:
        now = int(self._clock())
        payload = {
            "application_id": self.application_id,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "exp": now + TOKEN_LIFETIME_S,
            **claims,
        }
        return jwt.encode(payload, self._key, algorithm="RS256").encode()
