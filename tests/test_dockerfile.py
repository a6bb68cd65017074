"""The image (no Docker engine here to build it; hadolint lints it in `make test`): non-root,
dependencies before code, a health check, gunicorn as the command, no secret let in."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINES = [
    line.strip()
    for line in (ROOT / "Dockerfile").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
IGNORED = set((ROOT / ".dockerignore").read_text().split())


def index_of(prefix: str) -> int:
    return next(n for n, line in enumerate(LINES) if line.startswith(prefix))


def test_base_image_is_the_python_the_tests_run_on_and_the_command_is_gunicorn():
    """One PYTHON_VERSION build argument, by default the Python running these tests."""
    assert LINES[0] == f"ARG PYTHON_VERSION={sys.version_info.major}.{sys.version_info.minor}"
    assert LINES[1] == "FROM python:${PYTHON_VERSION}-slim"
    assert LINES[-1] == 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]'


def test_the_build_argument_is_documented():
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "--build-arg PYTHON_VERSION=" in operations


def test_stop_grace_period_is_longer_than_gunicorns_graceful_timeout(base_settings):
    """gunicorn lets sends finish for graceful_timeout (2 x VONAGE_TIMEOUT + 10 s) after
    SIGTERM; the documented grace period before the kill is longer."""
    graceful = base_settings.request_deadline_s  # with the defaults
    assert "STOPSIGNAL SIGTERM" in LINES
    comment = (ROOT / "Dockerfile").read_text()
    documented = {int(n) for n in re.findall(r"stop_grace_period: (\d+)s", comment)}
    assert documented and min(documented) > graceful


def test_dependencies_are_installed_before_the_code_is_copied():
    assert (
        index_of("COPY requirements.txt")
        < index_of("RUN pip install")
        < index_of("COPY --chown=root:root app/")
    )


def test_runs_as_a_non_root_user():
    users = [line for line in LINES if line.startswith("USER ")]
    assert users and users[-1] not in ("USER root", "USER 0")
    assert index_of("USER ") < index_of('CMD ["gunicorn"')


def test_health_check_asks_health():
    start = index_of("HEALTHCHECK")
    health = " ".join(LINES[start : start + 2])  # the instruction and its continuation line
    assert "CMD" in health and "/health" in health


def test_no_secret_goes_in():
    assert {".env", "*.pem", "*.key", ".git", ".venv", ".demo"} <= IGNORED
    assert not any(line.startswith(("ENV VONAGE", "ENV API_KEYS")) for line in LINES)
    assert [line for line in LINES if line.startswith("ARG")] == [LINES[0]]
    assert "COPY . ." not in LINES
