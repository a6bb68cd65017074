"""The benchmark's own logic, without starting anything: the matrix, which configurations run
(and why one is skipped), how the node peer is installed, medians, ratios and the verdict."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bench import measure, node, report, run
from bench.measure import Level
from tools.stack import ROOT, Credentials, Process


def level(name: str, latency: int, concurrency: int, sms: float, cpu: float, **extra) -> Level:
    figures = {
        "configuration": name,
        "upstream_latency_ms": latency,
        "concurrency": concurrency,
        "sms_per_s": sms,
        "p50_ms": 10.0,
        "p95_ms": 20.0,
        "p99_ms": 30.0,
        "max_ms": 40.0,
        "ok": 100,
        "non_2xx": 0,
        "socket_errors": 0,
        "accepted": 100,
        "upstream_requests": 100,
        "cpu_ms_per_sms": cpu,
        "emulator_cpu_ms_per_sms": 0.2,
        "loadgen_cpu_ms_per_request": 0.03,
        "processes": 2,
        "accounting_ok": True,
        "accounting": "accepted 100: exact",
    }
    return Level(**{**figures, **extra})


@pytest.fixture
def no_npm(monkeypatch):
    """Fail the test if anything would run a program (npm, node) through subprocess.run."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected subprocess.run{args}")

    monkeypatch.setattr(node.subprocess, "run", refuse)


# --- the matrix -------------------------------------------------------------------------------


def test_the_default_matrix_is_three_latencies_by_four_levels_with_medians_of_three():
    """A full run: 0, 50 and 200 ms upstream at 1, 8, 32 and 128 connections, 3 runs each."""
    args = run.parse_args([])

    assert (args.latencies, args.levels, args.repeat) == ([0, 50, 200], [1, 8, 32, 128], 3)
    assert args.only is None


def test_quick_is_a_short_smoke_run_of_the_corners():
    """--quick: 0 and 200 ms at 8 and 128 connections, one run of a couple of seconds."""
    args = run.parse_args(["--quick"])

    assert (args.latencies, args.levels, args.repeat) == ([0, 200], [8, 128], 1)
    assert args.warmup + args.duration <= 3


def test_a_full_run_is_estimated_at_about_twenty_five_minutes():
    """docs/benchmarks/README.md promises about 25 minutes for the default matrix and
    configurations."""
    assert "about 25 minutes" in (ROOT / "docs" / "benchmarks" / "README.md").read_text()
    args = run.parse_args([])
    configurations = [c for c in run.CONFIGURATIONS if c.default]

    assert 20 * 60 <= run.estimate_s(args, configurations) <= 30 * 60


# --- which configurations run -----------------------------------------------------------------


def test_the_default_set_leaves_out_the_gthread_comparison():
    """service (SQLite), in memory, with Redis, node, naive and floor run by default; gthread x
    256 only when asked."""
    chosen, skipped = run.choose(None, reason=lambda configuration: None)

    assert [c.name for c in chosen] == [
        "service",
        "service in memory",
        "service + Redis",
        "node",
        "naive",
        "floor",
    ]
    assert skipped == {}


@pytest.mark.parametrize("typed", ["service gthread×256", "Service GthreadX256"])
def test_only_selects_the_gthread_comparison_by_name(typed):
    """--only takes the name as shown, in any case, with x for the multiplication sign."""
    args = run.parse_args(["--only", f"service,{typed}"])
    chosen, _ = run.choose(args.only, reason=lambda configuration: None)

    assert [c.name for c in chosen] == ["service", "service gthread×256"]
    assert chosen[1].env == {"GUNICORN_CMD_ARGS": "--worker-class gthread --threads 256"}


def test_only_refuses_an_unknown_name(capsys):
    """A typo is an error naming the known configurations, not an empty run."""
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "servce"])

    assert "unknown configuration servce; known: service," in capsys.readouterr().err


def test_node_is_skipped_with_the_reason_when_node_is_absent(monkeypatch, capsys, no_npm):
    """No node on PATH: the node configuration is SKIPPED and says why; npm is never run."""
    monkeypatch.setattr(node.shutil, "which", lambda program: None)

    chosen, skipped = run.choose(["service", "node"], reason=run.unavailable_reason)

    assert [c.name for c in chosen] == ["service"]
    assert skipped == {"node": "node is not on PATH (install Node.js 20 or later, with npm)"}
    assert "SKIPPED node: node is not on PATH" in capsys.readouterr().out


