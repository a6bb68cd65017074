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

from bench import node
from bench.measure import Level

TARGET_CPU_MS = 3.0
TARGET_FLOOR_RATIO = 1.5
SERVICE, NAIVE, FLOOR, NODE = "service", "naive", "floor", "node"
SERVICE_GTHREAD = "service gthread×256"
SERVICE_MEMORY = "service in memory"
BASELINES = (NODE, NAIVE, FLOOR)  # what our service configurations are compared against


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
        platform.machine() or "unknown",  # (platform.processor() runs `uname -p`)
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
        "node": _node_version(),
        "node peer": _peer_packages(),
        "wrk": wrk,
    }


def _node_version() -> str:
    binary = shutil.which("node")
    if binary is None:
        return "absent"
    printed = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    return printed.stdout.strip() or "unknown"


def _peer_packages() -> str:
    """The peer's pinned dependencies, from its package.json."""
    dependencies = json.loads((node.PEER / "package.json").read_text())["dependencies"]
    return ", ".join(f"{name} {pinned}" for name, pinned in dependencies.items())


def _memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return "unknown"


def ratios(levels: Sequence[Level], name: str) -> list[dict[str, float | int | str]]:
    """For each (latency, concurrency) of `name`: its figures over the node, naive and floor ones.

    A ratio is nan where that baseline was not measured at the same latency and concurrency.
    """
    index = {(lv.configuration, lv.upstream_latency_ms, lv.concurrency): lv for lv in levels}
    rows = []
    for level in (lv for lv in levels if lv.configuration == name):
        row: dict[str, float | int | str] = {
            "configuration": name,
            "latency": level.upstream_latency_ms,
            "concurrency": level.concurrency,
            "sms_per_s": level.sms_per_s,
            "cpu_ms": level.cpu_ms_per_sms,
        }
        for baseline in BASELINES:
            theirs = index.get((baseline, level.upstream_latency_ms, level.concurrency))
            row[f"sms_x_{baseline}"] = _ratio(level.sms_per_s, theirs and theirs.sms_per_s)
            row[f"cpu_x_{baseline}"] = _ratio(
                level.cpu_ms_per_sms, theirs and theirs.cpu_ms_per_sms
            )
        rows.append(row)
    return rows


def _ratio(ours: float, theirs: float | None) -> float:
    return ours / theirs if theirs else math.nan


def services(levels: Sequence[Level]) -> list[str]:
    """The names of our service's configurations among the levels, in order."""
    return [name for name in _names(levels) if name not in BASELINES]


