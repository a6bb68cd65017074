"""Real gunicorn with 3 workers, a real Redis and the emulator: limits and idempotency hold
across workers and restarts, and a Redis outage fails closed, then heals by itself."""

import concurrent.futures
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tools.emulator_client import EmulatorClient
from tools.stack import running, service_environment, start_emulator, start_redis, start_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_process(redis_server, tmp_path_factory):
    """A Redis of this module's own, since one test stops and restarts it."""
    process = start_redis(tmp_path_factory.mktemp("redis-e2e"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def slow_emulator(credentials):
    """Answers after 200 ms, so that concurrent requests really overlap."""
    with running(start_emulator(credentials, env={"EMULATOR_LATENCY_MS": "200"})) as process:
        yield process


def start(credentials, emulator, redis_url, **settings):
    env = service_environment(
        credentials,
        emulator,
        REDIS_URL=redis_url,
        WEB_CONCURRENCY="3",
        RECIPIENT_RATE_LIMIT="1000 per minute",
        **settings,
    )
    return start_service(credentials.folder, env)


def worker_count(service, wanted: int = 3, timeout_s: float = 10) -> int:
    """gunicorn's workers (children of the master), once `wanted` have booted or time is up."""
    pid = service.popen.pid
    deadline = time.monotonic() + timeout_s
    while True:
        count = len(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
        if count >= wanted or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def sent_counts(metrics: str) -> dict[str, float]:
    """sms_http_requests_total for POST /send-sms, by status."""
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "sms_http_requests_total" and sample.labels["route"] == "/send-sms"
    }


def post(service, credentials, headers=None, text="scale"):
    return requests.post(
        f"{service.url}/send-sms",
        json={"to": "+14155550100", "text": text},
        headers={"X-API-Key": credentials.api_key, **(headers or {})},
        timeout=30,
    )


def test_the_key_limit_holds_across_workers(credentials, emulator, redis_process):
    upstream = EmulatorClient(emulator.url, credentials.ca)
    upstream.reset()
    with running(
        start(credentials, emulator, redis_process.url, RATE_LIMIT="7 per minute")
    ) as service:
        assert worker_count(service) == 3
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            statuses = list(
                pool.map(lambda n: post(service, credentials, text=f"n{n}").status_code, range(30))
            )
        metrics = requests.get(f"{service.url}/metrics", timeout=5).text
    assert statuses.count(200) == 7
    assert statuses.count(429) == 23
    # Every worker's samples are added up (prometheus-client's multiprocess mode).
    assert sent_counts(metrics) == {"200": 7.0, "429": 23.0}
    assert len(upstream.messages()) == 7


def test_one_idempotency_key_sends_once_across_workers_and_restarts(
    credentials, slow_emulator, redis_process
):
    upstream = EmulatorClient(slow_emulator.url, credentials.ca)
    upstream.reset()
    headers = {"Idempotency-Key": "e2e-order-1"}
    with (
        running(start(credentials, slow_emulator, redis_process.url)) as service,
        concurrent.futures.ThreadPoolExecutor(20) as pool,
    ):
        answers = list(pool.map(lambda _: post(service, credentials, headers), range(20)))

    statuses = sorted({a.status_code for a in answers})
    assert set(statuses) <= {200, 409} and 200 in statuses
    bodies = {a.text for a in answers if a.status_code == 200}
    assert len(bodies) == 1
    assert all(a.headers.get("Retry-After") == "1" for a in answers if a.status_code == 409)
    assert len(upstream.messages()) == 1

    with running(start(credentials, slow_emulator, redis_process.url)) as restarted:
        replay = post(restarted, credentials, headers)
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.text in bodies
    assert len(upstream.messages()) == 1


def test_redis_outage_fails_closed_and_heals(redis_server, credentials, emulator, tmp_path):
    """(redis_server: skipped with its reason where redis-server is missing, as the others.)"""
    redis_down_later = start_redis(tmp_path)
    port = redis_down_later.url.rsplit(":", 1)[1].split("/")[0]
    upstream = EmulatorClient(emulator.url, credentials.ca)
    upstream.reset()
    try:
        with running(start(credentials, emulator, redis_down_later.url)) as service:
            assert post(service, credentials).status_code == 200
            redis_down_later.stop()
            sent_before = upstream.stats()["requests"]

            down = [post(service, credentials) for _ in range(5)]

            assert {a.status_code for a in down} == {503}
            assert {a.json()["type"].rsplit("/", 1)[1] for a in down} == {"storage-unavailable"}
            health = requests.get(f"{service.url}/health", timeout=5)
            assert (health.status_code, health.json()["storage"]) == (200, "unavailable")
            assert upstream.stats()["requests"] == sent_before
            assert service.popen.poll() is None and worker_count(service) == 3

            redis_down_later = start_redis(tmp_path, int(port))

            assert requests.get(f"{service.url}/health", timeout=5).json()["storage"] == "ok"
            assert post(service, credentials).status_code == 200
    finally:
        redis_down_later.stop()