def test_node_older_than_20_is_skipped_with_the_reason(monkeypatch, no_npm):
    monkeypatch.setattr(node.shutil, "which", lambda program: f"/usr/bin/{program}")
    monkeypatch.setattr(node, "node_major", lambda binary: 18)

    assert node.unavailable_reason() == "node 18 is too old: the peer's SDK needs node >= 20"


@pytest.mark.parametrize(("installed", "reason"), [(False, "npm is not on PATH"), (True, None)])
def test_without_npm_the_peer_runs_only_if_already_installed(monkeypatch, installed, reason):
    """npm is needed only to install: an installed node_modules is enough to run."""
    monkeypatch.setattr(node.shutil, "which", lambda p: None if p == "npm" else "/usr/bin/node")
    monkeypatch.setattr(node, "node_major", lambda binary: 20)
    monkeypatch.setattr(node, "needs_install", lambda: not installed)

    found = node.unavailable_reason()

    assert (found is None) if reason is None else found.startswith(reason)


def test_a_failed_npm_ci_skips_the_peer_with_its_last_error_line(monkeypatch, tmp_path):
    """npm ci's exit code and last stderr line become the reason the peer is skipped."""
    (tmp_path / "package-lock.json").write_text("{}")
    failed = subprocess.CompletedProcess(
        ["npm", "ci"], 1, stdout="", stderr="npm error code E404\nnpm error 404 Not Found\n"
    )
    calls = []
    monkeypatch.setattr(node.subprocess, "run", lambda command, **kw: calls.append(kw) or failed)

    reason = node.install(tmp_path)

    assert reason == "npm ci failed (exit 1): npm error 404 Not Found"
    assert calls[0]["cwd"] == tmp_path


def test_npm_ci_runs_only_when_node_modules_is_missing_or_stale(tmp_path):
    """node_modules/.package-lock.json (npm ci's own record) must be newer than the lock."""
    lock = tmp_path / "package-lock.json"
    lock.write_text("{}")
    assert node.needs_install(tmp_path)

    record = tmp_path / "node_modules" / ".package-lock.json"
    record.parent.mkdir()
    record.write_text("{}")
    os.utime(lock, (1_000, 1_000))
    assert not node.needs_install(tmp_path)

    os.utime(record, (500, 500))
    assert node.needs_install(tmp_path)


def test_an_installed_peer_is_not_installed_again(tmp_path, no_npm):
    (tmp_path / "package-lock.json").write_text("{}")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / ".package-lock.json").write_text("{}")

    assert node.install(tmp_path) is None


# --- how configurations are started -----------------------------------------------------------


class FakeProcess:
    def stop(self) -> int:
        return 0


@pytest.fixture
def upstream(tmp_path):
    credentials = Credentials(tmp_path, "app-id", tmp_path / "private.pem", "api-key", "sig")
    emulator = Process(None, tmp_path / "emulator.log", "https://127.0.0.1:8443", "emulator")
    return run.Upstream(credentials, emulator, client=None, latency_ms=0)


@pytest.mark.parametrize(
    ("name", "gunicorn_args"),
    [("service", ""), ("service gthread×256", "--worker-class gthread --threads 256")],
)
def test_the_service_runs_as_in_production(monkeypatch, upstream, name, gunicorn_args):
    """INFO logs, and gunicorn.conf.py as shipped unless the configuration overrides it."""
    started = {}
    monkeypatch.setattr(
        run, "start_service", lambda folder, env, app: started.update(env, app=app) or FakeProcess()
    )
    configuration = next(c for c in run.CONFIGURATIONS if c.name == name)

    with run.started(configuration, upstream, redis=None):
        pass

    assert started["LOG_LEVEL"] == "INFO"
    assert started["GUNICORN_CMD_ARGS"] == gunicorn_args
    assert started["app"] == "wsgi:app"


@pytest.mark.parametrize(
    ("name", "state_path"), [("service", None), ("service in memory", ":memory:")]
)
def test_the_service_keeps_its_state_where_the_configuration_says(
    monkeypatch, upstream, name, state_path
):
    """As shipped: no STATE_PATH, so start_service gives each start a state file of its own;
    in memory only for the configuration that says so."""
    started = {}
    monkeypatch.setattr(
        run, "start_service", lambda folder, env, app: started.update(env) or FakeProcess()
    )
    configuration = next(c for c in run.CONFIGURATIONS if c.name == name)

    with run.started(configuration, upstream, redis=None):
        pass

    assert started.get("STATE_PATH") == state_path
    assert "REDIS_URL" not in started


