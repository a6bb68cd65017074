"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

Rate limits live in process memory, so one worker with threads is the default:
several workers would each count on their own and multiply every limit.
"""

import os

from dotenv import load_dotenv

from app.settings import env_file

if env_file():
    load_dotenv(env_file(), override=False)  # the real environment wins over .env

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
threads = int(os.environ.get("THREADS", "16"))
# Longer than a load balancer's idle timeout (often 60 s), so it never reuses a closed socket.
keepalive = 75
# A send waits at most about twice VONAGE_TIMEOUT (one attempt plus backoff); never cut it short.
timeout = 2 * int(os.environ.get("VONAGE_TIMEOUT", "10")) + 10
graceful_timeout = timeout
# Heartbeat files in memory: a container's disk can stall workers into timeouts.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
accesslog = None  # the app writes one JSON line per request itself
errorlog = "-"
# A shared default path makes several instances on one host collide; we do not use gunicornc.
control_socket_disable = True


def on_starting(server) -> None:
    """Check the configuration once in the master, so a bad environment stops the boot
    with one clear error instead of workers failing one after another."""
    from app.settings import Settings, read_environment

    Settings.from_environ(read_environment())
