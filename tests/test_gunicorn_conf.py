"""gunicorn.conf.py: one worker without Redis (more is refused), 2 x CPUs + 1 with it."""

import os
import runpy
from pathlib import Path

import pytest

from app.settings import ConfigError

CONF = str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py")


@pytest.fixture
def environment(monkeypatch, test_env, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # restored after the test
    for name in ("REDIS_URL", "WEB_CONCURRENCY", "THREADS", "PORT", "VONAGE_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENV_FILE", "")
    for name, value in test_env.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def load() -> dict:
    return runpy.run_path(CONF)


def test_defaults_without_redis(environment):
    conf = load()
    assert (conf["workers"], conf["threads"], conf["worker_class"]) == (1, 16, "gthread")
    assert conf["bind"] == "0.0.0.0:8000"
    assert conf["timeout"] == 30  # 2 x VONAGE_TIMEOUT + 10


def test_several_workers_need_redis(environment):
    environment.setenv("WEB_CONCURRENCY", "3")
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load()


def test_with_redis_the_default_is_two_per_cpu_plus_one(environment):
    environment.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert load()["workers"] == 2 * (os.cpu_count() or 1) + 1


def test_web_concurrency_overrides(environment):
    environment.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    environment.setenv("WEB_CONCURRENCY", "3")
    environment.setenv("PORT", "9000")
    conf = load()
    assert (conf["workers"], conf["bind"]) == (3, "0.0.0.0:9000")


def test_a_bad_environment_stops_the_boot(environment):
    environment.delenv("API_KEYS")
    with pytest.raises(ConfigError, match="API_KEYS"):
        load()
