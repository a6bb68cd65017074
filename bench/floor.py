"""The floor: no service, just Python `requests` posting to the emulator with one cached JWT.

Run as its own process (`python -m bench.floor ...`, one per level) so its CPU is its own:
what any Python caller of Vonage pays at least per SMS. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives import serialization

from bench.closed_loop import percentile, run_closed_loop

BODY = {
    "channel": "sms",
    "message_type": "text",
    "to": "14155550100",
    "from": "447700900000",
    "text": "Benchmark message",
}


def sign_once(application_id: str, key_path: Path) -> str:
    """One application JWT, valid 15 minutes: longer than any run."""
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    now = int(time.time())
    claims = {"application_id": application_id, "iat": now, "jti": str(uuid.uuid4())}
    return jwt.encode({**claims, "exp": now + 15 * 60}, key, algorithm="RS256")


def make_sender(url: str, ca: Path, token: str) -> Callable[[], int]:
    """A sender with its own kept-alive session; returns the HTTP status, 0 for no answer."""
    session = requests.Session()
    session.verify = str(ca)
    session.trust_env = False
    headers = {"Authorization": f"Bearer {token}"}

    def send() -> int:
        try:
            answer = session.post(url + "/v1/messages", json=BODY, headers=headers, timeout=30)
        except requests.RequestException:
            return 0
        return answer.status_code

    return send


def measure(args: argparse.Namespace) -> dict:
    """Warm up, then send for the duration; report throughput, latency and own CPU."""
    token = sign_once(args.application_id, Path(args.key))
    senders = [make_sender(args.url, Path(args.ca), token) for _ in range(args.concurrency)]
    run_closed_loop(senders, args.warmup)
    if args.wait_for_go:  # the caller resets the emulator's counters in between
        print("warm", flush=True)
        sys.stdin.readline()
    before = _own_cpu_s()
    result = run_closed_loop(senders, args.duration)
    cpu_s = _own_cpu_s() - before
    latencies = [sample.latency_s * 1000 for sample in result.samples]
    ok = sum(1 for sample in result.samples if 200 <= sample.outcome < 300)
    return {
        "elapsed_s": result.elapsed_s,
        "responses": sum(1 for sample in result.samples if sample.outcome),
        "ok": ok,
        "non_2xx": sum(1 for sample in result.samples if sample.outcome and sample.outcome >= 300),
        "socket_errors": sum(1 for sample in result.samples if not sample.outcome),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=0.0),
        "cpu_s": cpu_s,
    }


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return usage.ru_utime + usage.ru_stime


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the emulator, https://127.0.0.1:PORT")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--key", required=True, help="the application's private key (PEM)")
    parser.add_argument("--application-id", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--wait-for-go", action="store_true", help="print 'warm', then wait for a stdin line"
    )
    print(json.dumps(measure(parser.parse_args(argv))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
