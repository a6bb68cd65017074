"""Measure one concurrency level against one target: throughput, latency, CPU, and accounting.

Accounting: every 2xx must match exactly one message the emulator accepted. wrk stops
on its deadline with requests in flight, which the target still completes (answering to
a closed socket), so counters are read once the emulator is quiet and the target idle,
and the exact match is made against the target's own request log (our service's, or the
node peer's line per SMS); wrk's count must lie within `concurrency`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import DEFAULT_TO, run_wrk
from bench.proc import tree_cpu_seconds, tree_pids
from tools.emulator_client import EmulatorClient
from tools.stack import Credentials, Process

EMULATOR_MESSAGE_CAP = 10_000  # /_emulator/messages keeps only the newest ones
# CPU an idle target may use while we wait for quiet: two clock ticks (heartbeats, timers).
IDLE_CPU_S = 0.02


@dataclass(frozen=True)
class Level:
    """The figures of one configuration at one concurrency."""

    configuration: str
    upstream_latency_ms: int
    concurrency: int
    sms_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    ok: int  # 2xx answers the load generator received
    non_2xx: int
    socket_errors: int
    accepted: int  # messages the emulator accepted
    upstream_requests: int  # POST /v1/messages the emulator received
    cpu_ms_per_sms: float  # the target's process tree (or the floor process) per accepted SMS
    emulator_cpu_ms_per_sms: float
    loadgen_cpu_ms_per_request: float | None  # wrk's own; None for the floor (it is the load)
    processes: int  # gunicorn master + workers (+ redis-server when used)
    accounting_ok: bool
    accounting: str  # how the 2xx answers were matched to accepted messages


@dataclass(frozen=True)
class Timing:
    """How long to warm up and to measure each level."""

    warmup_s: float
    duration_s: float


def measure_http(
    name: str,
    target: Process,
    emulator: Process,
    upstream: EmulatorClient,
    api_key: str,
    concurrency: int,
    timing: Timing,
    latency_ms: int,
    has_request_log: bool,
    helpers: Sequence[int] = (),
    to: str = DEFAULT_TO,
) -> Level:
    """Drive `target` with wrk at `concurrency`; read CPU and counters before and after.

    `helpers` are pids of processes the target needs (redis-server): their CPU counts as its.
    `to` is the number as the target wants it. No warm-up when `timing.warmup_s` is 0 (a
    repeat of a level just measured).
    """
    settle_s = 0.3 + latency_ms / 1000
    pids = (target.popen.pid, *helpers)
    if timing.warmup_s:
        run_wrk(target.url, api_key, concurrency, timing.warmup_s, to)
    wait_until_idle(upstream, pids, settle_s)
    upstream.reset()
    log_offset = target.log_path.stat().st_size
    cpu_before = _cpu_seconds(pids)
    emulator_before = tree_cpu_seconds(emulator.popen.pid)
    wrk = run_wrk(target.url, api_key, concurrency, timing.duration_s, to)
    stats = wait_until_idle(upstream, pids, settle_s)
    cpu_s = _cpu_seconds(pids) - cpu_before
    emulator_cpu_s = tree_cpu_seconds(emulator.popen.pid) - emulator_before
    accepted = stats["accepted"]
    checks = [
        _check(stats["requests"] == accepted, f"upstream requests {stats['requests']}"),
        _check(
            wrk.ok <= accepted <= wrk.ok + concurrency,
            f"wrk 2xx {wrk.ok} + in flight at stop {accepted - wrk.ok} (<= {concurrency})",
        ),
    ]
    if has_request_log:
        checks.append(_match_log(target.log_path, log_offset, accepted, upstream))
    return Level(
        configuration=name,
        upstream_latency_ms=latency_ms,
        concurrency=concurrency,
        sms_per_s=wrk.ok / wrk.duration_s,
        p50_ms=wrk.p50_ms,
        p95_ms=wrk.p95_ms,
        p99_ms=wrk.p99_ms,
        max_ms=wrk.max_ms,
        ok=wrk.ok,
        non_2xx=wrk.non_2xx,
        socket_errors=wrk.socket_errors,
        accepted=accepted,
        upstream_requests=stats["requests"],
        cpu_ms_per_sms=_per(cpu_s, accepted),
        emulator_cpu_ms_per_sms=_per(emulator_cpu_s, accepted),
        loadgen_cpu_ms_per_request=_per(wrk.cpu_s, wrk.responses),
        processes=len(tree_pids(target.popen.pid)) + len(helpers),
        accounting_ok=all(ok for ok, _ in checks),
        accounting=f"accepted {accepted}: " + "; ".join(text for _, text in checks),
    )


def measure_floor(
    name: str,
    credentials: Credentials,
    emulator: Process,
    upstream: EmulatorClient,
    concurrency: int,
    timing: Timing,
    latency_ms: int,
) -> Level:
    """Run bench.floor in its own process; reset the emulator between its warm-up and run."""
    command = [
        sys.executable, "-m", "bench.floor",
        "--url", emulator.url,
        "--ca", str(credentials.ca),
        "--key", str(credentials.private_key_path),
        "--application-id", credentials.application_id,
        "--concurrency", str(concurrency),
        "--duration", str(timing.duration_s),
        "--warmup", str(timing.warmup_s),
        "--wait-for-go",
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as floor:
        assert floor.stdin and floor.stdout
        if floor.stdout.readline().strip() != "warm":
            raise RuntimeError("bench.floor did not warm up")
        upstream.wait_until_quiet(0.2)  # the floor's own requests have all been answered
        upstream.reset()
        emulator_before = tree_cpu_seconds(emulator.popen.pid)
        floor.stdin.write("go\n")
        floor.stdin.flush()
        result = json.loads(floor.stdout.readline())
    stats = upstream.wait_until_quiet(0.2)
    emulator_cpu_s = tree_cpu_seconds(emulator.popen.pid) - emulator_before
    accepted = stats["accepted"]
    exact = result["ok"] == accepted == stats["requests"]
    return Level(
        configuration=name,
        upstream_latency_ms=latency_ms,
        concurrency=concurrency,
        sms_per_s=result["ok"] / result["elapsed_s"],
        p50_ms=result["p50_ms"],
        p95_ms=result["p95_ms"],
        p99_ms=result["p99_ms"],
        max_ms=result["max_ms"],
        ok=result["ok"],
        non_2xx=result["non_2xx"],
        socket_errors=result["socket_errors"],
        accepted=accepted,
        upstream_requests=stats["requests"],
        cpu_ms_per_sms=_per(result["cpu_s"], accepted),
        emulator_cpu_ms_per_sms=_per(emulator_cpu_s, accepted),
        loadgen_cpu_ms_per_request=None,
        processes=1,
        accounting_ok=exact,
        accounting=f"accepted {accepted}: 2xx {result['ok']}, upstream requests "
        f"{stats['requests']} (every request answered before the counters were read)",
    )


def wait_until_idle(
    upstream: EmulatorClient, pids: Sequence[int], settle_s: float, timeout_s: float = 120
) -> dict:
    """Wait until, for `settle_s`, no request reached the emulator and the target used next to
    no CPU; return the emulator's stats.

    The emulator alone can look quiet too soon: a target whose threads all sign JWTs at once
    (the naive app at 128 connections) sends in bursts with long gaps, while still draining
    requests that wrk left behind. Those must not leak into the next window.
    """
    deadline = time.monotonic() + timeout_s
    last, cpu = upstream.stats(), _cpu_seconds(pids)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        stats, used = upstream.stats(), _cpu_seconds(pids)
        if stats["requests"] != last["requests"] or used - cpu > IDLE_CPU_S:
            last, cpu, quiet_since = stats, used, time.monotonic()
        elif time.monotonic() - quiet_since >= settle_s:
            return stats
    raise TimeoutError("the target kept working (CPU or upstream requests) after the load stopped")


def _cpu_seconds(pids: Sequence[int]) -> float:
    return sum(tree_cpu_seconds(pid) for pid in pids)


def _match_log(
    path: Path, offset: int, accepted: int, upstream: EmulatorClient
) -> tuple[bool, str]:
    """Match the target's logged 200s (and their message_uuids) to the emulator's messages."""
    uuids = []
    with open(path, "rb") as log:
        log.seek(offset)
        for raw in log:
            line = _json_or_none(raw)
            if line and line.get("path") == "/send-sms" and line.get("status") == 200:
                uuids.append(line.get("message_uuid"))
    if not uuids and accepted:
        return True, "request log: no lines found (log format changed?), not matched"
    unique = len(set(uuids)) == len(uuids)
    if accepted > EMULATOR_MESSAGE_CAP:
        return len(uuids) == accepted and unique, f"logged {len(uuids)} x 200 (count)"
    same = set(uuids) == {m["message_uuid"] for m in upstream.messages()}
    ok = len(uuids) == accepted and unique and same
    relation = "=" if same else "!="
    return ok, f"logged {len(uuids)} x 200, message_uuids {relation} emulator's"


def _json_or_none(raw: bytes) -> dict | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _check(ok: bool, text: str) -> tuple[bool, str]:
    return ok, text + ("" if ok else " MISMATCH")


def _per(cpu_s: float, count: int) -> float:
    return cpu_s * 1000 / count if count else float("nan")
