"""The gunicorn worker: gevent, so a send waiting on Vonage costs a greenlet, not a thread.

gunicorn's gevent worker, with three guards against clients that cost a thread elsewhere:
- a request must arrive whole (headers and body) within READ_TIMEOUT_S of its first byte,
  else it is answered 408 and the connection closed;
- an idle keep-alive connection waits up to gunicorn's `keepalive` for its next request,
  then is closed quietly;
- past `worker_connections` open connections, a new one is answered 503 `service-busy` at
  once instead of waiting unaccepted in the kernel's backlog.

What gunicorn cannot read is answered in problem+json and logged by its class only (the
text of gunicorn's exceptions quotes the request), and a body that breaks chunked framing
reaches the app as UnreadableBody (app/web/problems.py), a 400, never as a crash. Every
answer written here is a problem of the catalogue (app/domain/problems.py).

gevent must patch the standard library before anything imports ssl: gunicorn.conf.py does it
on its first line, so this module may assume a patched `socket`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import resource
import socket
import ssl
import time
import uuid
from http import HTTPStatus

from gunicorn import util as gunicorn_util
from gunicorn.http.errors import (
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    NoMoreData,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.workers.ggevent import GeventWorker

from ..domain.problems import ApiProblem, Problem
from ..web.problems import (
    READ_TIMEOUT_S,
    RequestTimeout,
    UnreadableBody,
    problem_body,
    request_timeout_problem,
    service_busy,
    stack_frames,
    unreadable_request_problem,
)
from ..web.security_headers import SECURITY_HEADERS

DRAIN_S = 1.0  # how long a refused connection may finish sending before it is closed
MAX_SURPLUS = 1024  # connections past the cap accepted at once, only to be answered 503
FD_RESERVE = 512  # descriptors kept for Vonage, Redis, logs and metrics files
# What gunicorn answers a request it cannot serve, as its own handle_error does; the first
# class that matches wins. Any other parse error is a 400; anything else, a 500.
REFUSALS = (
    ((InvalidResponseHeader, InvalidResponseHeaderName), 500, "Internal Server Error"),
    (ConfigurationProblem, 500, "Internal Server Error"),
    (LimitRequestLine, 414, "URI Too Long"),
    (LimitRequestHeaders, 431, "Request Header Fields Too Large"),
    (ExpectationFailed, 417, "Expectation Failed"),
    (UnsupportedTransferCoding, 501, "Not Implemented"),
    ((ForbiddenProxyRequest, ssl.SSLError), 403, "Forbidden"),
    ((ParseException, UnreadableBody), 400, "Bad Request"),
)
logger = logging.getLogger("sms_service")


class SmsWorker(GeventWorker):
    """gunicorn's gevent worker with bounded reads and an answer past the connection cap."""

    def init_process(self):
        self.serving_limit = _raise_descriptor_limit(self.cfg.worker_connections, self.log)
        # Accept past the cap: the surplus is answered 503 at once, not left waiting.
        self.worker_connections = self.serving_limit + _surplus(self.serving_limit)
        self.open_connections = 0
        super().init_process()

    def handle(self, listener, client, addr):
        self.open_connections += 1
        try:
            if self.open_connections > self.serving_limit:
                refuse_busy(client)
                return
            super().handle(listener, _ClientSocket(client, self.cfg.keepalive), addr)
        finally:
            self.open_connections -= 1

    def handle_request(self, listener_name, req, sock, addr):
        if req.body is not None:
            req.body = _RequestBody(req.body)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            sock.request_done(req)

    def handle_error(self, req, client, addr, exc):
        """Answer a request that failed outside the app, and log it by its class only:
        gunicorn's own handle_error logs the exception's text, which quotes the request (a
        header with its secret, a request line or chunk size with a phone number)."""
        fields = {"error": _error_name(exc)}
        if isinstance(exc, RequestTimeout):
            self.log.info("closing a connection whose request did not arrive in time")
            write_problem(client, request_timeout_problem())
            return
        if req is None and _body_failed_after_its_answer(client):
            # gunicorn read the unread body of a request already answered, to reach the next
            # one, and found it malformed: close, rather than answer that request twice.
            message = "closing a connection whose answered request had a malformed body"
            self.log.info(message, extra={"fields": fields})
            return
        status, reason = _refusal(exc)
        if status == 500:
            fields["stack"] = stack_frames(exc.__traceback__)
            self.log.error("request failed outside the app", extra={"fields": fields})
            problem = Problem.INTERNAL_ERROR.error()
        else:
            fields["status"] = status
            self.log.warning("refused a request that could not be read", extra={"fields": fields})
            problem = unreadable_request_problem(status, reason)
        with contextlib.suppress(OSError):
            write_problem(client, problem, reason)


