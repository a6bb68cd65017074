"""`python -m bench.hang`: how fast /health answers while sends wait on a Vonage that hangs.

Starts the emulator (the hang number stays silent past VONAGE_TIMEOUT) and the service,
releases `--sends` sends to that number at once, and calls /health every 20 ms meanwhile.
Prints /health's p50, p99 and worst answer times, and what the sends were answered and when.
`--gunicorn-args` compares worker models, e.g. "--worker-class gthread --threads 256".
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import requests

from emulator.magic import number_for
from tools.stack import (
    ensure_credentials,
    running,
    service_environment,
    start_emulator,
    start_service,
)

UNLIMITED = "1000000 per second"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=256, help="sends in flight, default 256")
    parser.add_argument("--timeout", type=int, default=10, help="VONAGE_TIMEOUT, default 10")
    parser.add_argument("--gunicorn-args", default="", help="GUNICORN_CMD_ARGS for the service")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-hang-") as folder:
        credentials = ensure_credentials(Path(folder))
        hang_s = str(args.timeout + 20)
        with running(start_emulator(credentials, env={"EMULATOR_HANG_SECONDS": hang_s})) as emu:
            env = service_environment(
                credentials,
                emu,
                VONAGE_TIMEOUT=str(args.timeout),
                RATE_LIMIT=UNLIMITED,
                RECIPIENT_RATE_LIMIT=UNLIMITED,
                GUNICORN_CMD_ARGS=args.gunicorn_args,
            )
            with running(start_service(credentials.folder, env)) as service:
                health, answers = _measure(service.url, credentials.api_key, args.sends)
    _report(args, health, answers)
    return 0


def _measure(url: str, api_key: str, sends: int) -> tuple[list[float], list[tuple[int, float]]]:
    stop = threading.Event()
    health: list[float] = []

    def probe() -> None:
        with requests.Session() as http:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    http.get(url + "/health", timeout=30).raise_for_status()
                    health.append(time.monotonic() - started)
                except requests.RequestException:
                    health.append(float("inf"))
                stop.wait(0.02)

    gate = threading.Barrier(sends)

    def send(n: int) -> tuple[int, float]:
        gate.wait()
        started = time.monotonic()
        answer = requests.post(
            url + "/send-sms",
            json={"to": "+" + number_for("hang"), "text": f"hang {n}"},
            headers={"X-API-Key": api_key},
            timeout=120,
        )
        return answer.status_code, time.monotonic() - started

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(sends) as pool:
            answers = list(pool.map(send, range(sends)))
    finally:
        stop.set()
        prober.join()
    return health, answers


def _report(args, health: list[float], answers: list[tuple[int, float]]) -> None:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms"

    p99 = statistics.quantiles(health, n=100)[-1] if len(health) > 1 else health[0]
    print(f"{args.sends} sends to a hung Vonage, VONAGE_TIMEOUT={args.timeout} s, ", end="")
    print(f"GUNICORN_CMD_ARGS={args.gunicorn_args!r}")
    print(
        f"/health: {len(health)} calls, p50 {ms(statistics.median(health))}, "
        f"p99 {ms(p99)}, worst {ms(max(health))}"
    )
    by_status = Counter(status for status, _ in answers)
    for status, count in sorted(by_status.items()):
        times = [elapsed for s, elapsed in answers if s == status]
        print(f"sends answered {status}: {count}, in {ms(min(times))} to {ms(max(times))}")


if __name__ == "__main__":
    raise SystemExit(main())
