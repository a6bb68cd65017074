"""`make soak`: steady load with a mix of Vonage failures, then prove nothing went wrong.

Runs the service (VONAGE_TIMEOUT=1) against the emulator (hangs last 3 s) at concurrency 16
for a bounded time, sampling the process tree's RSS, then checks the service never crashed,
answered each request as docs/api.md prescribes, sent one message per 200 and re-sent
nothing. Writes docs/benchmarks/soak.md; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import soak_checks
from bench.closed_loop import Sample, percentile, run_closed_loop
from bench.proc import tree_pids, tree_rss_bytes
from bench.report import machine
from bench.soak_checks import MB
from bench.soak_mix import MIX, Answer, make_sender
from tools.emulator_client import EmulatorClient
from tools.stack import (
    ROOT,
    Process,
    ensure_credentials,
    running,
    service_environment,
    start_emulator,
    start_service,
)

UNLIMITED = "1000000 per second"  # no limit refuses the load; per second keeps windows short
MAX_RETRIES = 2  # the service's default VONAGE_MAX_RETRIES
SAMPLE_EVERY_S = 5.0
COLLECT_AFTER = 4000  # fetch /_emulator/messages (newest 10 000) after this many new ones


class Monitor:
    """During the run: sample RSS, and snapshot accepted messages before the emulator drops any."""

    def __init__(self, service: Process, upstream: EmulatorClient) -> None:
        self.service, self.upstream = service, upstream
        self.rss: list[tuple[float, int]] = []
        self.accepted: dict[str, str] = {}  # message_uuid -> to
        self._collected_at = 0
        self._next_sample = 0.0

    def tick(self, elapsed_s: float) -> None:
        if elapsed_s >= self._next_sample:
            self.rss.append((elapsed_s, tree_rss_bytes(self.service.popen.pid)))
            self._next_sample += SAMPLE_EVERY_S
        if self.upstream.stats()["accepted"] - self._collected_at >= COLLECT_AFTER:
            self.collect()

    def collect(self) -> int:
        """Add the emulator's newest messages to what we have seen; return its accepted count."""
        accepted = self.upstream.stats()["accepted"]  # read first: the list holds at least these
        for message in self.upstream.messages():
            self.accepted[message["message_uuid"]] = message["to"]
        self._collected_at = accepted
        return accepted


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: about 40 s")
    parser.add_argument("--duration", type=float, help="seconds of load, default 180 (quick: 40)")
    parser.add_argument("--warmup", type=float, help="seconds before RSS counts (30; quick: 10)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=int, default=0, help="emulator's upstream latency")
    parser.add_argument("--rss-bound-mb", type=float, default=20.0)
    parser.add_argument(
        "--max-messages", type=int, default=2000, help="the service's MAX_MESSAGES for the soak"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks" / "soak.md"))
    parser.add_argument("--workdir", help="keep keys and logs here instead of a temp folder")
    args = parser.parse_args(argv)
    args.duration = args.duration or (40.0 if args.quick else 180.0)
    args.warmup = args.warmup if args.warmup is not None else (10.0 if args.quick else 30.0)
    return args


@dataclass
class Soak:
    """What one soak saw and concluded."""

    samples: list[Sample[Answer]]
    elapsed_s: float
    rss: list[tuple[float, int]]
    checks: list[soak_checks.Check]

    @property
    def answers(self) -> list[Answer]:
        return [sample.outcome for sample in self.samples]


def soak(args: argparse.Namespace, folder: Path) -> Soak:
    """Run the load, then the checks."""
    credentials = ensure_credentials(folder)
    emulator_env = {
        "EMULATOR_QUIET": "1",
        "EMULATOR_HANG_SECONDS": "3",
        "EMULATOR_LATENCY_MS": str(args.latency_ms),
    }
    overrides = {
        "VONAGE_TIMEOUT": "1",
        "RATE_LIMIT": UNLIMITED,
        "RECIPIENT_RATE_LIMIT": UNLIMITED,
        "MAX_MESSAGES": str(args.max_messages),  # the record store is full before RSS counts
    }
    with running(start_emulator(credentials, env=emulator_env)) as emulator:
        upstream = EmulatorClient(emulator.url, credentials.ca)
        env = service_environment(credentials, emulator, **overrides)
        with running(start_service(folder, env)) as service:
            workers_before = tree_pids(service.popen.pid)[1:]
            monitor = Monitor(service, upstream)
            senders = [
                make_sender(service.url, credentials.api_key, args.seed * 1000 + i)
                for i in range(args.concurrency)
            ]
            print(f"soak: {args.duration:g} s at concurrency {args.concurrency}", flush=True)
            result = run_closed_loop(senders, args.duration, on_tick=monitor.tick)
            attempts = upstream.wait_until_quiet(0.5)["attempts"]
            total_accepted = monitor.collect()
            monitor.tick(result.elapsed_s + SAMPLE_EVERY_S)  # one last RSS sample
            workers_after = tree_pids(service.popen.pid)[1:]
            master_running = service.popen.poll() is None
        upstream.close()
    answers = [sample.outcome for sample in result.samples]
    checks = [
        soak_checks.alive(master_running, workers_before, workers_after),
        soak_checks.statuses(answers),
        soak_checks.one_message_per_200(answers, monitor.accepted, total_accepted),
        soak_checks.no_resend(answers, attempts, MAX_RETRIES),
        soak_checks.rss_bound(monitor.rss, args.warmup, args.duration, args.rss_bound_mb),
    ]
    return Soak(result.samples, result.elapsed_s, monitor.rss, checks)


def markdown(run: Soak, args: argparse.Namespace, command: str, started: datetime) -> str:
    """The soak page: settings, the mix and its answers, RSS, the checks."""
    by_kind: dict[str, list[Sample[Answer]]] = {kind.name: [] for kind in MIX}
    for sample in run.samples:
        by_kind[sample.outcome.kind.name].append(sample)
    rows = []
    for kind in MIX:
        samples = by_kind[kind.name]
        got = Counter(s.outcome.status for s in samples)
        latencies = [s.latency_s * 1000 for s in samples]
        rows.append(
            f"| {kind.name} | `{kind.to}` | {kind.weight:g}% | {len(samples)} "
            f"| {kind.status} {kind.slug or ''} "
            f"| {', '.join(f'{status}: {n}' for status, n in sorted(got.items()))} "
            f"| {percentile(latencies, 50):.0f} | {percentile(latencies, 99):.0f} |"
        )
    ok = sum(1 for a in run.answers if a.status == 200)
    rss = [value / MB for _, value in run.rss]
    lines = [
        "# Soak results",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC with `{command}`. Generated by `bench/soak.py`; "
        "do not edit by hand.",
        "",
        "## Settings",
        "",
        *(f"- {key}: {value}" for key, value in machine().items()),
        f"- {args.duration:g} s of closed-loop load at concurrency {args.concurrency} "
        f"(Python threads, one kept-alive session each), seed {args.seed}",
        "- service: gunicorn.conf.py defaults (1 worker x 16 threads), VONAGE_TIMEOUT=1, "
        f"VONAGE_MAX_RETRIES={MAX_RETRIES} (default), RATE_LIMIT and RECIPIENT_RATE_LIMIT "
        f"`{UNLIMITED}`, MAX_MESSAGES={args.max_messages} (its in-memory message records reach "
        "this cap during the warm-up, so what the bound tests is growth beyond a full store), "
        "INFO logs to a file",
        f"- emulator: --quiet, EMULATOR_HANG_SECONDS=3, upstream latency {args.latency_ms} ms",
        f"- memory: process tree RSS (VmRSS of master + workers) every {SAMPLE_EVERY_S:g} s; "
        f"warm-up {args.warmup:g} s; bound: the last window's peak at most the first window's "
        f"peak + {args.rss_bound_mb:g} MB",
        "",
        "## Checks",
        "",
        "| check | result | detail |",
        "|---|---|---|",
        *(f"| {c.name} | {'pass' if c.ok else '**FAIL**'} | {c.detail} |" for c in run.checks),
        "",
        "## Traffic",
        "",
        f"{len(run.samples)} requests in {run.elapsed_s:.1f} s: "
        f"{len(run.samples) / run.elapsed_s:.0f} requests/s, {ok / run.elapsed_s:.0f} SMS/s.",
        "",
        "| kind | to | weight | requests | prescribed | answered | p50 ms | p99 ms |",
        "|---|---|--:|--:|---|---|--:|--:|",
        *rows,
        "",
        "## Memory",
        "",
        f"{len(rss)} samples, MB: min {min(rss, default=0):.1f}, max {max(rss, default=0):.1f}; "
        f"over time: {', '.join(f'{t:.0f} s {v / MB:.1f}' for t, v in run.rss)}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    command = " ".join(["python -m bench.soak", *(argv if argv is not None else sys.argv[1:])])
    with contextlib.ExitStack() as stack:
        folder = args.workdir or stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-"))
        run = soak(args, Path(folder))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(markdown(run, args, command, started))
    for check in run.checks:
        print(f"{'pass' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    print(f"wrote {output}")
    return 0 if all(check.ok for check in run.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
