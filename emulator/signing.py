"""Sign webhooks as Vonage does (HS256 JWT with payload_hash), and check such a signature.

HS256 is written out with hmac rather than PyJWT so that short signature secrets, which
Vonage allows, sign without PyJWT's key-length warning.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

HEADER = {"alg": "HS256", "typ": "JWT"}


class SignatureError(ValueError):
    """A webhook token that does not verify."""


def payload_hash(body: bytes) -> str:
    """Hash the exact raw body bytes, lowercase hex, as the payload_hash claim holds."""
    return hashlib.sha256(body).hexdigest()


def sign_webhook(
    body: bytes,
    secret: str,
    api_key: str,
    application_id: str | None = None,
    *,
    issued_at: int | None = None,
    jti: str | None = None,
) -> str:
    """Return the JWT that goes after "Bearer " on a webhook carrying exactly these body bytes."""
    claims: dict[str, object] = {
        "iat": int(time.time()) if issued_at is None else issued_at,
        "jti": jti or str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": payload_hash(body),
        "api_key": api_key,
    }
    if application_id:
        claims["application_id"] = application_id  # Vonage adds it "if an application was used"
    signing_input = f"{_b64_json(HEADER)}.{_b64_json(claims)}"
    return f"{signing_input}.{_b64(_mac(signing_input, secret))}"


def verify_webhook(token: str, secret: str, body: bytes | None = None) -> dict[str, object]:
    """Reverse sign_webhook: check the HS256 signature (and payload_hash if body given)."""
    try:
        header_part, claims_part, signature_part = token.split(".")
        header = json.loads(_unb64(header_part))
        claims = json.loads(_unb64(claims_part))
        signature = _unb64(signature_part)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"malformed token: {exc}") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise SignatureError("token is not HS256")
    if not hmac.compare_digest(signature, _mac(f"{header_part}.{claims_part}", secret)):
        raise SignatureError("signature does not match the secret")
    if not isinstance(claims, dict):
        raise SignatureError("claims are not a JSON object")
    if body is not None and claims.get("payload_hash") != payload_hash(body):
        raise SignatureError("payload_hash does not match the body")
    return claims


def _mac(signing_input: str, secret: str) -> bytes:
    return hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()


def _b64_json(value: dict[str, object]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
