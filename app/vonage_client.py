"""The one Vonage client: cached JWT, a timeout, pooled connections, and no hidden re-sends."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry
from vonage import HttpClientOptions, Vonage

from .settings import Settings
from .vonage_auth import CachedJwtAuth

POOL_SIZE = 32  # at least gunicorn's threads per worker, so every thread keeps its connection


class OutcomeUnknown(requests.RequestException):
    """The connection broke after the request was sent: Vonage may have accepted it."""


class SingleSendAdapter(HTTPAdapter):
    """Send each request at most once.

    The SDK re-sends a POST by itself when the connection closes without an answer
    (`RemoteDisconnected` in HttpClient.make_request). If Vonage had read the request,
    that sends the SMS twice. Raising OutcomeUnknown, which is not a ConnectionError,
    takes the request out of that loop; the gateway then answers like a read timeout.
    """

    def send(self, request, *args, **kwargs):
        try:
            return super().send(request, *args, **kwargs)
        except requests.ConnectionError as exc:
            if never_left(exc):
                raise
            raise OutcomeUnknown("connection lost after the request was sent") from exc


def never_left(exc: requests.ConnectionError) -> bool:
    """Tell whether the request certainly never reached Vonage (no connection was made)."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, MaxRetryError) and isinstance(
        cause.reason, (NewConnectionError, ConnectTimeoutError)
    )


def build_vonage_client(settings: Settings, clock: Callable[[], float] = time.time) -> Vonage:
    """Build the application's single Vonage client."""
    auth = CachedJwtAuth(settings.vonage_application_id, settings.vonage_private_key, clock)
    options = HttpClientOptions(
        api_host=settings.vonage_api_host,
        timeout=settings.vonage_timeout_s,  # the SDK waits forever by default
        pool_maxsize=POOL_SIZE,
        max_retries=0,  # retries are the gateway's decision alone
    )
    client = Vonage(auth=auth, http_client_options=options)
    adapter = SingleSendAdapter(pool_maxsize=POOL_SIZE, max_retries=Retry(total=0, redirect=False))
    # The SDK offers no hook for its transport; its session is the one place to put ours.
    session = client.http_client._session
    session.mount("https://", adapter)
    read_environment_once(session, f"https://{settings.vonage_api_host}")
    return client


def read_environment_once(session: requests.Session, url: str) -> None:
    """Take the CA bundle and proxies from the environment now, not on every request.

    With trust_env, requests re-reads proxy and CA settings for each call (about a tenth
    of a send's CPU, measured with py-spy); they do not change while the service runs.
    """
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    session.proxies.update(requests.utils.get_environ_proxies(url))
    session.trust_env = False
