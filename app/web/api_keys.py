"""API-key authentication for the protected routes."""

from __future__ import annotations

import functools
import hmac

from flask import request

from ..domain.problems import ApiProblem, Problem
from .app_settings import current_settings
from .rate_limits import admit_credential
from .request_context import request_state


def require_api_key(view):
    """Reject the request with 401 unless X-API-Key is one of our keys, and with 429 while
    the failed-key brake holds the client's address (whatever key it sends next)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        name = identify_api_key(request.headers.get("X-API-Key", ""))
        admit_credential(name)  # slows key guessing; counts a wrong key
        if name is None:
            raise unauthorized()
        request_state().api_key_name = name  # for limits, logs and metrics; the secret goes nowhere
        return view(*args, **kwargs)

    return wrapped


def unauthorized() -> ApiProblem:
    """The 401 for a missing or unknown key."""
    return Problem.UNAUTHORIZED.error(headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})


def identify_api_key(presented: str) -> str | None:
    """Return the name of the key whose secret equals `presented`, comparing in constant time."""
    presented_bytes = presented.encode("utf-8", "surrogateescape")
    keys = current_settings().api_keys  # name -> secret
    found = None
    for name, secret in keys.items():  # no early exit: the time does not depend on which key
        if hmac.compare_digest(presented_bytes, secret.encode()):
            found = name
    return found
