"""The throughput plot: SMS/s and p99 latency against concurrency (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.measure import Level


def plot(levels: Sequence[Level], path: Path) -> None:
    """SMS/s and p99 against concurrency: one line per configuration and upstream latency."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(12, 4.8))
    palette = pyplot.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = dict(zip(_names(levels), palette, strict=False))
    for name in _names(levels):
        for latency in sorted({lv.upstream_latency_ms for lv in levels}):
            series = [
                lv for lv in levels if (lv.configuration, lv.upstream_latency_ms) == (name, latency)
            ]
            if not series:
                continue
            style = {
                "color": colors[name],
                "marker": "o",
                "linestyle": "-" if not latency else "--",
            }
            label = f"{name}, upstream {latency} ms"
            x = [lv.concurrency for lv in series]
            left.plot(x, [lv.sms_per_s for lv in series], label=label, **style)
            right.plot(x, [lv.p99_ms for lv in series], label=label, **style)
    for axis, title in ((left, "SMS/s (higher is better)"), (right, "p99 latency, ms (log)")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(sorted({lv.concurrency for lv in levels}))
        axis.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.set_xlabel("concurrent connections")
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
    right.set_yscale("log")
    left.legend(fontsize="small")
    figure.suptitle("One instance on one 2-core machine (load, emulator and service share it)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def _names(levels: Sequence[Level]) -> list[str]:
    return list(dict.fromkeys(level.configuration for level in levels))
