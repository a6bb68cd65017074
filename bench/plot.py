"""The throughput plot: SMS/s and p99 latency against concurrency, one column per latency.

matplotlib (requirements-bench.txt, which `make bench` installs) is imported only when plotting,
so that the rest of the benchmark runs without it and the plot is skipped with the reason.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from bench.measure import Level


def plot_unavailable_reason() -> str | None:
    """Why the plot cannot be drawn here, or None."""
    if importlib.util.find_spec("matplotlib") is None:
        return "matplotlib is not installed (requirements-bench.txt; `make bench` installs it)"
    return None


def plot(levels: Sequence[Level], path: Path) -> None:
    """Top row SMS/s, bottom row p99, against concurrency: a column per upstream latency."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    latencies = sorted({lv.upstream_latency_ms for lv in levels})
    figure, axes = pyplot.subplots(
        2, len(latencies), figsize=(4.6 * len(latencies), 8), squeeze=False
    )
    palette = pyplot.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = dict(zip(_names(levels), palette, strict=False))
    for column, latency in enumerate(latencies):
        top, bottom = axes[0][column], axes[1][column]
        for name in _names(levels):
            series = [
                lv for lv in levels if (lv.configuration, lv.upstream_latency_ms) == (name, latency)
            ]
            if not series:
                continue
            x = [lv.concurrency for lv in series]
            style = {"color": colors[name], "marker": "o", "label": name}
            top.plot(x, [lv.sms_per_s for lv in series], **style)
            bottom.plot(x, [lv.p99_ms for lv in series], **style)
        top.set_title(f"upstream {latency} ms: SMS/s (higher is better)")
        bottom.set_title(f"upstream {latency} ms: p99 latency, ms (log)")
        bottom.set_yscale("log")
        for axis in (top, bottom):
            axis.set_xscale("log", base=2)
            axis.set_xticks(sorted({lv.concurrency for lv in levels}))
            axis.get_xaxis().set_major_formatter(ticker.ScalarFormatter())
            axis.set_xlabel("concurrent connections")
            axis.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize="small")
    figure.suptitle("One instance on one machine (load, emulator and target share its cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _names(levels: Sequence[Level]) -> list[str]:
    return list(dict.fromkeys(level.configuration for level in levels))