class _RequestBody:
    """gunicorn's request body (the app's wsgi.input), whose framing errors the app can
    answer: a malformed chunk, or a connection closed inside the body, raises
    UnreadableBody (a 400 problem) instead of gunicorn's own exception, which Flask would
    answer 500 and log with its stack."""

    def __init__(self, body):
        self._body = body

    def read(self, size=None) -> bytes:
        return self._checked(self._body.read, size)

    def readline(self, size=None) -> bytes:
        return self._checked(self._body.readline, size)

    def readlines(self, size=None) -> list[bytes]:
        return self._checked(self._body.readlines, size)

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _checked(self, read, size):
        try:
            return read(size)
        except (ParseException, NoMoreData) as exc:
            raise UnreadableBody() from exc

    def __getattr__(self, name):
        return getattr(self._body, name)  # e.g. `failed`, which gunicorn's parser reads


def _refusal(exc: BaseException) -> tuple[int, str]:
    for classes, status, reason in REFUSALS:
        if isinstance(exc, classes):
            return status, reason
    return 500, "Internal Server Error"


def _error_name(exc: BaseException) -> str:
    """The class of what went wrong: gunicorn's own, when _RequestBody translated it."""
    cause = exc.__cause__ if isinstance(exc, UnreadableBody) else None
    return type(cause or exc).__name__


def _body_failed_after_its_answer(client) -> bool:
    """Whether the body of the request last answered on this connection failed to read.
    The app cannot have met that failure itself (gunicorn's parser then closes the
    connection instead of reading on): the parser met it draining the body."""
    answered = getattr(client, "answered", None)
    return answered is not None and getattr(answered.body, "failed", False) is True


class _ClientSocket:
    """A client socket whose reads keep to two clocks: `idle_s` before a request's first
    byte (then it reads as closed), READ_TIMEOUT_S from that byte to the request's end.
    Once a request was too slow, the connection reads as closed: it is not reused."""

    def __init__(self, sock: socket.socket, idle_s: float):
        self._sock, self._idle_s = sock, idle_s
        self._deadline: float | None = None  # None: between requests
        self._timed_out = False
        self.answered = None  # the last request answered on this connection

    def recv(self, size: int) -> bytes:
        if self._timed_out:
            return b""
        if self._deadline is None:
            data = self._recv_within(size, self._idle_s)
            if data is None:
                return b""  # idle too long: read as a closed connection
            self._deadline = time.monotonic() + READ_TIMEOUT_S
            return data
        data = self._recv_within(size, self._deadline - time.monotonic())
        if data is None:
            self._timed_out = True
            raise RequestTimeout(f"the request did not arrive within {READ_TIMEOUT_S} s")
        return data

    def request_done(self, request=None) -> None:
        """The answer to `request` is out: the next read waits for a new request."""
        self._deadline = None
        self.answered = request

    def _recv_within(self, size: int, seconds: float) -> bytes | None:
        if seconds <= 0:
            return None
        self._sock.settimeout(seconds)
        try:
            return self._sock.recv(size)
        except TimeoutError:
            return None
        finally:
            self._sock.settimeout(None)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def refuse_busy(client: socket.socket) -> None:
    """Answer 503 on a connection past the cap, let the client finish sending, close."""
    with contextlib.suppress(OSError):
        write_problem(
            client, service_busy("The service has too many connections open; retry shortly.")
        )
        client.shutdown(socket.SHUT_WR)
        client.settimeout(DRAIN_S)
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and client.recv(65536):
            pass  # what it sends is not read: closing with unread data would reset the answer


def write_problem(sock, problem: ApiProblem, reason: str | None = None) -> None:
    """Write a problem+json answer straight to a socket and ask the client to close: the
    catalogue's problem, under its status's reason phrase unless gunicorn gave its own."""
    body = problem_body(problem, uuid.uuid4().hex).encode()
    headers = {
        **SECURITY_HEADERS,
        **problem.headers,
        "Connection": "close",
        "Content-Type": "application/problem+json",
        "Content-Length": str(len(body)),
    }
    head = f"HTTP/1.1 {problem.status} {reason or HTTPStatus(problem.status).phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    gunicorn_util.write_nonblock(sock, (head + "\r\n").encode("latin-1") + body)


def write_unreadable(sock, status: int, reason: str, _message: str) -> None:
    """gunicorn.util.write_error, in problem+json like every other refusal of the service.
    gunicorn's message is left out: it quotes the request."""
    write_problem(sock, unreadable_request_problem(status, reason), reason)


def _surplus(cap: int) -> int:
    return min(cap, MAX_SURPLUS)


def _raise_descriptor_limit(wanted: int, log) -> int:
    """Raise the open-file limit as far as allowed; return how many connections fit in it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + _surplus(wanted) + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    fitting = max(1, (soft - FD_RESERVE) // 2)
    log.warning(
        "open-file limit %s allows %s connections, not worker_connections=%s", soft, fitting, wanted
    )
    return fitting


def port_in_use(host: str, port: int) -> bool:
    """Tell whether another process listens on host:port (probed as gunicorn binds it), so
    that a busy port is one line at start-up (gunicorn.conf.py, make demo)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False
