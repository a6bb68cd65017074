"""The HTTP Bearer scheme (RFC 6750), as the webhooks and /metrics read it."""


def bearer_credentials(authorization: str) -> str | None:
    """The credentials of an `Authorization: Bearer <credentials>` header, or None."""
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None
