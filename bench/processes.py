"""What tools/stack.py lacks for the benchmark: gunicorn serving another app, and redis-server.

Candidates to move into tools/stack.py (an `app` parameter on start_service, start_redis).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from tools.stack import READY_TIMEOUT_S, ROOT, Process, free_port

# As tools.stack.start_service: these come from the benchmark, never from the calling shell.
_STACK_VARIABLES = {"REDIS_URL", "WEB_CONCURRENCY", "RATE_LIMIT", "RECIPIENT_RATE_LIMIT"}


def start_gunicorn(folder: Path, env: Mapping[str, str], app: str) -> Process:
    """Serve `app` (module:variable) with the service's gunicorn.conf.py; wait for /health."""
    port = free_port()
    log_path = folder / f"{app.replace(':', '-')}-{port}.log"
    environment = {k: v for k, v in os.environ.items() if k not in _STACK_VARIABLES}
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
    wait_for_health(process)
    return process


def wait_for_health(process: Process) -> None:
    """Poll GET /health until it answers 200; stop the process and raise if it never does."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and process.popen.poll() is None:
        health = process.url + "/health"
        with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=1) as answer:  # noqa: S310
            if answer.status == 200:
                return
        time.sleep(0.1)
    process.stop()
    raise RuntimeError(f"{process.name} did not start:\n{process.log()}")


def redis_unavailable_reason() -> str | None:
    """Why the Redis configuration cannot run here, or None when it can."""
    if shutil.which("redis-server") is None:
        return "redis-server is not on PATH (Debian package redis-server)"
    if "REDIS_URL" not in (ROOT / "app" / "settings.py").read_text():
        return "the service does not read REDIS_URL yet (app/settings.py)"
    return None


@contextlib.contextmanager
def running_redis() -> Iterator[str]:
    """Run a throwaway redis-server on a free loopback port; yield its redis:// URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as folder:
        command = [
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", folder,
        ]  # fmt: skip
        log_path = Path(folder) / "redis.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        process = Process(popen, log_path, f"redis://127.0.0.1:{port}/0", "redis")
        try:
            _wait_for_port(process, port)
            yield process.url
        finally:
            process.stop()


def _wait_for_port(process: Process, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and process.popen.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    process.stop()
    raise RuntimeError(f"redis-server did not start:\n{process.log()}")