def test_the_service_is_described_by_its_config_file_not_a_worker_model():
    """The worker model is gunicorn.conf.py's to change: the description must not pin one."""
    service = next(c for c in run.CONFIGURATIONS if c.name == report.SERVICE)

    assert "gunicorn.conf.py defaults" in service.what
    assert "16" not in service.what
    assert "worker x" not in service.what


def test_the_peer_environment_points_at_the_emulator_and_trusts_its_ca(monkeypatch, upstream):
    """host:port for the SDK's apiHost, the emulator's CA, and nothing NODE_ from the shell."""
    monkeypatch.setenv("NODE_OPTIONS", "--inspect")
    monkeypatch.setenv("VONAGE_API_HOST", "api.nexmo.com")

    env = node.peer_environment(upstream.credentials, upstream.emulator, 4321)

    assert env["VONAGE_API_HOST"] == "127.0.0.1:8443"
    assert env["NODE_EXTRA_CA_CERTS"] == str(upstream.credentials.ca)
    assert env["PORT"] == "4321"
    assert "NODE_OPTIONS" not in env


# --- the peer's package -----------------------------------------------------------------------


def test_the_peer_pins_exact_versions_and_commits_its_lock():
    """Exact versions in package.json, the same in package-lock.json; node_modules ignored."""
    package = json.loads((node.PEER / "package.json").read_text())
    lock = json.loads((node.PEER / "package-lock.json").read_text())
    ignored = (ROOT / ".gitignore").read_text().splitlines()

    assert set(package["dependencies"]) == {"express", "@vonage/server-sdk"}
    for name, pinned in package["dependencies"].items():
        assert pinned[0].isdigit(), f"{name} {pinned} is a range"
        assert lock["packages"][f"node_modules/{name}"]["version"] == pinned
    assert package["dependencies"]["express"].startswith("5.")
    assert package["dependencies"]["@vonage/server-sdk"].startswith("3.")
    assert "node_modules/" in ignored


# --- medians, ratios and the verdict ----------------------------------------------------------


def test_the_median_of_repeats_keeps_counts_whole_and_names_the_level():
    runs = [
        level("node", 50, 8, sms=100.0, cpu=3.0, ok=10),
        level("node", 50, 8, sms=300.0, cpu=1.0, ok=11),
        level("node", 50, 8, sms=200.0, cpu=2.0, ok=13, accounting_ok=False, accounting="bad"),
    ]

    middle = run.median(runs)

    assert (middle.upstream_latency_ms, middle.concurrency) == (50, 8)
    assert isinstance(middle.upstream_latency_ms, int) and isinstance(middle.ok, int)
    assert (middle.sms_per_s, middle.cpu_ms_per_sms, middle.ok) == (200.0, 2.0, 11)
    assert not middle.accounting_ok
    assert middle.accounting == "2/3 runs exact; bad"


LEVELS = [
    level("service", 0, 8, sms=600.0, cpu=1.5),
    level("service", 200, 8, sms=35.0, cpu=2.4),
    level("node", 0, 8, sms=300.0, cpu=3.0),
    level("node", 200, 8, sms=40.0, cpu=2.0),
    level("naive", 0, 8, sms=30.0, cpu=30.0),
    level("floor", 0, 8, sms=1500.0, cpu=1.2),
    level("floor", 200, 8, sms=40.0, cpu=1.2),
]


def test_ratios_compare_the_service_with_the_node_peer_at_every_cell():
    rows = {row["latency"]: row for row in report.ratios(LEVELS, "service")}

    assert (rows[0]["sms_x_node"], rows[0]["cpu_x_node"]) == (2.0, 0.5)
    assert (rows[200]["sms_x_node"], rows[200]["cpu_x_node"]) == (0.875, 1.2)
    assert rows[0]["cpu_x_floor"] == 1.25
    assert math.isnan(rows[200]["sms_x_naive"])  # naive not measured at 200 ms


def test_the_ratio_table_has_a_row_per_service_cell_and_dashes_for_missing_baselines():
    table = report.ratio_table(LEVELS).splitlines()

    assert "× node" in table[0]
    assert (
        table[2] == "| service | 0 ms | 8 | 600 | 2.00 | 20.0 | 0.40 | 1.50 | 0.50 | 0.050 | 1.2 |"
    )
    assert table[3] == "| service | 200 ms | 8 | 35 | 0.88 | — | 0.88 | 2.40 | 1.20 | — | 2.0 |"
    assert len(table) == 4  # node, naive and floor are baselines, not rows


