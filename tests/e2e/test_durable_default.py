"""The default mode (no REDIS_URL) keeps what it promises across a crash: real gunicorn, the
emulator, `kill -9` of the worker and of the master, a start again on the same STATE_PATH.

An SMS STOP and an API opt-out still refuse the next send (422, nothing reaches the emulator),
an Idempotency-Key is answered from the state file with nothing sent, and a message's record
still answers. The same crash with STATE_PATH=:memory: forgets the STOP: the control that
shows the crash is real. And a file from a newer version stops gunicorn's start."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app.store.sqlite import SQLiteStore
from app.store.sqlite_schema import SCHEMA_VERSION
from tools.emulator_client import EmulatorClient
from tools.stack import (
    ROOT,
    Credentials,
    Process,
    free_port,
    running,
    service_environment,
    start_emulator,
    start_service,
)

pytestmark = pytest.mark.slow

STOPPED, LISTED, IDEMPOTENT = "+14155550181", "+14155550182", "+14155550183"


@dataclass
class Site:
    """One port the emulator's webhooks point at, where services start, crash and start again."""

    credentials: Credentials
    emulator: Process
    port: int

    def start(self, state_path: str) -> Process:
        env = service_environment(self.credentials, self.emulator, STATE_PATH=state_path)
        return start_service(self.credentials.folder, env, self.port)


@contextlib.contextmanager
def new_site(credentials: Credentials) -> Iterator[tuple[Site, EmulatorClient]]:
    """An emulator whose webhooks go to a port of its own, and a client of the emulator."""
    port = free_port()
    service_url = f"http://127.0.0.1:{port}"
    webhooks = {
        "STATUS_WEBHOOK_URL": f"{service_url}/webhooks/status",
        "INBOUND_WEBHOOK_URL": f"{service_url}/webhooks/inbound",
    }
    with running(start_emulator(credentials, env=webhooks)) as emulator:
        client = EmulatorClient(emulator.url, credentials.ca)
        yield Site(credentials, emulator, port), client
        client.close()


@pytest.fixture(scope="module")
def site_and_upstream(credentials):
    with new_site(credentials) as both:
        yield both


@pytest.fixture(scope="module")
def site(site_and_upstream) -> Site:
    return site_and_upstream[0]


@pytest.fixture(scope="module")
def upstream(site_and_upstream) -> EmulatorClient:
    return site_and_upstream[1]


def crash(service: Process) -> None:
    """kill -9 the workers, then the master: no shutdown code runs anywhere."""
    master = service.popen.pid
    workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert workers, "gunicorn has no worker to kill"
    for pid in workers:
        os.kill(int(pid), signal.SIGKILL)
    os.kill(master, signal.SIGKILL)
    service.popen.wait(10)
    service.stop()


def call(service: Process, credentials: Credentials, method: str, path: str, **kwargs):
    headers = {"X-API-Key": credentials.api_key, **kwargs.pop("headers", {})}
    return requests.request(method, service.url + path, headers=headers, timeout=30, **kwargs)


def send(service, credentials, to: str, **kwargs):
    return call(service, credentials, "POST", "/send-sms", json={"to": to, "text": "hi"}, **kwargs)


def stop_by_sms(service, credentials, upstream, number: str) -> None:
    """The recipient replies STOP through the emulator; wait until the webhook is applied."""
    assert upstream.inbound(number.lstrip("+"), "STOP").status_code == 202
    deadline = time.monotonic() + 10
    while not call(service, credentials, "GET", f"/opt-outs/{number}").json()["opted_out"]:
        assert time.monotonic() < deadline, "the STOP webhook was not applied"
        time.sleep(0.1)


@dataclass
class BeforeTheCrash:
    service: Process  # started again after the crash, on the same file
    first_answer: requests.Response  # the idempotent send's


@pytest.fixture(scope="module")
def after_a_crash(site, upstream, tmp_path_factory):
    """A STOP by SMS, an opt-out by the API and an idempotent send; a crash; a start again."""
    state_path = str(tmp_path_factory.mktemp("durable") / "sms-state.db")
    credentials = site.credentials
    service = site.start(state_path)
    stop_by_sms(service, credentials, upstream, STOPPED)
    assert call(service, credentials, "PUT", f"/opt-outs/{LISTED}").json()["opted_out"] is True
    first = send(service, credentials, IDEMPOTENT, headers={"Idempotency-Key": "crash-1"})
    assert first.status_code == 200, first.text

    crash(service)
    with running(site.start(state_path)) as again:
        yield BeforeTheCrash(again, first)


@pytest.mark.parametrize("number", [STOPPED, LISTED], ids=["sms-stop", "api-opt-out"])
def test_an_opt_out_survives_a_crash(after_a_crash, site, upstream, number):
    upstream.reset()

    refused = send(after_a_crash.service, site.credentials, number)

    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("/recipient-opted-out")
    assert upstream.stats()["requests"] == 0


def test_an_idempotency_key_after_a_crash_is_answered_from_the_file(after_a_crash, site, upstream):
    upstream.reset()

    replay = send(
        after_a_crash.service, site.credentials, IDEMPOTENT, headers={"Idempotency-Key": "crash-1"}
    )

    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == after_a_crash.first_answer.json()
    assert upstream.stats()["requests"] == 0


def test_a_message_record_survives_a_crash(after_a_crash, site):
    message_uuid = after_a_crash.first_answer.json()["message_uuid"]

    record = call(after_a_crash.service, site.credentials, "GET", f"/messages/{message_uuid}")

    assert record.status_code == 200
    assert (record.json()["message_uuid"], record.json()["to"]) == (message_uuid, IDEMPOTENT)


def test_in_memory_the_same_crash_forgets_the_stop(credentials):
    """The control: with STATE_PATH=:memory: the crash does lose the STOP, so the tests
    above would fail if the default kept state in memory."""
    with new_site(credentials) as (site, upstream):
        service = site.start(":memory:")
        stop_by_sms(service, credentials, upstream, STOPPED)
        crash(service)

        with running(site.start(":memory:")) as again:
            upstream.reset()
            assert send(again, credentials, STOPPED).status_code == 200
            assert upstream.stats()["requests"] == 1


def test_gunicorn_refuses_a_file_from_a_newer_version(site, tmp_path):
    """Checked in the master: one error naming both versions, and no worker starts."""
    state_path = str(tmp_path / "newer.db")
    SQLiteStore(state_path, 3600, 1000).close()
    with sqlite3.connect(state_path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    env = service_environment(site.credentials, site.emulator, STATE_PATH=state_path)
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", "127.0.0.1:0"]

    shell = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "WEB_CONCURRENCY")}

    refused = subprocess.run(
        [*command, "wsgi:app"],
        cwd=ROOT,
        env={**shell, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert refused.returncode != 0
    assert (
        f"has schema version {SCHEMA_VERSION + 1}, newer than this version of the service "
        f"knows ({SCHEMA_VERSION})" in refused.stderr
    )
    assert "Booting worker" not in refused.stderr + refused.stdout
