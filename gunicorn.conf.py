"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

The configuration is checked here, once, in the master: a bad environment stops the
boot with one clear error instead of workers failing one after another.
"""

import os
import sys

# First, before anything imports ssl: the gevent worker needs the standard library patched,
# and ssl patched after its import breaks every TLS call (RecursionError in
# ssl.minimum_version). A worker class named on the command line (e.g. gthread, to compare)
# opts out.
_COMMAND_LINE = " ".join(sys.argv[1:]) + " " + os.environ.get("GUNICORN_CMD_ARGS", "")
WORKER_CLASS_CHOSEN = "--worker-class" in _COMMAND_LINE or " -k" in f" {_COMMAND_LINE}"
if not WORKER_CLASS_CHOSEN:
    from gevent import monkey

    monkey.patch_all()

import glob  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

# Before anything imports prometheus_client, which chooses its multiprocess mode on import:
# each worker writes its samples into this folder and /metrics adds them up.
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sms-metrics-")
METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]

from dotenv import load_dotenv  # noqa: E402
from gunicorn import util as gunicorn_util  # noqa: E402

from app.server.worker import port_in_use, write_unreadable  # noqa: E402
from app.settings import ConfigError, Settings, env_file, read_environment  # noqa: E402

if env_file():
    load_dotenv(env_file(), override=False)  # the real environment wins over .env


def _drop_own_metrics_dir() -> None:
    if _OWN_METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)


try:
    settings = Settings.from_environ(read_environment())
    if settings.state_file:
        from app.store.sqlite_schema import check_schema

        check_schema(settings.state_file)  # a file from a newer version stops the boot here
except ConfigError as error:
    _drop_own_metrics_dir()  # a failed start leaves no folder behind
    # One line on stderr, exit status 1. An exception would reach gunicorn, which prints
    # "Failed to read config file" and a traceback above it; SystemExit goes through.
    sys.exit(f"ConfigError: {error}")


# The server's own variables come from the same reading as the rest (app/settings.py).
bind = settings.bind
workers = settings.workers
worker_class = "app.server.worker.SmsWorker"  # gevent: a send waiting on Vonage costs a greenlet
# Open connections per worker; past them a new one is answered 503 at once (app/server/worker.py).
worker_connections = 10_000
# Longer than a load balancer's idle timeout (often 60 s), so it never reuses a closed socket.
keepalive = 75
# A worker whose event loop stalls this long (CPU-bound or blocked outside gevent) is restarted.
timeout = settings.request_deadline_s
graceful_timeout = timeout
# Heartbeat files in memory: a container's disk can stall workers into timeouts.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
accesslog = None  # the app writes one JSON line per request itself
errorlog = "-"
# gunicorn's own lines as the app's JSON, on stdout, never quoting a request (app/server/log.py).
logger_class = "app.server.log.ServerLog"
# A shared default path makes several instances on one host collide; we do not use gunicornc.
control_socket_disable = True


# Requests gunicorn refuses before the app sees them (a malformed request line, headers too
# large) would otherwise get an HTML page.
gunicorn_util.write_error = write_unreadable


def pre_request(worker, req) -> None:
    """Nothing: gunicorn's default logs every raw request path (numbers in it) at DEBUG."""


def on_starting(server) -> None:
    """Refuse a busy port in one line; start the metrics from zero (samples of an earlier run
    would be added in)."""
    for address in server.cfg.address:
        if isinstance(address, tuple) and port_in_use(*address[:2]):
            # gunicorn would log "Connection in use" five times, a second apart, then give up.
            server.log.error(
                "cannot start: port %s is already in use; set PORT to another port", address[1]
            )
            on_exit(server)
            sys.exit(1)
    for stale in glob.glob(os.path.join(METRICS_DIR, "*.db")):
        os.remove(stale)


def child_exit(server, worker) -> None:
    """A worker is gone: keep its counters, drop its live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    _drop_own_metrics_dir()
