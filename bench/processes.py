"""What tools/stack.py lacks for the benchmark: gunicorn serving another app, and a Redis guard.

Candidate to move into tools/stack.py: an `app` parameter on start_service.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
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
