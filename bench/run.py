"""`make bench`: how many SMS/s one instance handles and what each costs in CPU.

Starts the emulator at each upstream latency in turn (default 0, 50 and 200 ms), then each
configuration (our service with its SQLite state file, in memory, with Redis, the Node/Express
peer, the naive Flask app and the floor), drives it with wrk at each concurrency (default 1, 8,
32 and 128 connections), and writes docs/benchmarks/results.md, results.json and
throughput.png. Everything listens on 127.0.0.1 and every run is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path

from bench import node, report
from bench.loadgen import DEFAULT_TO, wrk_available
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
# gunicorn reads GUNICORN_CMD_ARGS over gunicorn.conf.py; empty: the calling shell's is ignored.
AS_SHIPPED = {"LOG_LEVEL": "INFO", "GUNICORN_CMD_ARGS": ""}
GTHREAD_256 = "--worker-class gthread --threads 256"


@dataclass(frozen=True)
class Configuration:
    """One thing to measure: `kind` says how to start it, `env` what differs from the default."""

    name: str
    kind: str  # "service", "node", "naive" or "floor"
    what: str
    env: dict[str, str] = field(default_factory=dict)
    needs_redis: bool = False
    default: bool = True  # False: measured only when named in --only


CONFIGURATIONS = [
    Configuration(
        report.SERVICE,
        "service",
        "our service as shipped: gunicorn.conf.py defaults, LOG_LEVEL=INFO (one JSON line per "
        "request, to a file), state in a SQLite file (STATE_PATH, the default without Redis)",
    ),
    Configuration(
        report.SERVICE_MEMORY,
        "service",
        "our service with STATE_PATH=:memory:: records, opt-outs and idempotency keys in process "
        "memory (lost on restart), otherwise as shipped; what the SQLite file costs is the "
        "difference",
        {"STATE_PATH": ":memory:"},
    ),
    Configuration(
        "service + Redis",
        "service",
        "our service with REDIS_URL: limits and records in a local redis-server, gunicorn.conf.py "
        "defaults for Redis (several workers); redis-server's CPU counts",
        {"REDIS_URL": REDIS_URL},
        needs_redis=True,
    ),
    Configuration(
        report.SERVICE_GTHREAD,
        "service",
        f"our service with GUNICORN_CMD_ARGS='{GTHREAD_256}' over gunicorn.conf.py: one "
        "thread-per-request worker with 256 threads; only with --only",
        {"GUNICORN_CMD_ARGS": GTHREAD_256},
        default=False,
    ),
    Configuration(
        report.NODE,
        "node",
        "bench/node_peer/server.js: the Node.js version a user would otherwise pick, as the usual "
        "guide writes it: Express 5 and @vonage/server-sdk 3.x (one client at module level, a JWT "
        "signed on every send), presence checks only, one `node` process, NODE_ENV=production, "
        "one log line per SMS; `to` sent without + as Vonage wants it, since it forwards `to` "
        "untouched",
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
NAMES = [configuration.name for configuration in CONFIGURATIONS]


@dataclass(frozen=True)
class Upstream:
    """The emulator at one latency, and what every target needs to reach it."""

    credentials: Credentials
    emulator: Process
    client: EmulatorClient
    latency_ms: int


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: about 2 minutes")
    parser.add_argument("--levels", help="connections, default 1,8,32,128 (quick: 8,128)")
    parser.add_argument("--latencies", help="upstream ms, default 0,50,200 (quick: 0,200)")
    parser.add_argument("--duration", type=float, help="seconds per run, default 4 (quick: 2)")
    parser.add_argument("--warmup", type=float, help="seconds before each, default 2 (quick: 1)")
    parser.add_argument("--repeat", type=int, help="runs per level (medians), default 3 (quick: 1)")
    parser.add_argument("--only", help=f"comma-separated configurations: {', '.join(NAMES)}")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks"), help="folder")
    parser.add_argument("--workdir", help="keep keys and logs here instead of a temp folder")
    args = parser.parse_args(argv)
    args.levels = _ints(args.levels or ("8,128" if args.quick else "1,8,32,128"))
    args.latencies = _ints(args.latencies or ("0,200" if args.quick else "0,50,200"))
    args.duration = args.duration or (2.0 if args.quick else 4.0)
    args.warmup = args.warmup or (1.0 if args.quick else 2.0)
    args.repeat = args.repeat or (1 if args.quick else 3)
    try:
        args.only = selected(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _key(name: str) -> str:
    """A name as typed: any case, with the letter x for the multiplication sign."""
    return name.strip().lower().replace("×", "x")


def selected(only: str | None) -> list[str] | None:
    """The configuration names --only asks for, or None for the default set; unknown: ValueError."""
    if not only:
        return None
    by_key = {_key(name): name for name in NAMES}
    asked = [_key(name) for name in only.split(",") if name.strip()]
    unknown = [name for name in asked if name not in by_key]
    if unknown:
        raise ValueError(f"unknown configuration {', '.join(unknown)}; known: {', '.join(NAMES)}")
    return [by_key[name] for name in asked]


def unavailable_reason(configuration: Configuration) -> str | None:
    """Why a configuration cannot run here (a missing program), or None; installs the node peer."""
    if configuration.needs_redis:
        return redis_unavailable_reason()
    if configuration.kind == "node":
        return node.ready_reason()
    return None


def choose(
    only: list[str] | None,
    reason: Callable[[Configuration], str | None] = unavailable_reason,
) -> tuple[list[Configuration], dict[str, str]]:
    """The configurations to run, and the skipped ones with the reason."""
    chosen, skipped = [], {}
    for configuration in CONFIGURATIONS:
        if not _wanted(configuration, only):
            continue
        why = reason(configuration)
        if why:
            skipped[configuration.name] = why
            print(f"SKIPPED {configuration.name}: {why}", flush=True)
        else:
            chosen.append(configuration)
    return chosen, skipped


def _wanted(configuration: Configuration, only: list[str] | None) -> bool:
    return configuration.default if only is None else configuration.name in only


@contextlib.contextmanager
def started(
    configuration: Configuration, upstream: Upstream, redis: Process | None
) -> Iterator[Process | None]:
    """Start the configuration's server (none for the floor) and stop it on the way out."""
    if configuration.kind == "floor":
        yield None
        return
    if configuration.kind == "node":
        with running(node.start_peer(upstream.credentials, upstream.emulator)) as process:
            yield process
        return
    redis_url = redis.url if redis else ""
    overrides = {k: v.replace(REDIS_URL, redis_url) for k, v in configuration.env.items()}
    env = service_environment(
        upstream.credentials,
        upstream.emulator,
        RATE_LIMIT=UNLIMITED,
        RECIPIENT_RATE_LIMIT=UNLIMITED,
        **{**AS_SHIPPED, **overrides},
    )
    app = "wsgi:app" if configuration.kind == "service" else "bench.naive_app:create_app()"
    with running(start_service(upstream.credentials.folder, env, app=app)) as process:
        yield process


