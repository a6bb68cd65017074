"""The worker's socket clocks: idle between requests, bounded from a request's first byte."""

import json
import logging
import socket
import time
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.http.body import Body, ChunkedReader
from gunicorn.http.errors import InvalidHeader
from gunicorn.http.unreader import IterUnreader

from app.server import worker
from app.server.log import ServerLog
from app.web.problems import RequestTimeout, UnreadableBody
from tests.conftest import SECRET_A


@pytest.fixture
def pair(monkeypatch):
    monkeypatch.setattr(worker, "READ_TIMEOUT_S", 0.2)
    server, client = socket.socketpair()
    yield worker._ClientSocket(server, idle_s=0.3), client
    server.close()
    client.close()


def test_an_idle_connection_reads_as_closed_after_idle_s(pair):
    wrapped, _ = pair
    started = time.monotonic()
    assert wrapped.recv(100) == b""
    assert 0.25 < time.monotonic() - started < 1


def test_a_request_that_stalls_times_out_from_its_first_byte(pair):
    wrapped, client = pair
    client.sendall(b"POST /send-sms HTTP/1.1\r\n")
    assert wrapped.recv(100) == b"POST /send-sms HTTP/1.1\r\n"
    started = time.monotonic()
    with pytest.raises(RequestTimeout):
        wrapped.recv(100)
    assert 0.15 < time.monotonic() - started < 0.5


def test_a_dripping_request_cannot_stretch_the_deadline(pair):
    """One byte now and then resets nothing: the bound is for the whole request."""
    wrapped, client = pair
    client.sendall(b"G")
    wrapped.recv(1)
    deadline = time.monotonic() + 0.2
    with pytest.raises(RequestTimeout):
        while True:
            client.sendall(b"E")
            assert wrapped.recv(1) == b"E"
            time.sleep(0.05)
    assert time.monotonic() >= deadline - 0.01


def test_after_a_timeout_the_connection_reads_as_closed(pair):
    wrapped, client = pair
    client.sendall(b"GET")
    wrapped.recv(3)
    with pytest.raises(RequestTimeout):
        wrapped.recv(100)
    client.sendall(b" /health HTTP/1.1\r\n\r\n")
    assert wrapped.recv(100) == b""


def test_each_request_gets_its_own_deadline(pair):
    wrapped, client = pair
    client.sendall(b"first")
    wrapped.recv(5)
    time.sleep(0.15)
    wrapped.request_done()
    time.sleep(0.1)  # the first request's deadline has passed; the idle clock runs instead
    client.sendall(b"second")
    assert wrapped.recv(6) == b"second"


def test_the_connection_cap_shrinks_to_the_open_file_limit(monkeypatch):
    """With too few descriptors the cap is lowered (and said), never left to fail accept()."""
    monkeypatch.setattr(worker.resource, "getrlimit", lambda _: (2048, 2048))
    monkeypatch.setattr(worker.resource, "setrlimit", lambda *_: None)
    warnings = []

    class Log:
        def warning(self, *args):
            warnings.append(args)

    assert worker._raise_descriptor_limit(10_000, Log()) == (2048 - worker.FD_RESERVE) // 2
    assert len(warnings) == 1
    assert worker._raise_descriptor_limit(100, Log()) == 100


@pytest.mark.parametrize(
    "raw",
    [b"not-hex\r\n", b"5\r\nhelloXX", b"5;a=\x01\r\nhello\r\n0\r\n\r\n", b"5\r\nhel"],
)
def test_a_body_that_breaks_chunked_framing_reads_as_unreadable_body(raw):
    """gunicorn's parse errors (and a body cut short) become a 400 problem for the app;
    gunicorn still knows the body failed, so the connection is not reused."""
    reader = ChunkedReader(SimpleNamespace(), IterUnreader([raw]))
    body = worker._RequestBody(Body(reader))

    with pytest.raises(UnreadableBody):
        body.read(100)
    assert body.failed is True


@pytest.fixture
def server_log():
    """gunicorn's logger as gunicorn.conf.py configures it; its handlers removed after."""
    config = Config()
    config.set("errorlog", "-")
    yield ServerLog(config)
    logging.getLogger("gunicorn.error").handlers.clear()


def test_gunicorns_lines_are_json_with_exceptions_by_class_only(server_log, capsys):
    """gunicorn logs exceptions as message arguments, and their text quotes the request."""
    server_log.info("Ignored premature client disconnection. %s", InvalidHeader(SECRET_A))

    out = capsys.readouterr().out
    line = json.loads(out)
    assert (line["level"], line["logger"]) == ("INFO", "gunicorn.error")
    assert line["event"] == "Ignored premature client disconnection. InvalidHeader"
    assert SECRET_A not in out