def ratio_table(levels: Sequence[Level]) -> str:
    """Markdown: every service configuration against the node peer, the naive app and the floor."""
    lines = [
        "| configuration | upstream | connections | SMS/s | × node | × naive | × floor "
        "| CPU ms/SMS | × node | × naive | × floor |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name in services(levels):
        for row in ratios(levels, name):
            lines.append(
                f"| {name} | {row['latency']} ms | {row['concurrency']} | {row['sms_per_s']:.0f} "
                f"| {_x(row['sms_x_node'])} | {_x(row['sms_x_naive'], 1)} "
                f"| {_x(row['sms_x_floor'])} | {row['cpu_ms']:.2f} | {_x(row['cpu_x_node'])} "
                f"| {_x(row['cpu_x_naive'], 3)} | {_x(row['cpu_x_floor'], 1)} |"
            )
    return "\n".join(lines)


def _x(value: float | int | str, digits: int = 2) -> str:
    """A ratio for a table; a dash where the baseline was not measured."""
    return "—" if math.isnan(float(value)) else f"{float(value):.{digits}f}"


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
    """Plain sentences: the CPU target (at most 3 ms per SMS), the node peer at every cell, and
    the floor (within 1.5 times its CPU per SMS)."""
    sentences = []
    for name in services(levels):
        ours = [lv for lv in levels if lv.configuration == name]
        over = [lv for lv in ours if lv.cpu_ms_per_sms > TARGET_CPU_MS]
        where = ", ".join(f"{_cell(lv)}: {lv.cpu_ms_per_sms:.2f} ms" for lv in over)
        sentences.append(
            f"**{name}**: CPU per SMS {min(lv.cpu_ms_per_sms for lv in ours):.2f}–"
            f"{max(lv.cpu_ms_per_sms for lv in ours):.2f} ms: the ≤ {TARGET_CPU_MS:g} ms target "
            f"is met at {len(ours) - len(over)} of {len(ours)} levels"
            + (f"; NOT met at {where}." if over else ".")
        )
        rows = ratios(levels, name)
        sentences += against_node(name, rows) + against_floor(name, rows)
    return sentences


def against_node(name: str, rows: Sequence[dict]) -> list[str]:
    """How the service compares with the node peer, naming every cell where it is behind."""
    cells = [row for row in rows if not math.isnan(row["sms_x_node"])]
    if not cells:
        return []
    slower = [row for row in cells if row["sms_x_node"] < 1]
    costlier = [row for row in cells if row["cpu_x_node"] > 1]
    return [
        f"**{name}** against the node peer: {_span(cells, 'sms_x_node')}× its SMS/s, faster at "
        f"{len(cells) - len(slower)} of {len(cells)} levels"
        + _behind(slower, "sms_x_node", "slower")
        + f"; {_span(cells, 'cpu_x_node')}× its CPU per SMS, cheaper at "
        f"{len(cells) - len(costlier)} of {len(cells)} levels"
        + _behind(costlier, "cpu_x_node", "costlier")
        + "."
    ]


def against_floor(name: str, rows: Sequence[dict]) -> list[str]:
    """Whether the service's CPU per SMS is within 1.5 times the floor's at every level."""
    cells = [row for row in rows if not math.isnan(row["cpu_x_floor"])]
    if not cells:
        return []
    within = [row for row in cells if row["cpu_x_floor"] <= TARGET_FLOOR_RATIO]
    met = len(within) == len(cells)
    return [
        f"**{name}** against the floor: {_span(cells, 'cpu_x_floor', 1)}× its CPU per SMS and "
        f"{_span(cells, 'sms_x_floor')}× its SMS/s: the within-{TARGET_FLOOR_RATIO:g}× target "
        f"is {'met' if met else 'NOT met'} ({len(within)} of {len(cells)} levels)."
    ]


def _span(rows: Sequence[dict], key: str, digits: int = 2) -> str:
    values = [row[key] for row in rows]
    return f"{min(values):.{digits}f}–{max(values):.{digits}f}"


def _behind(rows: Sequence[dict], key: str, word: str) -> str:
    if not rows:
        return ""
    cells = ", ".join(
        f"{row['latency']} ms × {row['concurrency']}: {row[key]:.3g}×" for row in rows
    )
    return f" ({word} at {cells})"


def _cell(level: Level) -> str:
    return f"{level.upstream_latency_ms} ms upstream at concurrency {level.concurrency}"


def markdown(run: Run, plotted: bool = True) -> str:
    """The whole results page; `plotted` says whether throughput.png was drawn."""
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
        "## Our service against the node peer, the naive baseline and the floor",
        "",
        ratio_table(run.levels),
        "",
        "× node, × naive and × floor are our figure divided by theirs at the same upstream "
        "latency and concurrency: SMS/s above 1 is faster, CPU below 1 is cheaper; — where that "
        "one was not measured.",
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
        f"- The emulator runs with --quiet (EMULATOR_QUIET=1) and EMULATOR_LATENCY_MS "
        f"{', then '.join(str(latency) for latency in latencies)}.",
        "",
        "## Accounting per level",
        "",
        *(
            f"- {lv.configuration}, {lv.upstream_latency_ms} ms, concurrency {lv.concurrency}: "
            f"{lv.accounting}"
            for lv in run.levels
        ),
        "",
    ]
    if plotted:
        parts += ["![SMS/s and p99 latency against concurrency](throughput.png)", ""]
    return "\n".join(parts)


