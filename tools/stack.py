"""Start the Vonage emulator and the real service (gunicorn) as processes wired together.

Used by `make demo`, the end-to-end tests and the benchmark. Everything listens on
127.0.0.1; every process is stopped by whoever started it (use the context managers).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[1]
DEMO_APPLICATION_ID = "00000000-0000-4000-8000-00000000de00"
DEMO_NUMBER = "+447700900000"
READY_TIMEOUT_S = 20


@dataclass
class Process:
    """A started child process, its log file and where it listens."""

    popen: subprocess.Popen
    log_path: Path
    url: str
    name: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 10) -> int:
        """Ask nicely (SIGTERM), then insist; return the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream:
                stream.close()
        return self.popen.returncode


@dataclass(frozen=True)
class Credentials:
    """Throwaway secrets for a local stack, kept in one folder."""

    folder: Path
    application_id: str
    private_key_path: Path
    api_key: str
    signature_secret: str = field(repr=False, default="")

    @property
    def certs(self) -> Path:
        return self.folder / "certs"

    @property
    def ca(self) -> Path:
        return self.certs / "ca.pem"


def ensure_credentials(folder: Path) -> Credentials:
    """Create (once) an application key, an API key and a signature secret in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    key_path = folder / "private.pem"
    if not key_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_secret(key_path, pem)
    return Credentials(
        folder=folder,
        application_id=DEMO_APPLICATION_ID,
        private_key_path=key_path,
        api_key=_stored_secret(folder / "api-key"),
        signature_secret=_stored_secret(folder / "signature-secret"),
    )


def _stored_secret(path: Path) -> str:
    if not path.exists():
        _write_secret(path, secrets.token_urlsafe(32).encode())
    return path.read_text().strip()


def _write_secret(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_emulator(
    credentials: Credentials, port: int = 0, env: Mapping[str, str] | None = None
) -> Process:
    """Start the emulator with these credentials and wait for its ready line."""
    arguments = [
        "--host", "127.0.0.1",
        "--port", str(port),
        "--certs", str(credentials.certs),
        "--application-id", credentials.application_id,
        "--public-key", str(credentials.private_key_path),
    ]  # fmt: skip
    environment = {**os.environ, "VONAGE_SIGNATURE_SECRET": credentials.signature_secret}
    environment.update(env or {})
    log_path = credentials.folder / f"emulator-{port or 'any'}-{os.getpid()}.log"
    return launch_emulator(arguments, environment, log_path)


def launch_emulator(arguments: list[str], env: Mapping[str, str], log_path: Path) -> Process:
    """Run `python -m emulator <arguments>` with exactly `env`, stderr to `log_path`, and
    wait for its one line on stdout: `emulator listening on <url>`."""
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "emulator", *arguments],
            cwd=ROOT,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    process = Process(popen, log_path, "", "emulator")
    process.url = _read_ready_line(process).removeprefix(_READY_PREFIX)
    return process


def service_environment(
    credentials: Credentials, emulator: Process, **overrides: str
) -> dict[str, str]:
    """The environment that points the service at the emulator, and at no `.env`."""
    return {
        "ENV_FILE": "",  # a developer's .env must not leak into a local stack
        "VONAGE_APPLICATION_ID": credentials.application_id,
        "VONAGE_APPLICATION_PRIVATE_KEY_PATH": str(credentials.private_key_path),
        "VONAGE_NUMBER": DEMO_NUMBER,
        "API_KEYS": f"demo:{credentials.api_key}",
        "VONAGE_API_HOST": emulator.url.removeprefix("https://"),
        "REQUESTS_CA_BUNDLE": str(credentials.ca),
        "VONAGE_SIGNATURE_SECRET": credentials.signature_secret,
        **overrides,
    }


def start_service(
    folder: Path, env: Mapping[str, str], port: int = 0, app: str = "wsgi:app"
) -> Process:
    """Start the service (or another WSGI `app`, e.g. a benchmark's baseline) under gunicorn
    with gunicorn.conf.py on 127.0.0.1, and wait until /health answers."""
    port = port or free_port()
    log_path = folder / f"{app.replace(':', '-')}-{port}.log"
    environment = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARIABLES}
    # A state file of its own unless one is named: a stack starts from nothing.
    environment["STATE_PATH"] = str(folder / f"state-{port}-{secrets.token_hex(4)}.db")
    environment.update(env)
    command = [
        sys.executable, "-m", "gunicorn",
        "-c", "gunicorn.conf.py",
        "-b", f"127.0.0.1:{port}",
        app,
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    process = Process(popen, log_path, f"http://127.0.0.1:{port}", app)
    _wait_until_ready(process, lambda: _answers_health(process.url))
    return process


# Variables of the service that must come from the stack, never from the calling shell (tcsh
# exports HOST as the machine's name).
_SERVICE_VARIABLES = {
    "REDIS_URL",
    "STATE_PATH",
    "WEB_CONCURRENCY",
    "RATE_LIMIT",
    "RECIPIENT_RATE_LIMIT",
    "HOST",
}


def start_redis(folder: Path, port: int = 0) -> Process:
    """Start a throwaway redis-server on 127.0.0.1 (no persistence) and wait for PING."""
    port = port or free_port()
    data = folder / f"redis-{port}"
    data.mkdir(parents=True, exist_ok=True)
    log_path = data / "redis.log"
    command = [
        "redis-server",
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(data),
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    process = Process(popen, log_path, f"redis://127.0.0.1:{port}/0", "redis-server")
    _wait_until_ready(process, lambda: _answers_ping(port))
    return process


@contextlib.contextmanager
def running(process: Process) -> Iterator[Process]:
    """Stop the process on the way out, whatever happens."""
    try:
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def wired_stack(
    credentials: Credentials,
    port: int = 0,
    emulator_port: int = 0,
    emulator_env: Mapping[str, str] | None = None,
    **service_settings: str,
) -> Iterator[tuple[Process, Process]]:
    """Run the emulator and the service, each pointing at the other (SMS one way, signed
    webhooks the other); stop both on the way out."""
    port = port or free_port()
    service_url = f"http://127.0.0.1:{port}"
    webhooks = {
        "STATUS_WEBHOOK_URL": f"{service_url}/webhooks/status",
        "INBOUND_WEBHOOK_URL": f"{service_url}/webhooks/inbound",
        **(emulator_env or {}),
    }
    with running(start_emulator(credentials, emulator_port, webhooks)) as emulator:
        env = service_environment(credentials, emulator, **service_settings)
        with running(start_service(credentials.folder, env, port)) as service:
            yield emulator, service


_READY_PREFIX = "emulator listening on "


def _read_ready_line(process: Process) -> str:
    selector = selectors.DefaultSelector()
    selector.register(process.popen.stdout, selectors.EVENT_READ)
    try:
        if selector.select(READY_TIMEOUT_S):
            line = process.popen.stdout.readline().strip()
            if line.startswith(_READY_PREFIX):
                return line
    finally:
        selector.close()
    process.stop()
    raise RuntimeError(f"the emulator did not start:\n{process.log()}")


def _wait_until_ready(process: Process, ready: Callable[[], bool]) -> None:
    """Poll `ready` while the process lives; stop it and say why if it never gets there."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and process.popen.poll() is None:
        if ready():
            return
        time.sleep(0.05)
    process.stop()
    raise RuntimeError(f"{process.name} did not start:\n{process.log()}")


def _answers_health(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url + "/health", timeout=1) as answer:  # noqa: S310
        return answer.status == 200
    return False


def _answers_ping(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16).startswith(b"+PONG")
    return False
