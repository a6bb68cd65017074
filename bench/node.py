"""The Node.js/Express peer (bench/node_peer/): check Node, install with `npm ci`, start it.

The peer is what a user would otherwise write: Express 5 and @vonage/server-sdk 3.x, pinned
in package.json and package-lock.json. When node is missing, too old, or its dependencies
cannot be installed, the benchmark skips the peer and says why; it never fails silently.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from tools.stack import DEMO_NUMBER, READY_TIMEOUT_S, Credentials, Process, free_port

PEER = Path(__file__).with_name("node_peer")
MIN_NODE_MAJOR = 20  # @vonage/server-sdk 3.27 declares node >= 20
NPM_CI_TIMEOUT_S = 600
# The digits the peer passes straight to Vonage: the Messages API wants E.164 without a
# leading +, and a guide's peer forwards `to` untouched (our service accepts +; this does not).
PEER_TO = "14155550100"
# What the calling shell must not change about the peer: its options, CA and Vonage account.
_INHERITED_PREFIXES = ("NODE_", "VONAGE_", "NPM_", "npm_")


def unavailable_reason() -> str | None:
    """Why the peer cannot run here (node absent or too old, nothing to install with), or None."""
    node = shutil.which("node")
    if node is None:
        return "node is not on PATH (install Node.js 20 or later, with npm)"
    major = node_major(node)
    if major is None or major < MIN_NODE_MAJOR:
        return f"node {major or '?'} is too old: the peer's SDK needs node >= {MIN_NODE_MAJOR}"
    if needs_install() and shutil.which("npm") is None:
        return "npm is not on PATH and bench/node_peer/node_modules is not installed"
    return None


def node_major(node: str) -> int | None:
    """The major version of `node` (v20.11.1 -> 20), or None when it does not say."""
    try:
        printed = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        return int(printed.strip().lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def needs_install(folder: Path = PEER) -> bool:
    """True when node_modules is missing or older than package-lock.json."""
    installed = folder / "node_modules" / ".package-lock.json"  # written by npm ci
    lock = folder / "package-lock.json"
    return not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime


def install(folder: Path = PEER) -> str | None:
    """Run `npm ci` when needed; return why it failed, or None when the peer is installed."""
    if not needs_install(folder):
        return None
    print(f"installing the node peer: npm ci in {folder}", flush=True)
    began = time.monotonic()
    command = ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
    try:
        finished = subprocess.run(
            command, cwd=folder, capture_output=True, text=True, timeout=NPM_CI_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"npm ci failed: {type(exc).__name__}"
    if finished.returncode != 0:
        last = (finished.stderr.strip().splitlines() or ["no message"])[-1]
        return f"npm ci failed (exit {finished.returncode}): {last}"
    print(f"npm ci took {time.monotonic() - began:.0f} s", flush=True)
    return None


def ready_reason() -> str | None:
    """Check node and install the peer when needed; the reason it cannot run, or None."""
    return unavailable_reason() or install()


def peer_environment(credentials: Credentials, emulator: Process, port: int) -> dict[str, str]:
    """The peer's whole environment: the emulator as Vonage, trusted through its CA."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    return {
        **inherited,
        "NODE_ENV": "production",
        "PORT": str(port),
        "VONAGE_APPLICATION_ID": credentials.application_id,
        "VONAGE_APPLICATION_PRIVATE_KEY_PATH": str(credentials.private_key_path),
        "VONAGE_NUMBER": DEMO_NUMBER,
        "VONAGE_API_HOST": emulator.url.removeprefix("https://"),
        "NODE_EXTRA_CA_CERTS": str(credentials.ca),
    }


def start_peer(credentials: Credentials, emulator: Process, port: int = 0) -> Process:
    """Start `node server.js` (the process whose CPU is measured) and wait until it listens."""
    port = port or free_port()
    env = peer_environment(credentials, emulator, port)
    return launch(credentials.folder / f"node-peer-{port}.log", env, port)


def launch(log_path: Path, env: Mapping[str, str], port: int) -> Process:
    """Run the peer with exactly `env`, stdout and stderr to `log_path`."""
    node = shutil.which("node") or "node"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(
            [node, "server.js"], cwd=PEER, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
    process = Process(popen, log_path, f"http://127.0.0.1:{port}", "node peer")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and popen.poll() is None:
        if _listens(port):
            return process
        time.sleep(0.05)
    process.stop()
    raise RuntimeError(f"the node peer did not start:\n{process.log()}")


def _listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
