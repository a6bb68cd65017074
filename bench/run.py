"""`make bench`: how many SMS/s one instance handles and what each costs in CPU.

Starts the emulator (upstream latency 0 ms, then 50 ms), then each configuration in turn,
drives it with wrk at each concurrency, and writes docs/benchmarks/results.md, results.json
and throughput.png. Everything listens on 127.0.0.1 and every run is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.loadgen import wrk_available
from bench.measure import Level, Timing, measure_floor, measure_http
from bench.processes import redis_unavailable_reason
from tools.emulator_client import EmulatorClient
from tools.stack import (
    ROOT,
    Credentials,
    Process,
    ensure_credentials,
    running,
    service_environment,
    start_emulator,
    start_redis,
    start_service,
)

REDIS_URL = "{redis_url}"  # replaced by the throwaway redis-server's URL
# High enough that no limit refuses the load; per second keeps the moving windows short.
UNLIMITED = "1000000 per second"


@dataclass(frozen=True)
class Configuration:
    """One thing to measure: `kind` says how to start it, `env` what differs from the default."""

    name: str
    kind: str  # "service", "naive" or "floor"
    what: str
    env: dict[str, str] = field(default_factory=dict)
    needs_redis: bool = False


CONFIGURATIONS = [
    Configuration(
        report.SERVICE,
        "service",
        "our service as shipped: gunicorn.conf.py defaults (1 worker x 16 threads), INFO logs",
    ),
    Configuration(
        "service + Redis",
        "service",
        "our service with REDIS_URL: limits and records in a local redis-server, gunicorn's "
        "default for Redis (2 x CPUs + 1 workers x 16 threads); redis-server's CPU counts",
        {"REDIS_URL": REDIS_URL},
        needs_redis=True,
    ),
    Configuration(
        report.NAIVE,
        "naive",
        "bench/naive_app.py: Flask + the vonage SDK as its README shows (JWT signed from the "
        "PEM on every request), no checks; same gunicorn.conf.py",
    ),
    Configuration(
        report.FLOOR,
        "floor",
        "no service: bench/floor.py posts to the emulator with `requests` from a thread pool "
        "and one cached JWT; its CPU is the load process's own",
    ),
]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: < 1 minute")
    parser.add_argument("--levels", help="concurrency levels, default 1,8,32,64 (quick: 1,32)")
    parser.add_argument("--latencies", default="0,50", help="upstream latencies in ms")
    parser.add_argument("--duration", type=float, help="seconds per level, default 7 (quick: 2)")
    parser.add_argument("--warmup", type=float, help="seconds before each, default 2 (quick: 1)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per level; medians reported")
    parser.add_argument("--only", help="comma-separated configuration names to run")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks"), help="folder")
    parser.add_argument("--workdir", help="keep keys and logs here instead of a temp folder")
    args = parser.parse_args(argv)
    args.levels = _ints(args.levels or ("1,32" if args.quick else "1,8,32,64"))
    args.latencies = _ints(args.latencies)
    args.duration = args.duration or (2.0 if args.quick else 7.0)
    args.warmup = args.warmup or (1.0 if args.quick else 2.0)
    return args


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def choose(only: str | None) -> tuple[list[Configuration], dict[str, str]]:
    """The configurations to run, and the skipped ones with the reason."""
    wanted = {name.strip() for name in only.split(",")} if only else None
    chosen, skipped = [], {}
    for configuration in CONFIGURATIONS:
        if wanted is not None and configuration.name not in wanted:
            continue
        reason = redis_unavailable_reason() if configuration.needs_redis else None
        if reason:
            skipped[configuration.name] = reason
            print(f"SKIPPED {configuration.name}: {reason}", flush=True)
        else:
            chosen.append(configuration)
    return chosen, skipped


@contextlib.contextmanager
def started(
    configuration: Configuration,
    credentials: Credentials,
    emulator: Process,
    redis: Process | None,
) -> Iterator[Process | None]:
    """Start the configuration's server (none for the floor) and stop it on the way out."""
    if configuration.kind == "floor":
        yield None
        return
    redis_url = redis.url if redis else ""
    overrides = {k: v.replace(REDIS_URL, redis_url) for k, v in configuration.env.items()}
    env = service_environment(
        credentials, emulator, RATE_LIMIT=UNLIMITED, RECIPIENT_RATE_LIMIT=UNLIMITED, **overrides
    )
    if configuration.kind == "service":
        process = start_service(credentials.folder, env)
    else:
        process = start_service(credentials.folder, env, app="bench.naive_app:create_app()")
    with running(process):
        yield process


