"""The real stack for end-to-end tests: the emulator and the service under gunicorn."""

from __future__ import annotations

import pytest
import requests

from tools.emulator_client import EmulatorClient
from tools.stack import (
    ensure_credentials,
    running,
    service_environment,
    start_emulator,
    start_service,
)

pytestmark = pytest.mark.slow


class Stack:
    def __init__(self, credentials, emulator, service):
        self.credentials, self.emulator, self.service = credentials, emulator, service
        self.http = requests.Session()
        self.upstream = EmulatorClient(emulator.url, credentials.ca)

    def send(self, body: dict, api_key: str | None = None, **kwargs) -> requests.Response:
        key = self.credentials.api_key if api_key is None else api_key
        return self.http.post(
            self.service.url + "/send-sms",
            json=body,
            headers={"X-API-Key": key},
            timeout=30,
            **kwargs,
        )

    def messages(self) -> list[dict]:
        return self.upstream.messages()

    def stats(self) -> dict:
        return self.upstream.stats()

    def reset(self) -> None:
        self.upstream.reset()

    def close(self) -> None:
        self.http.close()
        self.upstream.close()


@pytest.fixture(scope="session")
def credentials(tmp_path_factory):
    return ensure_credentials(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def emulator(credentials):
    with running(start_emulator(credentials, env={"EMULATOR_HANG_SECONDS": "4"})) as process:
        yield process


@pytest.fixture(scope="session")
def start_stack(credentials, emulator):
    """Start a service (with extra settings) against the shared emulator; stop it after."""
    started = []

    def start(**settings: str) -> Stack:
        env = service_environment(credentials, emulator, **settings)
        service = start_service(credentials.folder, env)
        started.append(service)
        return Stack(credentials, emulator, service)

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="session")
def shared_stack(start_stack):
    stack = start_stack(
        VONAGE_TIMEOUT="1",
        RATE_LIMIT="1000 per minute",
        RECIPIENT_RATE_LIMIT="1000 per minute",
    )
    yield stack
    stack.close()


@pytest.fixture
def stack(shared_stack):
    shared_stack.reset()
    return shared_stack


@pytest.fixture(autouse=True)
def vonage():
    """Here the network is real (loopback only): the emulator stands in for Vonage."""
    yield None
