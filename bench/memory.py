"""Memory per send in the embedded (in-process) mode: where docs/operations.md's figure comes from.

Builds the app with its memory store (STATE_PATH=:memory:), answers Vonage in-process (a new
message UUID each time, so every send keeps a record) and sends through the test client to
distinct numbers.
Prints, per send, the Python memory still held afterwards (tracemalloc) and this process's
RSS growth, for plain sends and for sends with an Idempotency-Key; then the share of the
message record alone, and what is left once the rate-limit windows (one minute) have passed.

    .venv/bin/python -m bench.memory [--sends 20000]
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import tempfile
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from app import create_app
from app.settings import Settings
from app.store import get_store
from app.vonage.gateway import get_gateway
from app.web.rate_limits import get_rate_limits
from tools.stack import ensure_credentials

KB = 1024
WARMUP = 200  # sends before each measurement: imports, caches, first allocations


class AcceptEach(HTTPAdapter):
    """Answer 202 in-process with a fresh message UUID: each send is a new record."""

    def send(self, request, *args, **kwargs) -> requests.Response:
        response = requests.Response()
        response.status_code, response.request, response.url = 202, request, request.url
        response._content = b'{"message_uuid": "%s"}' % str(uuid.uuid4()).encode()
        response.raw = io.BytesIO()
        return response


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def held(action: Callable[[], None]) -> tuple[int, int]:
    """Python bytes (tracemalloc) and RSS bytes still held after `action`."""
    gc.collect()
    before, rss_before = tracemalloc.get_traced_memory()[0], rss_bytes()
    action()
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before, rss_bytes() - rss_before


def build_app(folder: Path, sends: int):
    credentials = ensure_credentials(folder)
    settings = Settings.from_environ(
        {
            "VONAGE_APPLICATION_ID": credentials.application_id,
            "VONAGE_APPLICATION_PRIVATE_KEY_PATH": str(credentials.private_key_path),
            "VONAGE_NUMBER": "+447700900000",
            "API_KEYS": f"bench:{credentials.api_key}",
            "RATE_LIMIT": f"{10 * sends + 1000} per minute",
            "LOG_LEVEL": "WARNING",
            "STATE_PATH": ":memory:",  # what a send keeps in the process itself
            "MAX_MESSAGES": str(10 * sends + 1000),  # none evicted
        }
    )
    app = create_app(settings)
    get_gateway(app).transport.adapter = AcceptEach()
    return app, credentials.api_key


def sender(app, api_key: str, idempotent: bool) -> Callable[[int], None]:
    client = app.test_client()
    numbers = random.Random(1).sample(range(2_000_000, 9_999_999), 1_000_000)

    def send(count: int) -> None:
        for _ in range(count):
            headers = {"X-API-Key": api_key}
            if idempotent:
                headers["Idempotency-Key"] = str(uuid.uuid4())
            body = {"to": f"+1415{numbers.pop()}", "text": "How much memory does a send keep?"}
            response = client.post("/send-sms", json=body, headers=headers)
            assert response.status_code == 200, response.get_json()

    return send


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=20000)
    args = parser.parse_args(argv)
    app, api_key = build_app(Path(tempfile.mkdtemp(prefix="bench-memory-")), args.sends)
    tracemalloc.start()
    for idempotent in (False, True):
        send = sender(app, api_key, idempotent)
        send(WARMUP)
        python, rss = held(lambda send=send: send(args.sends))
        label = "with Idempotency-Key" if idempotent else "plain send"
        print(
            f"{label:>21}: {python / args.sends / KB:.2f} KB Python, "
            f"{rss / args.sends / KB:.2f} KB RSS per send"
        )
    store = get_store(app)
    records = len(store._messages)
    python, _ = held(store._messages.clear)
    print(f"{'message record':>21}: {-python / records / KB:.2f} KB Python each ({records})")
    windows = get_rate_limits(app).limiter.storage
    python, _ = held(windows.reset)
    print(f"{'rate-limit windows':>21}: {-python / records / KB:.2f} KB Python per send")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
