"""Turn measured levels into docs/benchmarks/results.md, results.json and throughput.png."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench.measure import Level
from bench.plot import plot

TARGET_CPU_MS = 3.0
TARGET_FLOOR_RATIO = 1.5
SERVICE, NAIVE, FLOOR = "service", "naive", "floor"


@dataclass(frozen=True)
class Run:
    """One invocation: what was measured, how, and what could not be."""

    levels: list[Level]
    command: str
    warmup_s: float
    duration_s: float
    repeats: int
    configurations: dict[str, str]  # name -> what it is
    skipped: dict[str, str]  # name -> why it did not run
    started: datetime


def machine() -> dict[str, str]:
    """Describe the machine the numbers came from."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    wrk = "absent"
    if shutil.which("wrk"):
        wrk = subprocess.run(
            [shutil.which("wrk") or "wrk", "--version"], capture_output=True, text=True
        ).stdout
        wrk = wrk.split("Copyright")[0].strip() or "unknown"
    return {
        "CPU": model,
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "gunicorn": version("gunicorn"),
        "vonage SDK": version("vonage"),
        "wrk": wrk,
    }


def _memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return "unknown"


def ratios(levels: Sequence[Level], name: str) -> list[dict[str, float | int | str]]:
    """For each (latency, concurrency) of `name`: its figures over the naive and floor ones."""
    index = {(lv.configuration, lv.upstream_latency_ms, lv.concurrency): lv for lv in levels}
    rows = []
    for level in (lv for lv in levels if lv.configuration == name):
        key = (level.upstream_latency_ms, level.concurrency)
        naive, floor = index.get((NAIVE, *key)), index.get((FLOOR, *key))
        rows.append(
            {
                "configuration": name,
                "latency": level.upstream_latency_ms,
                "concurrency": level.concurrency,
                "sms_per_s": level.sms_per_s,
                "sms_x_naive": _ratio(level.sms_per_s, naive and naive.sms_per_s),
                "sms_x_floor": _ratio(level.sms_per_s, floor and floor.sms_per_s),
                "cpu_ms": level.cpu_ms_per_sms,
                "cpu_x_naive": _ratio(level.cpu_ms_per_sms, naive and naive.cpu_ms_per_sms),
                "cpu_x_floor": _ratio(level.cpu_ms_per_sms, floor and floor.cpu_ms_per_sms),
            }
        )
    return rows


def _ratio(ours: float, theirs: float | None) -> float:
    return ours / theirs if theirs else math.nan


