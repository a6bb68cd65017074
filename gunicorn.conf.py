"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

The configuration is checked here, once, in the master: a bad environment stops the
boot with one clear error instead of workers failing one after another.
"""

import glob
import os
import shutil
import tempfile

# Before anything imports prometheus_client, which chooses its multiprocess mode on import:
# each worker writes its samples into this folder and /metrics adds them up.
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sms-metrics-")
METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]

import uuid  # noqa: E402

from dotenv import load_dotenv  # noqa: E402
from gunicorn import util as gunicorn_util  # noqa: E402

from app.errors import problem_body, unreadable_request_problem  # noqa: E402
from app.security import SECURITY_HEADERS  # noqa: E402
from app.settings import ConfigError, Settings, env_file, read_environment  # noqa: E402

if env_file():
    load_dotenv(env_file(), override=False)  # the real environment wins over .env

settings = Settings.from_environ(read_environment())


def _workers() -> int:
    """Without Redis, limits and records live in one process: one worker, many threads.
    With Redis, all workers share them: 2 x CPUs + 1."""
    requested = os.environ.get("WEB_CONCURRENCY", "").strip()
    default = 2 * (os.cpu_count() or 1) + 1 if settings.redis_url else 1
    if not requested:
        return default
    if not requested.isdigit() or int(requested) < 1:
        raise ConfigError("WEB_CONCURRENCY must be a whole number of workers, at least 1")
    if int(requested) > 1 and not settings.redis_url:
        raise ConfigError(
            f"WEB_CONCURRENCY={requested} needs REDIS_URL: without shared state each worker "
            "would count rate limits and keep records on its own"
        )
    return int(requested)


bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = _workers()
threads = int(os.environ.get("THREADS", "16"))
# Longer than a load balancer's idle timeout (often 60 s), so it never reuses a closed socket.
keepalive = 75
timeout = settings.request_deadline_s  # a send never outlives its worker
graceful_timeout = timeout
# Heartbeat files in memory: a container's disk can stall workers into timeouts.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
accesslog = None  # the app writes one JSON line per request itself
errorlog = "-"
# A shared default path makes several instances on one host collide; we do not use gunicornc.
control_socket_disable = True


def _write_problem(sock, status: int, reason: str, _message: str) -> None:
    """gunicorn.util.write_error, but problem+json like every other refusal of the service."""
    problem = unreadable_request_problem(status, reason)
    body = problem_body(problem, uuid.uuid4().hex).encode()
    headers = {
        **SECURITY_HEADERS,
        "Connection": "close",
        "Content-Type": "application/problem+json",
        "Content-Length": str(len(body)),
    }
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    gunicorn_util.write_nonblock(sock, (head + "\r\n").encode("latin-1") + body)


# Requests gunicorn refuses before the app sees them (a malformed request line, headers too
# large) would otherwise get an HTML page.
gunicorn_util.write_error = _write_problem


def on_starting(server) -> None:
    """Start the metrics from zero: samples of an earlier run would be added in."""
    for stale in glob.glob(os.path.join(METRICS_DIR, "*.db")):
        os.remove(stale)


def child_exit(server, worker) -> None:
    """A worker is gone: keep its counters, drop its live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _OWN_METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
