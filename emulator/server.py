"""The HTTPS server: TLS per connection in its worker thread, keep-alive, and the routes."""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from emulator import events, problems
from emulator.auth import JwtVerifier
from emulator.config import Config
from emulator.inbox import render_inbox
from emulator.magic import Action, Outcome, outcome_for
from emulator.problems import Problem
from emulator.redact import mask_number
from emulator.segments import segment
from emulator.store import Store
from emulator.validation import TO_PATTERN, check_sms, parse_body
from emulator.webhooks import WebhookSender

log = logging.getLogger("emulator")

HANDSHAKE_TIMEOUT_S = 10.0  # a client that never finishes its handshake frees its thread
IDLE_TIMEOUT_S = 75.0  # a kept-alive connection idle this long is closed
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Services:
    """What every request may use; built once in __main__."""

    config: Config
    verifier: JwtVerifier
    store: Store
    sender: WebhookSender
    stopping: threading.Event  # set at shutdown: wakes hanging requests


class EmulatorServer(ThreadingHTTPServer):
    """A thread per connection; TLS is negotiated in that thread so accept() never waits."""

    daemon_threads = True
    request_queue_size = 256  # a benchmark opens many connections at once
    allow_reuse_address = True

    def __init__(self, services: Services, context: ssl.SSLContext) -> None:
        self.services = services
        self.context = context
        if ":" in services.config.host:
            self.address_family = socket.AF_INET6
        super().__init__((services.config.host, services.config.port), Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves our own name (getfqdn), which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            connection = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            return
        self.services.store.count_connection()
        try:
            Handler(connection, client_address, self)
        finally:
            connection.close()

    def handle_error(self, request: object, client_address: object) -> None:
        # A client vanishing mid-answer is ordinary here; print no traceback for it.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    """Route each request to a small method; answers are JSON unless they are the inbox."""

    protocol_version = "HTTP/1.1"  # keep-alive: tests count connections to prove reuse
    server_version = "vonage-emulator"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    wbufsize = -1  # buffer headers and body; handle_one_request flushes once per answer
    disable_nagle_algorithm = True
    server: EmulatorServer

    _log_to: str | None = None

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def _route(self, method: str) -> None:
        self._log_to = None
        path = urlsplit(self.path).path
        routes = ROUTES.get(path)
        if routes is None:
            self._discard_body()
            self._send_problem(problems.NOT_FOUND)
        elif method not in routes:
            self._discard_body()
            self._send_problem(problems.METHOD_NOT_ALLOWED)
        else:
            routes[method](self)

    # --- POST /v1/messages -------------------------------------------------------------

    def post_messages(self) -> None:
        """Answer a send request as Vonage would, or as the recipient's magic number says."""
        services = self.server.services
        raw = self._read_body()
        if raw is None:
            return
        parsed = parse_body(raw)
        to = parsed.get("to") if isinstance(parsed, dict) else None
        to = to if isinstance(to, str) else None
        self._log_to = to
        services.store.count_request(to)
        if not services.verifier.is_valid(self.headers.get("Authorization")):
            return self._answer(problems.UNAUTHORIZED)
        if isinstance(parsed, Problem):
            return self._answer(parsed)
        if problem := check_sms(parsed):
            return self._answer(problem)
        outcome = outcome_for(str(to))
        if outcome.action is Action.HANG:
            return self._hang()
        if outcome.action is Action.DROP:
            return self._drop()
        if outcome.action is Action.FAIL or (
            outcome.action is Action.FAIL_ONCE and services.store.first_time(str(to))
        ):
            return self._answer(outcome.problem or problems.INTERNAL)
        return self._accept(parsed, outcome)

    def _accept(self, body: dict[str, object], outcome: Outcome) -> None:
        services = self.server.services
        text = str(body["text"])
        options = body.get("sms")
        parts = segment(text, options.get("encoding_type") if isinstance(options, dict) else None)
        message = {
            "message_uuid": str(uuid.uuid4()),
            "to": body["to"],
            "from": body["from"],
            "text": text,
            "client_ref": body.get("client_ref"),
            "segments": parts.segments,
            "encoding": parts.encoding,
            "time": events.iso_now(),
            "request": body,
        }
        services.store.accept(message)
        url = body.get("webhook_url") or services.config.status_webhook_url  # per message wins
        if url:
            delay_s = services.config.webhook_delay_ms / 1000
            services.sender.send(str(url), events.status_events(message, outcome), delay_s)
        self._sleep_latency()
        self._send_json(202, {"message_uuid": message["message_uuid"]})

    def _answer(self, problem: Problem) -> None:
        self._sleep_latency()
        self._send_problem(problem)

    def _hang(self) -> None:
        # Say nothing until the client has given up (or we shut down), then hang up.
        self.server.services.stopping.wait(self.server.services.config.hang_seconds)
        self.close_connection = True
        log.info("POST /v1/messages hang to=%s", mask_number(self._log_to))

    def _drop(self) -> None:
        self._sleep_latency()
        self.close_connection = True
        log.info("POST /v1/messages drop to=%s", mask_number(self._log_to))

    def _sleep_latency(self) -> None:
        latency_ms = self.server.services.config.latency_ms
        if latency_ms:
            time.sleep(latency_ms / 1000)

    # --- inspection and helpers ------------------------------------------------------

    def get_messages(self) -> None:
        """List accepted messages with the request bodies as received."""
        self._send_json(200, self.server.services.store.messages())

    def delete_messages(self) -> None:
        """Reset messages, counters and throttled-once state."""
        self._discard_body()
        self.server.services.store.reset()
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def get_stats(self) -> None:
        """Show the counters: connections, requests, accepted, attempts per recipient."""
        self._send_json(200, self.server.services.store.stats())

    def get_inbox(self) -> None:
        """Show accepted messages as speech bubbles, per recipient."""
        page = render_inbox(self.server.services.store.messages()).encode()
        self._send_bytes(200, "text/html; charset=utf-8", page)

    def post_inbound(self) -> None:
        """Send a signed inbound-SMS webhook, as if a phone had texted our number."""
        services = self.server.services
        raw = self._read_body()
        if raw is None:
            return
        if not services.config.inbound_webhook_url:
            return self._send_problem(_INBOUND_UNCONFIGURED)
        parsed = parse_body(raw)
        if isinstance(parsed, Problem):
            return self._send_problem(_as_400(parsed))
        if reasons := _inbound_reasons(parsed):
            return self._send_problem(_as_400(problems.invalid_params(reasons)))
        to = str(parsed.get("to") or services.config.number).lstrip("+")
        body = events.inbound_sms(str(parsed["from"]), str(parsed["text"]), to)
        services.sender.send(services.config.inbound_webhook_url, [body])
        self._send_json(202, body)

    # --- plumbing ----------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        """Read the whole body (so the connection stays usable); None after a 413 answer."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            self._send_problem(problems.TOO_LARGE)
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks, total = [], 0
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                self._send_problem(problems.TOO_LARGE)
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers
            pass
        return b"".join(chunks)

    def _discard_body(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= MAX_BODY:
            self.rfile.read(int(length))
        elif length or self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # cannot find where the next request starts

    def _send_problem(self, problem: Problem) -> None:
        self._send_json(problem.status, problem.body())

    def _send_json(self, status: int, body: object) -> None:
        self._send_bytes(status, "application/json", json.dumps(body).encode())

    def _send_bytes(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = urlsplit(self.path).path
        suffix = f" to={mask_number(self._log_to)}" if self._log_to else ""
        log.info("%s %s %s%s", self.command, path, code, suffix)

    def log_message(self, format: str, *args: object) -> None:
        log.debug(format, *args)


def _inbound_reasons(body: dict[str, object]) -> dict[str, str]:
    reasons = {}
    sender, text, to = body.get("from"), body.get("text"), body.get("to")
    if not isinstance(sender, str) or not TO_PATTERN.fullmatch(sender.removeprefix("+")):
        reasons["from"] = "must be 7-15 digits, with or without a leading +."
    if not isinstance(text, str) or not text:
        reasons["text"] = "must be a non-empty string."
    if to is not None and (not isinstance(to, str) or not TO_PATTERN.fullmatch(to.lstrip("+"))):
        reasons["to"] = "must be 7-15 digits, with or without a leading +."
    return reasons


def _as_400(problem: Problem) -> Problem:
    # The helper is ours, not Vonage's: a plain 400 for bad input.
    return Problem(400, problem.type, problem.title, problem.detail, problem.invalid_parameters)


_INBOUND_UNCONFIGURED = Problem(
    409,
    "about:blank",
    "No inbound webhook URL",
    "Start the emulator with INBOUND_WEBHOOK_URL (or --inbound-webhook-url) to send inbound SMS.",
)

ROUTES = {
    "/v1/messages": {"POST": Handler.post_messages},
    "/_emulator/messages": {"GET": Handler.get_messages, "DELETE": Handler.delete_messages},
    "/_emulator/stats": {"GET": Handler.get_stats},
    "/_emulator/inbound": {"POST": Handler.post_inbound},
    "/": {"GET": Handler.get_inbox},
}
