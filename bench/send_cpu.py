"""CPU of one send through the gateway alone: no HTTP service, no limits, no records.

Starts the emulator (answering at once), builds the app's SmsGateway with its real
transport and sends SMS from one thread in a loop; prints this process's CPU per send
(the emulator runs in its own process and is not counted). With --stub, an adapter answers
in-process instead, so no socket, TLS or urllib3 is involved: only the Python above them.
For a profile, run it under py-spy:
`py-spy record -o send.svg -- .venv/bin/python -m bench.send_cpu`.

    .venv/bin/python -m bench.send_cpu [--sends 2000] [--rounds 5] [--stub]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from app import create_app
from app.domain.sms_request import parse_send_sms
from app.settings import Settings
from app.vonage.gateway import get_gateway
from tools.stack import ensure_credentials, running, start_emulator

BODY = {"to": "+14155550100", "text": "CPU per send"}


class AnswerAtOnce(HTTPAdapter):
    """Answer 202 in-process: no socket, no TLS, no urllib3; only the Python above them."""

    def send(self, request, *args, **kwargs) -> requests.Response:
        response = requests.Response()
        response.status_code, response.request, response.url = 202, request, request.url
        response._content = b'{"message_uuid": "d8f86df1-dec6-442f-870a-2241be27d721"}'
        response.raw = io.BytesIO()
        return response


@contextlib.contextmanager
def no_vonage() -> Iterator[str]:
    yield "api.nexmo.com"  # never reached: AnswerAtOnce is mounted in its place


@contextlib.contextmanager
def emulator(credentials) -> Iterator[str]:
    """Start the emulator, trusted through REQUESTS_CA_BUNDLE; yield its host."""
    with running(start_emulator(credentials)) as process:
        os.environ["REQUESTS_CA_BUNDLE"] = str(credentials.ca)
        yield process.url.removeprefix("https://")


def measure(sends: int, rounds: int, warmup: int, stub: bool) -> list[float]:
    """Return the CPU milliseconds per send of each round."""
    folder = Path(tempfile.mkdtemp(prefix="send-cpu-"))
    credentials = ensure_credentials(folder)
    with no_vonage() if stub else emulator(credentials) as host:
        settings = Settings.from_environ(
            {
                "VONAGE_APPLICATION_ID": credentials.application_id,
                "VONAGE_APPLICATION_PRIVATE_KEY_PATH": str(credentials.private_key_path),
                "VONAGE_NUMBER": "+447700900000",
                "API_KEYS": f"bench:{credentials.api_key}",
                "VONAGE_API_HOST": host,
                "STATE_PATH": str(folder / "state.db"),
            }
        )
        app = create_app(settings)
        gateway = get_gateway(app)
        if stub:
            gateway.transport.adapter = AnswerAtOnce()  # the transport sends through it
        with app.app_context():
            message = parse_send_sms(BODY, settings)
            for _ in range(warmup):
                gateway.send(message)
            results = []
            for _ in range(rounds):
                started = time.process_time()
                for _ in range(sends):
                    gateway.send(message)
                results.append((time.process_time() - started) * 1000 / sends)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=2000, help="sends per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--stub", action="store_true", help="answer in-process, no sockets")
    args = parser.parse_args(argv)
    results = measure(args.sends, args.rounds, args.warmup, args.stub)
    rounds = ", ".join(f"{value:.3f}" for value in results)
    print(
        f"CPU ms per send: median {statistics.median(results):.3f}, "
        f"min {min(results):.3f} (rounds: {rounds})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
