"""A closed-loop Python load generator: N threads, each sending its next request when one ends.

Used where each request's details matter (the floor's own CPU, the soak's expected statuses).
On the deadline no thread starts a new request, but each finishes the one it has in flight,
so every request sent has a known answer and counters on the other side can be compared.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Sample(Generic[T]):
    """One request: when it started (seconds from the run's start), how long, what came back."""

    start_s: float
    latency_s: float
    outcome: T


@dataclass(frozen=True)
class LoopResult(Generic[T]):
    """Every request of one run, and the wall time until the last one ended."""

    samples: list[Sample[T]]
    elapsed_s: float


def run_closed_loop(
    senders: Sequence[Callable[[], T]],
    duration_s: float,
    on_tick: Callable[[float], None] | None = None,
    tick_s: float = 1.0,
) -> LoopResult[T]:
    """Run one thread per sender until `duration_s` has passed; call on_tick(elapsed) meanwhile."""
    start = time.monotonic()
    deadline = start + duration_s
    per_thread: list[list[Sample[T]]] = [[] for _ in senders]

    def loop(send: Callable[[], T], samples: list[Sample[T]]) -> None:
        while (began := time.monotonic()) < deadline:
            outcome = send()
            samples.append(Sample(began - start, time.monotonic() - began, outcome))

    threads = [
        threading.Thread(target=loop, args=(send, samples), daemon=True)
        for send, samples in zip(senders, per_thread, strict=True)
    ]
    for thread in threads:
        thread.start()
    while alive := [thread for thread in threads if thread.is_alive()]:
        alive[0].join(tick_s)
        if on_tick:
            on_tick(time.monotonic() - start)
    elapsed = time.monotonic() - start
    return LoopResult([s for samples in per_thread for s in samples], elapsed)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-th percentile (0 < q <= 100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
