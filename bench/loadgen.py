"""Load from a separate process: wrk (C, one thread) posting to /send-sms at fixed concurrency.

wrk's own CPU is measured too (rusage of the reaped child), to show it is not the bottleneck.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("send_sms.lua")
_MARKER = "BENCH_JSON "
_SOCKET_ERRORS = ("connect_errors", "read_errors", "write_errors", "timeouts")


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run saw; latencies in milliseconds."""

    duration_s: float
    responses: int  # completed responses, any status
    non_2xx: int  # wrk counts status > 399; the service answers no 3xx
    socket_errors: int  # connect, read and write errors, and timeouts (30 s)
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    cpu_s: float  # wrk's own user + system CPU

    @property
    def ok(self) -> int:
        return self.responses - self.non_2xx


def wrk_available() -> bool:
    """Tell whether the wrk binary is installed (Debian package `wrk`)."""
    return shutil.which("wrk") is not None


DEFAULT_TO = "+14155550100"  # as our service's callers write it


def run_wrk(
    url: str, api_key: str, concurrency: int, duration_s: float, to: str = DEFAULT_TO
) -> WrkResult:
    """POST {url}/send-sms from `concurrency` kept-alive connections for `duration_s`."""
    command = [
        "wrk",
        "--threads", "1",  # one thread drives thousands of requests/s; leave the cores to the rest
        "--connections", str(concurrency),
        "--duration", f"{max(1, round(duration_s))}s",
        "--timeout", "30s",  # the naive baseline queues for seconds; count it, do not cut it
        "--script", str(LUA_SCRIPT),
        url + "/send-sms",
    ]  # fmt: skip
    before = _children_cpu_s()
    finished = subprocess.run(
        command,
        env={**os.environ, "BENCH_API_KEY": api_key, "BENCH_TO": to},
        capture_output=True,
        text=True,
        check=True,
        timeout=duration_s + 60,
    )
    cpu_s = _children_cpu_s() - before
    line = next((x for x in finished.stdout.splitlines() if x.startswith(_MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{finished.stdout}\n{finished.stderr}")
    raw = json.loads(line.removeprefix(_MARKER))
    return WrkResult(
        duration_s=raw["duration_us"] / 1e6,
        responses=raw["responses"],
        non_2xx=raw["non_2xx"],
        socket_errors=sum(raw[key] for key in _SOCKET_ERRORS),
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        cpu_s=cpu_s,
    )


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