def ratio_table(levels: Sequence[Level]) -> str:
    """Markdown: every service configuration against the naive baseline and the floor."""
    names = [name for name in _names(levels) if name not in (NAIVE, FLOOR)]
    lines = [
        "| configuration | upstream | concurrency | SMS/s | × naive | × floor "
        "| CPU ms/SMS | × naive | × floor |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name in names:
        for row in ratios(levels, name):
            lines.append(
                f"| {name} | {row['latency']} ms | {row['concurrency']} | {row['sms_per_s']:.0f} "
                f"| {row['sms_x_naive']:.1f} | {row['sms_x_floor']:.2f} | {row['cpu_ms']:.2f} "
                f"| {row['cpu_x_naive']:.3f} | {row['cpu_x_floor']:.1f} |"
            )
    return "\n".join(lines)


def results_table(levels: Sequence[Level], latency_ms: int) -> str:
    """Markdown: one row per configuration and concurrency at one upstream latency."""
    lines = [
        "| configuration | concurrency | SMS/s | p50 ms | p95 ms | p99 ms | non-2xx "
        "| socket errors | CPU ms/SMS | emulator CPU ms/SMS | wrk CPU ms/req | processes "
        "| 2xx ↔ accepted |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for level in (lv for lv in levels if lv.upstream_latency_ms == latency_ms):
        wrk = level.loadgen_cpu_ms_per_request
        lines.append(
            f"| {level.configuration} | {level.concurrency} | {level.sms_per_s:.0f} "
            f"| {level.p50_ms:.1f} | {level.p95_ms:.1f} | {level.p99_ms:.1f} | {level.non_2xx} "
            f"| {level.socket_errors} | {level.cpu_ms_per_sms:.2f} "
            f"| {level.emulator_cpu_ms_per_sms:.2f} | {'—' if wrk is None else f'{wrk:.3f}'} "
            f"| {level.processes} | {'exact' if level.accounting_ok else '**MISMATCH**'} |"
        )
    return "\n".join(lines)


def verdict(levels: Sequence[Level]) -> list[str]:
    """Plain sentences: is the target (at most 3 ms CPU/SMS, within 1.5 times the floor) met?"""
    sentences = []
    for name in (n for n in _names(levels) if n not in (NAIVE, FLOOR)):
        ours = [lv for lv in levels if lv.configuration == name]
        worst = max(ours, key=lambda lv: lv.cpu_ms_per_sms)
        rows = ratios(levels, name)
        floor_x = [row["cpu_x_floor"] for row in rows if not math.isnan(row["cpu_x_floor"])]
        sms_x = [row["sms_x_floor"] for row in rows if not math.isnan(row["sms_x_floor"])]
        over = [lv for lv in ours if lv.cpu_ms_per_sms > TARGET_CPU_MS]
        where = ", ".join(
            f"{lv.upstream_latency_ms} ms upstream at concurrency {lv.concurrency}: "
            f"{lv.cpu_ms_per_sms:.2f} ms"
            for lv in over
        )
        sentences.append(
            f"**{name}**: CPU per SMS {min(lv.cpu_ms_per_sms for lv in ours):.2f}–"
            f"{worst.cpu_ms_per_sms:.2f} ms: the ≤ {TARGET_CPU_MS:g} ms target is met at "
            f"{len(ours) - len(over)} of {len(ours)} levels"
            + (f"; NOT met at {where}." if over else ".")
        )
        if floor_x:
            within = max(floor_x) <= TARGET_FLOOR_RATIO
            sentences.append(
                f"**{name}** against the floor: {min(floor_x):.1f}–{max(floor_x):.1f}× its CPU "
                f"per SMS and {min(sms_x):.2f}–{max(sms_x):.2f}× its SMS/s: the "
                f"within-{TARGET_FLOOR_RATIO:g}× target is {'met' if within else 'NOT met'}."
            )
    return sentences


def markdown(run: Run) -> str:
    """The whole results page."""
    latencies = sorted({lv.upstream_latency_ms for lv in run.levels})
    parts = [
        "# Benchmark results",
        "",
        f"Measured {run.started:%Y-%m-%d %H:%M} UTC with `{run.command}` "
        f"(warm-up {run.warmup_s:g} s, then {run.duration_s:g} s per level"
        + (f", median of {run.repeats} runs" if run.repeats > 1 else "")
        + "). Generated by `bench/report.py`; do not edit by hand.",
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in machine().items()),
        "- load generator (wrk, one thread), emulator and service share all the cores, on loopback",
        "",
        "## Configurations",
        "",
        *(f"- **{name}**: {what}" for name, what in run.configurations.items()),
        *(f"- **{name}**: SKIPPED: {why}" for name, why in run.skipped.items()),
        "",
        "## Against the target",
        "",
        *(f"- {sentence}" for sentence in verdict(run.levels)),
        "",
        "## Our service against the naive baseline and the floor",
        "",
        ratio_table(run.levels),
        "",
        "× naive and × floor are our figure divided by theirs at the same upstream latency and "
        "concurrency: SMS/s above 1 is faster, CPU below 1 is cheaper.",
        "",
    ]
    for latency in latencies:
        parts += [
            f"## Upstream answering after {latency} ms",
            "",
            results_table(run.levels, latency),
            "",
        ]
    parts += [
        "## How these are measured",
        "",
        *(f"- {line}" for line in METHOD),
        "",
        "## Accounting per level",
        "",
        *(
            f"- {lv.configuration}, {lv.upstream_latency_ms} ms, concurrency {lv.concurrency}: "
            f"{lv.accounting}"
            for lv in run.levels
        ),
        "",
        "![SMS/s and p99 latency against concurrency](throughput.png)",
        "",
    ]
    return "\n".join(parts)


METHOD = (
    "SMS/s: 2xx answers the load generator received, divided by the measured duration.",
    "Latency: wrk's percentiles (service and naive), nearest-rank percentiles of every request "
    "(floor); wrk is a closed loop, so latencies include queueing behind busy threads.",
    "CPU ms/SMS: user + system time from /proc/<pid>/stat of the gunicorn master and all its "
    "workers (the whole tree), read before and after the level once the emulator has been quiet "
    "for 0.3 s plus its latency, divided by the messages the emulator accepted in that window. "
    "That window includes the requests still in flight when wrk stopped, whose CPU it also "
    "holds. The floor's figure is the floor process's own rusage over its measured run.",
    "Emulator CPU ms/SMS: the Vonage stand-in's own cost (TLS, JWT check, JSON), for context; "
    "wrk CPU ms/req shows the load generator is not the bottleneck.",
    "2xx ↔ accepted: the emulator's counters were reset after the warm-up; then every upstream "
    "request must be accepted (no retry, no duplicate), wrk's 2xx plus the requests in flight at "
    "its stop must equal the accepted count, and for our service the 200s in its own request log "
    "must match the emulator's message_uuids one to one.",
    "Rate limits are set to `1000000 per second` (RATE_LIMIT and RECIPIENT_RATE_LIMIT) so none "
    "refuses the load; a per-second window keeps the moving-window lists as short as real "
    "limits keep them (a per-minute one would hold 60 s of hits). Logging stays at the default "
    "INFO (one JSON line per request to a file), since that is part of the cost.",
    "The emulator runs with --quiet (EMULATOR_QUIET=1) and EMULATOR_LATENCY_MS 0, then 50.",
    "With a 50 ms upstream one worker's 16 threads complete at most 16 / 0.05 s = 320 SMS/s: "
    "past 16 connections that configuration is bound by threads, not CPU (THREADS lifts it).",
    "At a few SMS/s (concurrency 1 with a 50 ms upstream) each SMS also pays for waking idle "
    "threads and cold caches; the floor's CPU per SMS rises in the same proportion there.",
)


def write(run: Run, folder: Path) -> list[Path]:
    """Write results.md, results.json and throughput.png into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "results.md", folder / "results.json", folder / "throughput.png"]
    paths[0].write_text(markdown(run))
    data = {
        "started": run.started.astimezone(UTC).isoformat(timespec="seconds"),
        "command": run.command,
        "machine": machine(),
        "skipped": run.skipped,
        "levels": [dataclasses.asdict(level) for level in run.levels],
    }
    paths[1].write_text(json.dumps(data, indent=1, allow_nan=True) + "\n")
    plot(run.levels, paths[2])
    return paths


def _names(levels: Sequence[Level]) -> list[str]:
    return list(dict.fromkeys(level.configuration for level in levels))
