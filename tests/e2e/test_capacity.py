"""Capacity under a slow Vonage and slow clients: real gunicorn with its default configuration,
the emulator answering in 2 s (or never), and hundreds of connections at once."""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import statistics
import threading
import time
from dataclasses import dataclass

import pytest
import requests

from emulator.magic import number_for
from tools.emulator_client import EmulatorClient
from tools.stack import running, service_environment, start_emulator, start_service

pytestmark = pytest.mark.slow

LATENCY_S = 2.0
UNLIMITED = {"RATE_LIMIT": "100000 per minute", "RECIPIENT_RATE_LIMIT": "100000 per minute"}
# /health may queue behind the CPU of a burst of arrivals (a few ms each, on 2 cores shared
# with the test's own clients), never behind their wait on Vonage (seconds).
HEALTH_WORST_S = 1.0
HEALTH_P90_S = 0.1


@dataclass
class Answer:
    status: int
    elapsed_s: float
    body: dict
    headers: dict


@pytest.fixture(scope="module")
def slow_emulator(credentials):
    """Vonage answering every send in 2 s; the hang number stays silent for 8 s."""
    env = {"EMULATOR_LATENCY_MS": str(int(LATENCY_S * 1000)), "EMULATOR_HANG_SECONDS": "8"}
    with running(start_emulator(credentials, env=env)) as emulator:
        upstream = EmulatorClient(emulator.url, credentials.ca)
        yield emulator, upstream
        upstream.close()


@pytest.fixture(scope="module")
def service(credentials, slow_emulator):
    """The service as shipped (gunicorn.conf.py defaults), limits out of the way."""
    emulator, _ = slow_emulator
    env = service_environment(credentials, emulator, **UNLIMITED)
    with running(start_service(credentials.folder, env)) as process:
        yield process


@pytest.fixture
def upstream(slow_emulator):
    _, client = slow_emulator
    client.reset()
    return client


def send(service, credentials, n: int, to: str = "+14155550100") -> Answer:
    started = time.monotonic()
    response = requests.post(
        service.url + "/send-sms",
        json={"to": to, "text": f"capacity {n}", "client_ref": f"c{n}"},
        headers={"X-API-Key": credentials.api_key},
        timeout=60,
    )
    return Answer(
        response.status_code,
        time.monotonic() - started,
        response.json(),
        dict(response.headers),
    )


def send_at_once(service, credentials, count: int, to: str = "+14155550100") -> list[Answer]:
    """`count` sends released together, each on its own connection."""
    gate = threading.Barrier(count)

    def one(n: int) -> Answer:
        gate.wait()
        return send(service, credentials, n, to)

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@contextlib.contextmanager
def health_probe(service):
    """Call /health every 50 ms in the background; yield the list of its answer times."""
    times: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with requests.Session() as http:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    ok = http.get(service.url + "/health", timeout=5).status_code == 200
                except requests.RequestException:
                    ok = False
                times.append(time.monotonic() - started if ok else float("inf"))
                stop.wait(0.05)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        yield times
    finally:
        stop.set()
        thread.join()


def assert_health_stayed_fast(times: list[float]) -> None:
    assert len(times) >= 10
    assert max(times) < HEALTH_WORST_S, f"slowest /health: {max(times):.3f} s"
    p90 = statistics.quantiles(times, n=10)[-1]
    assert p90 < HEALTH_P90_S, f"/health p90: {p90:.3f} s"


def assert_each_200_is_one_message(answers: list[Answer], upstream: EmulatorClient) -> None:
    upstream.wait_until_quiet()
    sent = sorted(a.body["message_uuid"] for a in answers if a.status == 200)
    received = sorted(m["message_uuid"] for m in upstream.messages())
    assert sent == received


def assert_busy_answers_are_fast(answers: list[Answer]) -> None:
    """Shed within about a second: BUSY_WAIT_MS (250 ms) plus the CPU of the burst that came
    in at the same instant (hundreds of requests and new TLS connections to Vonage, on 2
    cores shared with the test's own client threads)."""
    for answer in answers:
        if answer.status == 503:
            assert answer.body["type"].endswith("/service-busy")
            assert answer.headers["Retry-After"] == "1"
            assert answer.elapsed_s < 2


def test_160_sends_in_flight_leave_health_fast(service, credentials, upstream):
    """Vonage answering in 2 s: 160 sends wait at once, /health never waits behind them."""
    with health_probe(service) as health_times:
        answers = send_at_once(service, credentials, 160)

    assert {a.status for a in answers} <= {200, 503}
    assert_busy_answers_are_fast(answers)
    served_at_once = [a for a in answers if a.status == 200 and a.elapsed_s < 2 * LATENCY_S]
    assert len(served_at_once) >= 100
    assert_health_stayed_fast(health_times)
    assert_each_200_is_one_message(answers, upstream)


