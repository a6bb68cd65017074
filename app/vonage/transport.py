"""Our transport to Vonage: a pool we own, headers built per request, no hidden re-sends.

The SDK's HttpClient is not used: it re-sends a POST by itself when a connection closes
without an answer, keeps one headers dict that every thread writes to, and runs pydantic
checks and debug f-strings on every call. The SDK still provides the Auth that signs our
application JWT (CachedJwtAuth) and the Sms model that builds the body (gateway.to_vonage_sms).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from ..settings import Settings
from .auth import CachedJwtAuth

MESSAGES_PATH = "/v1/messages"
USER_AGENT = (
    f"sms-service/1.0 python-requests/{requests.__version__} python/{platform.python_version()}"
)


class OutcomeUnknown(requests.RequestException):
    """The connection broke after the request was sent: Vonage may have accepted it."""


class AnswerTimedOut(OutcomeUnknown):
    """The request was sent and no answer came within the read timeout."""


class ConnectFailed(NewConnectionError):
    """Opening the connection failed (TCP, proxy tunnel or TLS handshake): nothing was sent."""


class _HttpsConnection(HTTPSConnection):
    """Mark every failure while connecting, so it cannot be mistaken for one after sending.

    urllib3 reports a TLS error in the handshake and one in the middle of an answer alike
    (SSLError); only the first is safe to retry.
    """

    def connect(self) -> None:
        try:
            super().connect()
        except (NewConnectionError, ConnectTimeoutError):
            raise  # already says "never connected"
        except Exception as exc:
            raise ConnectFailed(self, f"could not open the connection: {exc!r}") from exc


class _HttpsPool(HTTPSConnectionPool):
    ConnectionCls = _HttpsConnection


class SingleSendAdapter(HTTPAdapter):
    """Send each request at most once, and tell which failures certainly sent nothing.

    Nothing below the gateway may send a POST twice, so urllib3 retries nothing and no
    redirect is followed. A failure before the connection was open (refused, DNS, connect
    timeout, TLS handshake) stays a requests ConnectionError: the gateway may retry it.
    Any failure after the request left (connection closed, read timeout, a broken body) is
    raised as OutcomeUnknown, which is not a ConnectionError: the gateway answers 504 and
    never retries it. The answer's body is read here, so that losing it is judged here too.
    """

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        classes = self.poolmanager.pool_classes_by_scheme
        self.poolmanager.pool_classes_by_scheme = {**classes, "https": _HttpsPool}

    def send(self, request, *args, **kwargs) -> requests.Response:
        try:
            response = super().send(request, *args, **kwargs)
            _ = response.content
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            if never_left(exc):
                raise
            if timed_out(exc):
                raise AnswerTimedOut("no answer within the timeout") from exc
            raise OutcomeUnknown("connection lost after the request was sent") from exc
        return response


def never_left(exc: requests.RequestException) -> bool:
    """Tell whether the request certainly never reached Vonage (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    reason = cause.reason if isinstance(cause, MaxRetryError) else None
    if isinstance(reason, ProxyError):  # the proxy itself could not be reached
        reason = reason.original_error
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def timed_out(exc: requests.RequestException) -> bool:
    """Tell whether the answer did not come in time (rather than the connection closing):
    requests reports a timeout while reading the body as a ConnectionError around it."""
    return isinstance(exc, requests.ReadTimeout) or any(
        isinstance(arg, ReadTimeoutError) for arg in exc.args
    )


class VonageTransport:
    """POST to Vonage's Messages API through the one pool of this process.

    Shared by every thread or greenlet: after construction nothing here changes but the
    token cache, which CachedJwtAuth guards with its own lock. Headers are a new dict per call.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.url = f"https://{settings.vonage_api_host}{MESSAGES_PATH}"
        self.timeout = (settings.vonage_timeout_s, settings.vonage_timeout_s)  # connect, read
        self.auth = CachedJwtAuth(
            settings.vonage_application_id, settings.vonage_private_key, clock
        )
        self.session = build_session(self.url, settings.vonage_max_in_flight)
        self.adapter = self.session.get_adapter(self.url)

    def post(self, body: bytes) -> requests.Response:
        """POST one JSON body; a ConnectionError means it was certainly not sent."""
        headers = {
            "Authorization": self.auth.create_jwt_auth_string(),
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        # Built here, not by session.post or Request.prepare: the URL is ours and already
        # canonical, and there are no cookies, auth or session headers to merge in (about 7 %
        # of a send's CPU, measured with py-spy). Proxies and CA are the session's, read once.
        request = requests.PreparedRequest()
        request.method, request.url, request.body = "POST", self.url, body
        request.headers = CaseInsensitiveDict({**headers, "Content-Length": str(len(body))})
        session = self.session
        return self.adapter.send(
            request, timeout=self.timeout, proxies=session.proxies, verify=session.verify
        )

    def renew_token(self) -> None:
        """Sign a new JWT for the next call, e.g. after Vonage refused this one."""
        self.auth.renew()


def build_session(url: str, pool_size: int) -> requests.Session:
    """A session with one connection per send that may be in flight, and nothing to change."""
    adapter = SingleSendAdapter(
        pool_connections=pool_size,
        pool_maxsize=pool_size,
        max_retries=Retry(total=0, redirect=False),  # retries are the gateway's decision alone
    )
    session = requests.Session()  # holds the pool, proxies and CA; sends go to its adapter
    session.mount("https://", adapter)
    read_environment_once(session, url)
    return session


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
