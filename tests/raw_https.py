"""A bare HTTPS server on 127.0.0.1 for failures `responses` cannot fake: a closed connection
after the request was read, an answer that never comes."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable

from emulator.tls import ensure_certificates, server_context

Behaviour = Callable[[ssl.SSLSocket, bytes], None]


def answer_202(conn: ssl.SSLSocket, _request: bytes) -> None:
    body = b'{"message_uuid": "d8f86df1-dec6-442f-870a-2241be27d721"}'
    conn.sendall(
        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def close_without_answer(conn: ssl.SSLSocket, _request: bytes) -> None:
    conn.close()


def break_tls_then_close(conn: ssl.SSLSocket, _request: bytes) -> None:
    """Answer with bytes outside TLS, as a broken middlebox would: the client's TLS fails."""
    os.write(conn.fileno(), b"HTTP/1.1 202 Accepted\r\n\r\n")
    time.sleep(0.1)
    conn.close()


def answer_half_a_body(release: threading.Event) -> Behaviour:
    """Send the status line, headers and part of the body, then nothing until `release`."""

    def behaviour(conn: ssl.SSLSocket, _request: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"message_uuid": "d8f86df1'
        )
        release.wait(5)
        conn.close()

    return behaviour


class RawHttpsServer:
    """Accept TLS connections, read each whole request, then do what `behaviour` says."""

    def __init__(self, cert_folder, behaviour: Behaviour):
        self.paths = ensure_certificates(cert_folder)
        self.behaviour = behaviour
        self.requests: list[bytes] = []
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._context = server_context(self.paths)
        self._threads: list[threading.Thread] = []
        self._open: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            with self._context.wrap_socket(raw, server_side=True) as conn:
                self._open.append(conn)  # wrapping moved the descriptor: stop() shuts this one
                while not self._stop.is_set():
                    request = _read_request(conn)
                    if request is None:
                        return
                    self.requests.append(request)
                    self.behaviour(conn, request)
                    if conn.fileno() == -1:
                        return
        except (OSError, ssl.SSLError):
            return

    def stop(self) -> None:
        self._stop.set()
        self._accepting.join()
        self._listener.close()
        for raw in self._open:
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_RDWR)
            raw.close()
        for thread in self._threads:
            thread.join(timeout=5)


def _read_request(conn: ssl.SSLSocket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body