def test_a_hung_vonage_ends_every_send_within_the_deadline(credentials, slow_emulator):
    """Vonage silent past VONAGE_TIMEOUT with 150 sends in flight: /health stays fast, each
    send is a 504 or a quick 503, and no request reaches Vonage twice."""
    emulator, upstream = slow_emulator
    upstream.reset()
    env = service_environment(credentials, emulator, VONAGE_TIMEOUT="3", **UNLIMITED)
    hang = "+" + number_for("hang")
    with running(start_service(credentials.folder, env)) as hung_service:
        with health_probe(hung_service) as health_times:
            answers = send_at_once(hung_service, credentials, 150, to=hang)

        assert {a.status for a in answers} <= {504, 503}
        assert_busy_answers_are_fast(answers)
        assert max(a.elapsed_s for a in answers) < 3 + 1.5
        assert_health_stayed_fast(health_times)
        timed_out = sum(a.status == 504 for a in answers)
        assert upstream.wait_until_quiet()["attempts"][hang[1:]] == timed_out


def test_300_sends_at_once_end_by_the_deadline(service, credentials, upstream):
    """Past VONAGE_MAX_IN_FLIGHT (256) the surplus is shed at once; nothing answers after
    VONAGE_TIMEOUT (10 s) plus a margin, and the next send is served normally."""
    answers = send_at_once(service, credentials, 300)

    statuses = [a.status for a in answers]
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) >= 200
    assert statuses.count(503) >= 300 - 256
    assert_busy_answers_are_fast(answers)
    assert max(a.elapsed_s for a in answers) < 10 + 2
    assert_each_200_is_one_message(answers, upstream)
    after = send(service, credentials, 1000)
    assert after.status == 200
    assert after.elapsed_s < LATENCY_S + 1


def open_connection(service) -> socket.socket:
    host, port = service.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def read_answer(connection: socket.socket, timeout_s: float) -> bytes:
    """Everything the server sends until it closes the connection."""
    connection.settimeout(timeout_s)
    chunks = []
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_slow_and_idle_clients_cost_almost_nothing(service, credentials, upstream):
    """16 connections stop halfway through their headers, 1,200 send nothing at all:
    /health stays fast, a send is served, and the slow ones get a 408 after 10 s."""
    slow = [open_connection(service) for _ in range(16)]
    for connection in slow:
        connection.sendall(b"POST /send-sms HTTP/1.1\r\nHost: sms\r\nContent-Ty")
    slow_body = open_connection(service)
    slow_body.sendall(
        b"POST /send-sms HTTP/1.1\r\nHost: sms\r\nContent-Type: application/json\r\n"
        b"X-API-Key: " + credentials.api_key.encode() + b"\r\nContent-Length: 100\r\n\r\n{"
    )
    idle = [open_connection(service) for _ in range(1200)]
    started = time.monotonic()
    try:
        with health_probe(service) as health_times:
            time.sleep(1)
            answer = send(service, credentials, 1)

        assert answer.status == 200
        assert_health_stayed_fast(health_times)
        for connection in [*slow, slow_body]:
            reply = read_answer(connection, timeout_s=15)
            assert reply.startswith(b"HTTP/1.1 408 "), reply[:80]
            assert b"request-timeout" in reply
        assert 9 < time.monotonic() - started < 14
    finally:
        for connection in [*slow, slow_body, *idle]:
            connection.close()


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/webhooks/status", b"", 503),  # unsigned: Vonage retries it signed
        ("/webhooks/status", b"Authorization: Bearer not.a.jwt\r\n", 401),
        ("/webhooks/inbound", b"Authorization: Bearer not.a.jwt\r\n", 401),
    ],
)
def test_a_webhook_strangers_body_is_never_waited_for(service, path, headers, status):
    """Webhooks check the signature before the body: an unsigned request announcing a body
    it never sends is answered at once."""
    connection = open_connection(service)
    try:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: sms\r\nContent-Type: application/json\r\n".encode()
            + headers
            + b"Content-Length: 500\r\n\r\n"
        )
        connection.settimeout(2)
        reply = connection.recv(65536)
    finally:
        connection.close()
    assert reply.startswith(f"HTTP/1.1 {status} ".encode()), reply[:80]


def test_connections_past_the_cap_are_answered_503(credentials, slow_emulator):
    """Past worker_connections, a new connection gets 503 service-busy at once instead of
    waiting unaccepted; once connections close, service resumes."""
    emulator, _ = slow_emulator
    env = service_environment(
        credentials, emulator, GUNICORN_CMD_ARGS="--worker-connections 20", **UNLIMITED
    )
    with running(start_service(credentials.folder, env)) as capped:
        held = [open_connection(capped) for _ in range(20)]
        time.sleep(0.5)  # let the worker accept them all
        try:
            surplus = open_connection(capped)
            surplus.sendall(b"GET /health HTTP/1.1\r\nHost: sms\r\n\r\n")
            reply = read_answer(surplus, timeout_s=3)
            surplus.close()
            assert reply.startswith(b"HTTP/1.1 503 "), reply[:80]
            assert b"service-busy" in reply
            assert b"Retry-After: 1" in reply
        finally:
            for connection in held:
                connection.close()
        time.sleep(0.5)
        assert requests.get(capped.url + "/health", timeout=5).status_code == 200
