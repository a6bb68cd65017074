"""gunicorn.conf.py: the gevent worker, patched before ssl; one worker without Redis (more
is refused), one per CPU with it; a bad environment stops real gunicorn with one line.

The file is loaded in a child process: it monkey-patches the standard library, which must
not happen to the test process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test loads the file in a child Python
ROOT = Path(__file__).resolve().parents[1]
SHOWN = ("workers", "worker_class", "worker_connections", "bind", "timeout", "keepalive")
# Warnings are errors in the child: a MonkeyPatchWarning (ssl imported before gevent patched
# it) is the RecursionError of every TLS call waiting to happen.
LOADER = f"""
import json, runpy
conf = runpy.run_path("gunicorn.conf.py")
import gevent.monkey, ssl
shown = {{name: conf[name] for name in {SHOWN!r}}}
shown["ssl_patched"] = gevent.monkey.is_module_patched("ssl")
shown["ssl_context"] = ssl.SSLContext.__module__
print(json.dumps(shown))
"""


@pytest.fixture
def environment(test_env, tmp_path):
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {**keep, **test_env, "ENV_FILE": "", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}


def load(environment: dict[str, str]) -> dict:
    child = subprocess.run(
        [sys.executable, "-W", "error", "-c", LOADER],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if child.returncode != 0:
        raise AssertionError(child.stderr)
    return json.loads(child.stdout)


def test_defaults_without_redis(environment):
    conf = load(environment)
    assert (conf["workers"], conf["worker_class"]) == (1, "app.server.worker.SmsWorker")
    assert conf["worker_connections"] == 10_000
    assert conf["bind"] == "0.0.0.0:8000"
    assert conf["timeout"] == 30  # 2 x VONAGE_TIMEOUT + 10
    assert conf["keepalive"] > 60  # outlives a load balancer's idle connections


def test_gevent_patches_ssl_before_anything_imports_it(environment):
    """Loading the configuration patches the standard library first, without a warning."""
    conf = load(environment)
    assert conf["ssl_patched"] is True
    assert conf["ssl_context"].startswith("gevent")


def test_a_worker_class_on_the_command_line_skips_the_patch(environment):
    """Comparing with gthread must measure real threads, not greenlets."""
    conf = load({**environment, "GUNICORN_CMD_ARGS": "--worker-class gthread --threads 64"})
    assert conf["ssl_patched"] is False


def test_several_workers_need_redis(environment):
    with pytest.raises(AssertionError, match="REDIS_URL"):
        load({**environment, "WEB_CONCURRENCY": "3"})


def test_with_redis_the_default_is_one_per_cpu(environment):
    conf = load({**environment, "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert conf["workers"] == (os.cpu_count() or 1)


def test_web_concurrency_overrides(environment):
    conf = load(
        {
            **environment,
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "WEB_CONCURRENCY": "3",
            "PORT": "9000",
        }
    )
    assert (conf["workers"], conf["bind"]) == (3, "0.0.0.0:9000")


def test_a_bad_environment_stops_the_boot(environment):
    environment.pop("API_KEYS")
    with pytest.raises(AssertionError, match=r"ConfigError.*API_KEYS"):
        load(environment)


@pytest.mark.parametrize(
    "change",
    [{"API_KEYS": ""}, {"WEB_CONCURRENCY": "2"}],  # a variable of the app, then of the server
)
def test_a_refused_start_leaves_no_metrics_folder(environment, tmp_path, change):
    """The folder made for this run's metrics goes when the configuration stops the boot."""
    environment.pop("PROMETHEUS_MULTIPROC_DIR")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    with pytest.raises(AssertionError, match="ConfigError"):
        load({**environment, **change, "TMPDIR": str(temporary)})
    assert list(temporary.iterdir()) == []


def test_host_and_port_make_the_bind(environment):
    conf = load({**environment, "HOST": "::", "PORT": "9000"})
    assert conf["bind"] == "[::]:9000"


def gunicorn() -> list[str]:
    """`gunicorn`, as `make run` starts it: the script beside this Python."""
    script = Path(sys.executable).with_name("gunicorn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]


def test_gunicorn_with_a_bad_env_file_says_one_line_naming_every_problem(environment, tmp_path):
    """`make run` with a bad .env: real gunicorn stops with one line naming every problem, the
    server's own variables among them, and no "Failed to read config file" nor traceback."""
    env_file = tmp_path / ".env"
    env_file.write_text("VONAGE_NUMBER=+12\nHOST=not a host\nPORT=99999\nWEB_CONCURRENCY=3\n")
    environment = {k: v for k, v in environment.items() if k not in ("API_KEYS", "VONAGE_NUMBER")}
    child = subprocess.run(
        [*gunicorn(), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env={**environment, "ENV_FILE": str(env_file)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 1
    assert "Traceback" not in child.stderr + child.stdout
    assert child.stdout == ""
    [line] = child.stderr.splitlines()
    assert line.startswith("ConfigError: invalid configuration: ")
    for problem in (
        "API_KEYS is not set",
        "VONAGE_NUMBER must be an E.164 number",
        "HOST must be an IP address or a host name",
        "PORT must be a whole number from 1 to 65535",
        "WEB_CONCURRENCY=3 needs REDIS_URL",
    ):
        assert problem in line
