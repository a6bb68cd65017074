"""HTTP/1.1 spoken to the service byte by byte, as unusual or hostile clients speak it."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

from tools.stack import Process


@dataclass
class Answer:
    status: int
    head: bytes
    body: bytes
    after: bytes  # what came after the answer: a second answer would be here

    @property
    def problem(self) -> dict:
        assert b"\r\nContent-Type: application/problem+json\r\n" in self.head, self.head
        return json.loads(self.body)


def exchange(
    service: Process, raw: bytes, until_closed: bool = False, timeout_s: float = 10
) -> Answer:
    """Send `raw` on a new connection and read one answer (by its Content-Length); with
    `until_closed`, go on reading until the server closes the connection."""
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout_s) as connection:
        connection.sendall(raw)
        received = b""
        while b"\r\n\r\n" not in received:
            received += _recv(connection)
        head, _, rest = received.partition(b"\r\n\r\n")
        length = _content_length(head)
        while len(rest) < length:
            rest += _recv(connection)
        body, after = rest[:length], rest[length:]
        while until_closed and (chunk := connection.recv(65536)):
            after += chunk
    return Answer(int(head.split(b" ", 2)[1]), head, body, after)


def sized(body: bytes) -> bytes:
    """The end of a request's head and its body, framed by Content-Length."""
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def chunked(body: bytes) -> bytes:
    """The end of a request's head and its body, in two chunks and a last one."""
    parts = (body[: len(body) // 2], body[len(body) // 2 :])
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    return b"Transfer-Encoding: chunked\r\n\r\n" + encoded + b"0\r\n\r\n"


def log_lines(service: Process, start: int) -> list[str]:
    """The service's log lines written after the first `start` characters."""
    return [line for line in service.log()[start:].splitlines() if line.strip()]


def _recv(connection: socket.socket) -> bytes:
    chunk = connection.recv(65536)
    if not chunk:
        raise AssertionError("the server closed the connection before answering")
    return chunk


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise AssertionError(f"no Content-Length in {head!r}")
