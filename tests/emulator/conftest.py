"""Fixtures that run the emulator as a real subprocess and catch its webhooks."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.tls import ensure_certificates
from tests.conftest import shared_file
from tools.stack import Process, launch_emulator

APPLICATION_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
SECRET = "emulator-tests-signature-secret-0123456789"  # >= 32 bytes: PyJWT verifies it silently
API_KEY = "abcd1234"
EMULATOR_ENV_NAMES = [
    "EMULATOR_HOST",
    "EMULATOR_PORT",
    "EMULATOR_CERTS",
    "VONAGE_APPLICATION_ID",
    "EMULATOR_KEY_PATH",
    "EMULATOR_LATENCY_MS",
    "EMULATOR_HANG_SECONDS",
    "STATUS_WEBHOOK_URL",
    "INBOUND_WEBHOOK_URL",
    "VONAGE_SIGNATURE_SECRET",
    "EMULATOR_API_KEY",
    "EMULATOR_WEBHOOK_DELAY_MS",
    "EMULATOR_NUMBER",
    "EMULATOR_QUIET",
]


@dataclass
class Emulator:
    """A running emulator process and how to reach it."""

    process: Process
    ca: Path
    private_key: rsa.RSAPrivateKey
    application_id: str = APPLICATION_ID
    secret: str = SECRET  # the signature secret its webhooks are signed with
    api_key: str = API_KEY

    @property
    def url(self) -> str:
        return self.process.url

    def token(self, **overrides: object) -> str:
        """Sign an application JWT as the Vonage SDK does; overrides replace claims."""
        now = int(time.time())
        claims = {"application_id": APPLICATION_ID, "iat": now, "jti": "t", "exp": now + 900}
        claims.update(overrides)
        return jwt.encode(
            {k: v for k, v in claims.items() if v is not None}, self.private_key, "RS256"
        )

    def send(self, body: object, token: str | None = None, timeout: float = 5) -> requests.Response:
        """POST /v1/messages with a valid token unless one is given."""
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        return requests.post(
            f"{self.url}/v1/messages", json=body, headers=headers, verify=self.ca, timeout=timeout
        )

    def get(self, path: str) -> requests.Response:
        """GET an inspection endpoint."""
        return requests.get(f"{self.url}{path}", verify=self.ca, timeout=5)

    def stats(self) -> dict[str, object]:
        """Read /_emulator/stats."""
        return self.get("/_emulator/stats").json()

    def reset(self) -> None:
        """Forget everything the emulator recorded."""
        response = requests.delete(f"{self.url}/_emulator/messages", verify=self.ca, timeout=5)
        assert response.status_code == 204

    def log(self) -> str:
        """Read what the emulator wrote to stderr so far."""
        return self.process.log()


@dataclass
class Received:
    """One webhook as it arrived: exact body bytes and headers."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local webhook receiver that can be told to fail its first answers."""

    url: str
    received: list[Received] = field(default_factory=list)
    failures_left: int = 0
    condition: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(
        self, count: int, about: str | None = None, timeout: float = 5.0
    ) -> list[Received]:
        """Wait for count webhooks (about one message_uuid, if given); fail if they never come."""

        def matching() -> list[Received]:
            # Webhooks of earlier tests may still trickle in: keep only the ones asked for.
            return [r for r in self.received if about is None or about in r.body.decode()]

        with self.condition:
            arrived = self.condition.wait_for(lambda: len(matching()) >= count, timeout)
            assert arrived, f"{len(matching())} of {count} webhooks arrived"
            return matching()

    def clear(self) -> None:
        with self.condition:
            self.received.clear()
            self.failures_left = 0


def _sample_sms(**fields: object) -> dict[str, object]:
    """Build a valid SMS request body as the Vonage SDK sends it; None removes a field."""
    body = {
        "channel": "sms",
        "message_type": "text",
        "to": "442079460123",
        "from": "Acme",
        "text": "Hello from the tests",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture(autouse=True)
def vonage() -> None:
    """Let these tests reach the network: the emulator is real, on 127.0.0.1.

    tests/conftest.py mocks every `requests` call to keep the service's tests offline; the
    emulator's tests talk to a real local process, so this same-named fixture turns that off.
    """


@pytest.fixture(scope="session")
def sms() -> Callable[..., dict[str, object]]:
    """Build valid SMS request bodies: sms(to=...) changes a field, sms(ttl=None) drops one."""
    return _sample_sms


@pytest.fixture(scope="session")
def private_key() -> rsa.RSAPrivateKey:
    """A throwaway application key, as Vonage would hand out (RSA 2048)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory, private_key: rsa.RSAPrivateKey) -> Path:
    """The application's private key as a PEM file, as the emulator accepts it."""
    path = tmp_path_factory.mktemp("keys") / "application.key"
    path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One certificate folder for every emulator of the session: generated once."""
    folder = tmp_path_factory.mktemp("certs")
    ensure_certificates(folder)
    return folder


@pytest.fixture(scope="session")
def start_emulator(
    tmp_path_factory: pytest.TempPathFactory,
    key_file: Path,
    certs: Path,
    private_key: rsa.RSAPrivateKey,
) -> Iterator[Callable[..., Emulator]]:
    """Start emulators on demand (extra flags, extra env); all are stopped at session end."""
    running: list[Emulator] = []

    def start(*flags: str, env: dict[str, str] | None = None, key: Path | None = None) -> Emulator:
        log_path = tmp_path_factory.mktemp("emulator") / "stderr.log"
        environ = {k: v for k, v in os.environ.items() if k not in EMULATOR_ENV_NAMES}
        environ.update(env or {})
        arguments = ["--port", "0", "--certs", str(certs), "--application-id", APPLICATION_ID]
        arguments += ["--public-key", str(key or key_file), *flags]
        emulator = Emulator(
            launch_emulator(arguments, environ, log_path), certs / "ca.pem", private_key
        )
        running.append(emulator)
        return emulator

    yield start
    for emulator in running:
        emulator.process.stop(timeout_s=5)


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """A plain-HTTP webhook receiver on 127.0.0.1, recording each body byte for byte."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReceiverHandler)
    server.daemon_threads = True
    state = Receiver(url=f"http://127.0.0.1:{server.server_port}")
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        state: Receiver = self.server.state  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with state.condition:
            failing = state.failures_left > 0
            if failing:
                state.failures_left -= 1
            else:
                state.received.append(Received(self.path, dict(self.headers.items()), body))
                state.condition.notify_all()
        self.send_response(500 if failing else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet


@pytest.fixture(scope="session")
def shared_emulator(start_emulator: Callable[..., Emulator], receiver: Receiver) -> Emulator:
    """One emulator for most tests: short hang, quick webhooks to the local receiver."""
    return start_emulator(
        env={
            "EMULATOR_HANG_SECONDS": "2",
            "EMULATOR_WEBHOOK_DELAY_MS": "20",
            "STATUS_WEBHOOK_URL": f"{receiver.url}/status",
            "INBOUND_WEBHOOK_URL": f"{receiver.url}/inbound",
            "VONAGE_SIGNATURE_SECRET": SECRET,
        }
    )


@pytest.fixture
def emulator(shared_emulator: Emulator, receiver: Receiver) -> Emulator:
    """The shared emulator, reset, with an empty receiver: each test starts clean."""
    shared_emulator.reset()
    receiver.clear()
    return shared_emulator


@pytest.fixture(scope="session")
def vonage_contract() -> Path:
    """The folder of Vonage's published contract, or a skip saying why it is missing."""
    return shared_file("messages-api.yml").parent
