"""A port already in use stops the service at once with one line naming the port and PORT,
instead of gunicorn's five "Connection in use" retries and a traceback-free silence."""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from tools.stack import ROOT

pytestmark = pytest.mark.slow  # starts gunicorn


def test_a_busy_service_port_is_one_line_naming_port(test_env, tmp_path):
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "sms-metrics-*")))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
             "-b", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT, env={**keep, **test_env, "ENV_FILE": "", "TMPDIR": str(tmp_path)},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert time.monotonic() - started < 4  # not gunicorn's five retries, a second apart
    errors = [line for line in output.splitlines() if "already in use" in line]
    assert len(errors) == 1
    assert f"port {port} is already in use" in errors[0] and "PORT" in errors[0]
    assert "Connection in use" not in output and "Traceback" not in output
    assert not list(tmp_path.glob("sms-metrics-*"))  # the run's metrics folder is gone
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "sms-metrics-*"))) <= before
