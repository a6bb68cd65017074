"""Fixtures: settings from a dict of fakes, the app, a client, and a closed network."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import request, request_finished

from app import create_app
from app.settings import Settings
from app.store import get_store
from app.vonage.gateway import get_gateway
from app.web.rate_limits import get_rate_limits
from tests.openapi_conformance import check_problem, check_response

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "vonage"
VONAGE_SMS_URL = "https://api.nexmo.com/v1/messages"
APPLICATION_ID = "5f0c3d2e-8a41-4b7e-9c16-2d7e4b9a0f31"
SECRET_A = "a-secret-of-at-least-24-characters"
SECRET_B = "b-secret-of-at-least-24-characters"
AUTH = {"X-API-Key": SECRET_A}
AUTH_B = {"X-API-Key": SECRET_B}
VALID_BODY = {"to": "+14155550100", "text": "Hello from the tests"}
UUID = "d8f86df1-dec6-442f-870a-2241be27d721"
PROCESS_FIXTURES = {"redis_server"}  # fixtures that start a real process


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a process-starting fixture is `slow`, whatever its module says."""
    for item in items:
        if PROCESS_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _no_process_outside_slow(request, monkeypatch) -> None:
    """Keep `-m "not slow"` in one process: a test that starts one must be marked `slow`."""
    if request.node.get_closest_marker("slow"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError(f"{request.node.nodeid} starts a process: mark it slow")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    monkeypatch.setattr(os, "fork", refuse)


def generate_private_key_pem(fmt=serialization.PrivateFormat.PKCS8) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


@pytest.fixture(scope="session")
def private_key_pem() -> str:
    return generate_private_key_pem()


@pytest.fixture(scope="session")
def test_env(private_key_pem) -> dict[str, str]:
    return {
        "VONAGE_APPLICATION_ID": APPLICATION_ID,
        "VONAGE_PRIVATE_KEY": private_key_pem,
        "VONAGE_NUMBER": "+447700900000",
        "API_KEYS": f"alpha:{SECRET_A},beta:{SECRET_B}",
        "STATE_PATH": ":memory:",  # SQLite has tests of its own (tests/test_sqlite_store.py)
    }


@pytest.fixture(scope="session")
def base_settings(test_env) -> Settings:
    return Settings.from_environ(test_env)


@pytest.fixture
def settings(base_settings) -> Settings:
    return base_settings


@pytest.fixture
def make_app():
    """Build an app from settings, with sleeping during retries recorded instead of done;
    close its Redis connections after the test."""
    built = []

    def build(settings: Settings, **changes):
        app = create_app(dataclasses.replace(settings, **changes))
        app.config.update(TESTING=True)
        app.extensions["sleeps"] = []
        get_gateway(app).sleep = app.extensions["sleeps"].append
        app.extensions["nonconforming"] = []
        request_finished.connect(_check_conformance, app)
        built.append(app)
        return app

    yield build
    for app in built:
        request_finished.disconnect(_check_conformance, app)
        # Every answer any test received conforms to app/openapi.json.
        assert app.extensions["nonconforming"] == []
        store = get_store(app)
        if hasattr(store, "redis"):
            store.redis.close()
        limit_storage = getattr(get_rate_limits(app).limiter.storage, "storage", None)
        if hasattr(limit_storage, "close"):
            limit_storage.close()


@pytest.fixture
def app(make_app, settings):
    return make_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(autouse=True)
def vonage():
    """Fake Vonage: unknown URLs raise ConnectionError; unused stubs fail the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def accept(vonage):
    """Vonage accepts every SMS."""
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    return vonage


def _check_conformance(app, response, **_extra) -> None:
    """Check an answer against the OpenAPI document, as the request that made it ends."""
    rule = request.url_rule.rule if request.url_rule is not None else None
    body = response.get_data()
    if rule is None:
        problems = check_problem(response.status_code, response.content_type or "", body)
    else:
        problems = check_response(
            request.method,
            rule,
            response.status_code,
            response.content_type or "",
            body,
            response.headers,
        )
    if problems:
        app.extensions["nonconforming"].append((request.method, request.path, problems))


def shared_file(*parts: str) -> Path:
    """A file of ../shared/vonage, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"{path} not found: Vonage's contract files live in ../shared beside the project"
        )
    return path


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on a free loopback port, for the whole session.

    Locally it is skipped, with the reason, when redis-server is not installed; CI sets
    REQUIRE_REDIS=1 so that a missing server fails instead.
    """
    if shutil.which("redis-server") is None:
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail("REQUIRE_REDIS=1 but redis-server is not on PATH")
        pytest.skip("redis-server is not on PATH: install it (apt-get install redis-server)")
    from tools.stack import start_redis

    process = start_redis(tmp_path_factory.mktemp("redis"))
    yield process
    process.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The URL of an emptied Redis database."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url
