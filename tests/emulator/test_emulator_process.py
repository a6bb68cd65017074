"""The emulator as a process: start-up, readiness line, keys, and a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from emulator.magic import number_for

pytestmark = pytest.mark.slow  # starts real emulator processes

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_public_key_pem_is_accepted_and_localhost_is_trusted(start_emulator, tmp_path, sms):
    """Given only the public key, tokens from the private key verify; the cert names localhost."""
    public = tmp_path / "application.pub"
    emulator = start_emulator()
    public.write_bytes(
        emulator.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    by_public_key = start_emulator(key=public)
    by_public_key.process.url = by_public_key.url.replace("127.0.0.1", "localhost")
    assert by_public_key.send(sms()).status_code == 202


def test_sigterm_stops_cleanly_even_while_a_request_hangs(start_emulator, sms):
    """SIGTERM ends the process with exit code 0 at once, not after the hang time."""
    emulator = start_emulator("--hang-seconds", "30")
    answers: list[object] = []

    def send_to_hang() -> None:
        try:
            answers.append(emulator.send(sms(to=number_for("hang")), timeout=10))
        except requests.RequestException as exc:
            answers.append(exc)

    hung = threading.Thread(target=send_to_hang)
    hung.start()
    deadline = time.monotonic() + 5
    while emulator.stats()["requests"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)

    started = time.monotonic()
    emulator.process.popen.send_signal(signal.SIGTERM)
    assert emulator.process.popen.wait(5) == 0
    assert time.monotonic() - started < 3
    hung.join(10)
    assert len(answers) == 1 and isinstance(answers[0], requests.ConnectionError)


def test_sigint_also_exits_zero(start_emulator):
    """Ctrl-C in a terminal is a normal stop too."""
    emulator = start_emulator()
    emulator.process.popen.send_signal(signal.SIGINT)
    assert emulator.process.popen.wait(5) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--public-key", "/nonexistent.pem"], "--application-id"),
        (["--application-id", "app", "--public-key", "/nonexistent.pem"], "nonexistent.pem"),
        (["--application-id", "app"], "--public-key"),
    ],
)
def test_bad_configuration_exits_2_with_a_reason(tmp_path, args, message):
    """A missing setting or unreadable key stops the start with exit code 2 and says why."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EMULATOR_", "VONAGE_"))}
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--certs", str(tmp_path), *args],
        cwd=REPO_ROOT, env=environ, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""  # no ready line: scripts waiting for it see the failure


def test_key_file_that_is_not_an_rsa_key_exits_2(tmp_path, certs):
    """An EC key (or any non-RSA key) is refused: Vonage application keys are RSA."""
    key = tmp_path / "not-rsa.pem"
    key.write_bytes((certs / "server-key.pem").read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--certs", str(certs), "--application-id", "a",
         "--public-key", str(key)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "RSA" in result.stderr


def test_a_busy_port_is_one_line_naming_the_port_and_how_to_change_it(key_file, certs):
    """Another process on the port: exit code 2 and one line, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "emulator", "--host", "127.0.0.1", "--port", str(port),
             "--certs", str(certs), "--application-id", "a", "--public-key", str(key_file)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "cannot start" in line]
    assert len(errors) == 1
    assert f"port {port} is already in use" in errors[0]
    assert "EMULATOR_PORT" in errors[0] and "--port" in errors[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