def test_the_verdict_names_the_cells_where_the_node_peer_is_ahead():
    sentences = report.verdict(LEVELS)

    assert sentences[1] == (
        "**service** against the node peer: 0.88–2.00× its SMS/s, faster at 1 of 2 levels "
        "(slower at 200 ms × 8: 0.875×); 0.50–1.20× its CPU per SMS, cheaper at 1 of 2 levels "
        "(costlier at 200 ms × 8: 1.2×)."
    )
    assert sentences[2] == (
        "**service** against the floor: 1.2–2.0× its CPU per SMS and 0.40–0.88× its SMS/s: the "
        "within-1.5× target is NOT met (1 of 2 levels)."
    )


def test_without_the_node_peer_the_verdict_says_nothing_about_it():
    sentences = report.verdict([lv for lv in LEVELS if lv.configuration != "node"])

    assert not any("node peer" in sentence for sentence in sentences)


def test_without_matplotlib_the_report_is_written_and_the_plot_skipped(
    monkeypatch, tmp_path, capsys
):
    """results.md and results.json are written; the PNG is skipped with a message."""
    monkeypatch.setattr("bench.plot.plot_unavailable_reason", lambda: "matplotlib is not there")
    monkeypatch.setattr(report, "machine", lambda: {"CPU": "test", "wrk": "absent"})  # runs wrk
    results = report.Run(
        levels=LEVELS,
        command="python -m bench.run",
        warmup_s=1,
        duration_s=2,
        repeats=1,
        configurations={"service": "ours"},
        skipped={"service + Redis": "redis-server is not on PATH"},
        started=datetime(2026, 1, 1, tzinfo=UTC),
    )

    paths = report.write(results, tmp_path)

    assert [p.name for p in paths] == ["results.md", "results.json"]
    assert "throughput.png" not in (tmp_path / "results.md").read_text()
    assert "SKIPPED throughput.png: matplotlib is not there" in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["skipped"] == results.skipped


def test_the_plot_is_drawn_for_levels_at_several_latencies(tmp_path):
    pytest.importorskip("matplotlib")
    from bench.plot import plot

    plot([replace(lv, p99_ms=lv.p99_ms + 1) for lv in LEVELS], tmp_path / "throughput.png")

    assert (tmp_path / "throughput.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow  # imports them in a child Python
def test_the_benchmark_modules_do_not_import_matplotlib_until_they_plot():
    """Importing the benchmark must not need matplotlib (a development dependency)."""
    code = "import sys, bench.run; assert 'matplotlib' not in sys.modules"

    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- waiting for the target to finish -----------------------------------------------------------


class QuietEmulator:
    def stats(self) -> dict:
        return {"requests": 5, "accepted": 5}


def test_a_quiet_emulator_is_not_enough_while_the_target_still_works(monkeypatch):
    """Requests queued in the target (CPU still burning) must drain before counters are read."""
    readings = []

    def cpu_seconds(pids):
        readings.append(pids)
        return 0.1 * min(len(readings), 4)  # busy for the first four readings, then idle

    monkeypatch.setattr(measure, "_cpu_seconds", cpu_seconds)

    stats = measure.wait_until_idle(QuietEmulator(), [1234], settle_s=0.2)

    assert stats == {"requests": 5, "accepted": 5}
    assert len(readings) >= 6  # at least 0.2 s of idle readings after the busy ones


def test_send_cpu_stub_answers_in_process():
    """--stub sends through the gateway's own adapter: no socket (this suite's network is
    closed, so a send that left the process would fail)."""
    from bench import send_cpu

    (per_send_ms,) = send_cpu.measure(sends=3, rounds=1, warmup=1, stub=True)
    assert per_send_ms > 0


def test_memory_reports_each_share_per_send(capsys):
    from bench import memory

    assert memory.main(["--sends", "30"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if not line.startswith('{"time"')]  # the service's log
    assert [line.split(":")[0].strip() for line in lines] == [
        "plain send",
        "with Idempotency-Key",
        "message record",
        "rate-limit windows",
    ]
    assert f"({2 * (memory.WARMUP + 30)})" in lines[2]  # every send kept a record of its own