METHOD = (
    "SMS/s: 2xx answers the load generator received, divided by the measured duration.",
    "Latency: wrk's percentiles (service, node peer and naive), nearest-rank percentiles of "
    "every request (floor); wrk is a closed loop, so latencies include queueing behind busy "
    "threads or a busy event loop.",
    "CPU ms/SMS: user + system time from /proc/<pid>/stat of the target's whole process tree "
    "(the gunicorn master and all its workers; the one `node` process with all its threads), "
    "read before and after the level once, for 0.3 s plus the upstream latency, the emulator "
    "has received nothing and the target has used at most two clock ticks of CPU (so requests "
    "still queued from the warm-up or the last run cannot leak into the next window), divided "
    "by the messages the emulator accepted in that window. That window "
    "includes the requests still in flight when wrk stopped, whose CPU it also holds. The "
    "floor's figure is the floor process's own rusage over its measured run.",
    "CPU is counted in clock ticks (10 ms): at a few SMS per level (1 connection, 200 ms "
    "upstream) each figure is coarse; the medians of the repeats smooth it.",
    "Emulator CPU ms/SMS: the Vonage stand-in's own cost (TLS, JWT check, JSON), for context; "
    "wrk CPU ms/req shows the load generator is not the bottleneck.",
    "2xx ↔ accepted: the emulator's counters were reset after the warm-up; then every upstream "
    "request must be accepted (no retry, no duplicate), wrk's 2xx plus the requests in flight at "
    "its stop must equal the accepted count, and for our service and the node peer the 200s in "
    "its own log (our request log; the peer's line per SMS) must match the emulator's "
    "message_uuids one to one.",
    "Each level is warmed up once (wrk, then a wait for quiet); its repeats follow at once. The "
    "floor is a new process each run and warms up every time.",
    "The node peer forwards `to` untouched and Vonage wants E.164 digits without +, so its "
    "callers send 14155550100 where our service's send +14155550100; everything else is equal.",
    "Rate limits are set to `1000000 per second` (RATE_LIMIT and RECIPIENT_RATE_LIMIT) so none "
    "refuses the load; a per-second window keeps the moving-window lists as short as real "
    "limits keep them (a per-minute one would hold 60 s of hits). LOG_LEVEL is INFO as in "
    "production (one JSON line per request to a file), since that is part of the cost.",
    "A thread-per-request server completes at most threads / upstream latency SMS/s (16 threads "
    "and 200 ms: 80 SMS/s): past that many connections it is bound by threads, not CPU.",
    "At a few SMS/s (1 connection with a slow upstream) each SMS also pays for waking idle "
    "threads and cold caches; the floor's CPU per SMS rises in the same proportion there.",
)


def write(run: Run, folder: Path) -> list[Path]:
    """Write results.md, results.json and throughput.png into `folder`; return their paths.

    Without matplotlib (a development dependency) the plot is skipped with a message.
    """
    from bench.plot import plot, plot_unavailable_reason

    folder.mkdir(parents=True, exist_ok=True)
    markdown_path, json_path, png_path = (
        folder / "results.md",
        folder / "results.json",
        folder / "throughput.png",
    )
    why_not = plot_unavailable_reason()
    markdown_path.write_text(markdown(run, plotted=why_not is None))
    data = {
        "started": run.started.astimezone(UTC).isoformat(timespec="seconds"),
        "command": run.command,
        "machine": machine(),
        "configurations": run.configurations,
        "skipped": run.skipped,
        "levels": [dataclasses.asdict(level) for level in run.levels],
    }
    json_path.write_text(json.dumps(data, indent=1, allow_nan=True) + "\n")
    if why_not:
        print(f"SKIPPED throughput.png: {why_not}", flush=True)
        return [markdown_path, json_path]
    plot(run.levels, png_path)
    return [markdown_path, json_path, png_path]


def _names(levels: Sequence[Level]) -> list[str]:
    return list(dict.fromkeys(level.configuration for level in levels))
