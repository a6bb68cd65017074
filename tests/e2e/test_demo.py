"""`make demo` serves a working demo: the curl it prints gets a 200 and a message in the inbox,
and Ctrl-C stops both processes (twice in a row, as a second `make demo` would)."""

import json
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tools.stack import ROOT, free_port

pytestmark = pytest.mark.slow


def run_demo_once():
    port, emulator_port = free_port(), free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "tools.demo"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PORT": str(port), "EMULATOR_PORT": str(emulator_port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = _read_until(demo, "Ctrl-C stops both")
        curl = re.search(r"curl -s (http\S+/send-sms) \\\n(.*?)\n\n", banner, re.S)
        assert curl, banner
        args = shlex.split(curl.group(2).replace("\\\n", " "))
        pairs = list(zip(args[::2], args[1::2], strict=True))
        headers = dict(value.split(": ", 1) for flag, value in pairs if flag == "-H")
        body = json.loads(next(value for flag, value in pairs if flag == "-d"))

        response = requests.post(curl.group(1), json=body, headers=headers, timeout=10)

        assert response.status_code == 200, response.text
        ca = ROOT / ".demo" / "certs" / "ca.pem"
        inbox = requests.get(
            f"https://127.0.0.1:{emulator_port}/_emulator/messages", verify=str(ca), timeout=5
        ).json()
        assert [m["message_uuid"] for m in inbox] == [response.json()["message_uuid"]]
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=20)
    assert demo.returncode == 0, output
    assert "stopped the service and the emulator" in output
    for listening in (port, emulator_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{listening}/health", timeout=1)


def _read_until(process, marker: str, timeout_s: float = 30) -> str:
    text, deadline = "", time.monotonic() + timeout_s
    while marker not in text and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        text += line
    assert marker in text, text
    return text


def test_demo_runs_and_a_second_run_works_too():
    run_demo_once()
    run_demo_once()


@pytest.mark.parametrize("variable", ["PORT", "EMULATOR_PORT"])
def test_a_busy_port_is_one_line_naming_the_port_and_its_variable(variable):
    """`make demo` with a port taken says so in one line, before starting anything."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"PORT": str(free_port()), "EMULATOR_PORT": str(free_port()), variable: str(port)}
        result = subprocess.run(
            [sys.executable, "-m", "tools.demo"],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", **ports},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"cannot start: port {port} is already in use; set {variable} to another port,"
        f" e.g. make demo {variable}={port + 1}"
    ]