def measure_all(
    args: argparse.Namespace,
    configurations: list[Configuration],
    credentials: Credentials,
    redis: Process | None,
) -> list[Level]:
    """Every configuration at every level, under each upstream latency in turn."""
    timing = Timing(args.warmup, args.duration)
    levels = []
    for latency in args.latencies:
        emulator_env = {"EMULATOR_LATENCY_MS": str(latency), "EMULATOR_QUIET": "1"}
        with running(start_emulator(credentials, env=emulator_env)) as emulator:
            upstream = EmulatorClient(emulator.url, credentials.ca)
            for configuration in configurations:
                helpers = [redis.popen.pid] if redis and configuration.needs_redis else []
                with started(configuration, credentials, emulator, redis) as target:
                    for concurrency in args.levels:
                        runs = [
                            _measure(configuration, target, credentials, emulator, upstream,
                                     concurrency, timing, latency, helpers)
                            for _ in range(args.repeat)
                        ]  # fmt: skip
                        levels.append(median(runs))
                        print(progress(levels[-1]), flush=True)
            upstream.close()
    return levels


def _measure(
    configuration: Configuration,
    target: Process | None,
    credentials: Credentials,
    emulator: Process,
    upstream: EmulatorClient,
    concurrency: int,
    timing: Timing,
    latency: int,
    helpers: list[int],
) -> Level:
    if target is None:
        return measure_floor(
            configuration.name, credentials, emulator, upstream, concurrency, timing, latency
        )
    return measure_http(
        configuration.name,
        target,
        emulator,
        upstream,
        credentials.api_key,
        concurrency,
        timing,
        latency,
        has_request_log=configuration.kind == "service",
        helpers=helpers,
    )


def median(runs: list[Level]) -> Level:
    """One level from repeated runs: the median of every figure; exact only if all were."""
    if len(runs) == 1:
        return runs[0]
    figures = {}
    for item in fields(Level):
        values = [getattr(run, item.name) for run in runs]
        if isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
            figures[item.name] = statistics.median(values)
    failed = [run.accounting for run in runs if not run.accounting_ok]
    return replace(
        runs[0],
        **figures,
        accounting_ok=not failed,
        accounting=f"{len(runs) - len(failed)}/{len(runs)} runs exact; "
        + (failed[0] if failed else runs[0].accounting),
    )


def progress(level: Level) -> str:
    return (
        f"{level.configuration:>16} upstream {level.upstream_latency_ms:>2} ms "
        f"c={level.concurrency:<3} {level.sms_per_s:7.0f} SMS/s  p50 {level.p50_ms:7.1f}  "
        f"p99 {level.p99_ms:7.1f} ms  CPU {level.cpu_ms_per_sms:6.2f} ms/SMS  "
        f"non-2xx {level.non_2xx}  {'exact' if level.accounting_ok else 'MISMATCH'}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk_available():
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    configurations, skipped = choose(args.only)
    began, started_at = time.monotonic(), datetime.now(UTC)
    with contextlib.ExitStack() as stack:
        folder = args.workdir or stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-"))
        redis = None
        if any(configuration.needs_redis for configuration in configurations):
            redis = stack.enter_context(running(start_redis(Path(folder))))
        credentials = ensure_credentials(Path(folder))
        levels = measure_all(args, configurations, credentials, redis)
    run = report.Run(
        levels=levels,
        command=" ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        warmup_s=args.warmup,
        duration_s=args.duration,
        repeats=args.repeat,
        configurations={c.name: c.what for c in configurations},
        skipped=skipped,
        started=started_at,
    )
    paths = report.write(run, Path(args.output))
    print("\n" + report.ratio_table(levels) + "\n")
    print("\n".join(report.verdict(levels)))
    print("\n".join(f"SKIPPED {name}: {why}" for name, why in skipped.items()))
    print(f"wrote {', '.join(str(p) for p in paths)} in {time.monotonic() - began:.0f} s")
    if not all(level.accounting_ok for level in levels):
        print("ACCOUNTING MISMATCH: some 2xx did not match one accepted message", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