def measure_all(
    args: argparse.Namespace,
    configurations: list[Configuration],
    credentials: Credentials,
    redis: Process | None,
) -> list[Level]:
    """Every configuration at every level, under each upstream latency in turn."""
    levels = []
    for latency in args.latencies:
        emulator_env = {"EMULATOR_LATENCY_MS": str(latency), "EMULATOR_QUIET": "1"}
        with running(start_emulator(credentials, env=emulator_env)) as emulator:
            upstream = Upstream(
                credentials, emulator, EmulatorClient(emulator.url, credentials.ca), latency
            )
            for configuration in configurations:
                helpers = [redis.popen.pid] if redis and configuration.needs_redis else []
                with started(configuration, upstream, redis) as target:
                    for concurrency in args.levels:
                        runs = [
                            _measure(configuration, target, upstream, concurrency,
                                     _timing(args, configuration, repeat), helpers)
                            for repeat in range(args.repeat)
                        ]  # fmt: skip
                        levels.append(median(runs))
                        print(progress(levels[-1]), flush=True)
            upstream.client.close()
    return levels


def _timing(args: argparse.Namespace, configuration: Configuration, repeat: int) -> Timing:
    """Warm a server up once per level; the floor is a new process each run, so every time."""
    warm = repeat == 0 or configuration.kind == "floor"
    return Timing(args.warmup if warm else 0.0, args.duration)


def _measure(
    configuration: Configuration,
    target: Process | None,
    upstream: Upstream,
    concurrency: int,
    timing: Timing,
    helpers: list[int],
) -> Level:
    if target is None:
        return measure_floor(
            configuration.name,
            upstream.credentials,
            upstream.emulator,
            upstream.client,
            concurrency,
            timing,
            upstream.latency_ms,
        )
    return measure_http(
        configuration.name,
        target,
        upstream.emulator,
        upstream.client,
        upstream.credentials.api_key,
        concurrency,
        timing,
        upstream.latency_ms,
        has_request_log=configuration.kind in ("service", "node"),
        helpers=helpers,
        to=node.PEER_TO if configuration.kind == "node" else DEFAULT_TO,
    )


def estimate_s(args: argparse.Namespace, configurations: Sequence[Configuration]) -> float:
    """Roughly how long the run takes: measured time plus each run's settling and starts."""
    total = 0.0
    for latency in args.latencies:
        # waiting for quiet before and after, draining what wrk left, starting wrk
        settle = 2 * (0.4 + latency / 1000) + RUN_OVERHEAD_S
        for configuration in configurations:
            total += STARTUP_S
            warmups = args.repeat if configuration.kind == "floor" else 1
            per_level = warmups * args.warmup + args.repeat * (args.duration + settle)
            total += per_level * len(args.levels)
    return total


STARTUP_S = 2.0  # starting a server and the emulator, about
RUN_OVERHEAD_S = 1.0  # measured on the 2-core build machine with --quick


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} minutes"


def median(runs: list[Level]) -> Level:
    """One level from repeated runs: the median of every figure; exact only if all were.

    Counts stay whole (the lower median); what names the level is taken from the first run.
    """
    if len(runs) == 1:
        return runs[0]
    figures = {}
    for item in fields(Level):
        values = [getattr(run, item.name) for run in runs]
        if item.name in _LEVEL_NAMES or not all(_is_number(value) for value in values):
            continue
        exact = all(isinstance(value, int) for value in values)
        figures[item.name] = (statistics.median_low if exact else statistics.median)(values)
    failed = [run.accounting for run in runs if not run.accounting_ok]
    return replace(
        runs[0],
        **figures,
        accounting_ok=not failed,
        accounting=f"{len(runs) - len(failed)}/{len(runs)} runs exact; "
        + (failed[0] if failed else runs[0].accounting),
    )


_LEVEL_NAMES = ("configuration", "upstream_latency_ms", "concurrency")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def progress(level: Level) -> str:
    return (
        f"{level.configuration:>19} upstream {level.upstream_latency_ms:>3} ms "
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
    print(
        f"{len(configurations)} configurations x {len(args.latencies)} latencies x "
        f"{len(args.levels)} levels x {args.repeat} runs: about "
        f"{_minutes(estimate_s(args, configurations))}",
        flush=True,
    )
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
