"""The README's error examples, run line by line as written, against the service and the
emulator wired together as `make demo` wires them: each answers what its comment says."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.stack import wired_stack

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STATUS = "HTTP_STATUS="
EXPECTED = re.compile(r"\b([1-5]\d\d)\b(?: ([a-z]+(?:-[a-z]+)*))?")


def readme_examples() -> tuple[str, list[tuple[str, str]]]:
    """The `send()` prelude and each (command, comment) of the README's error examples."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("send() {", 1)[1].split("```", 1)[0]
    prelude, body = ("send() {" + block).split("\n\n", 1)
    commands, pending = [], ""
    for line in body.strip().splitlines():
        code, _, comment = line.partition("  # ")
        pending += code + "\n"
        if comment:
            commands.append((pending.replace("\\\n", ""), comment))
            pending = ""
    return prelude, commands


def expected(comment: str, slugs: set[str]) -> tuple[str, str | None]:
    """The last status the comment names outside brackets, and its slug when it names one."""
    status, word = EXPECTED.findall(re.sub(r"\([^)]*\)", "", comment))[-1]
    return status, word if word in slugs else None


@pytest.fixture(scope="module")
def demo_like(credentials):
    with wired_stack(
        credentials, emulator_env={"EMULATOR_HANG_SECONDS": "4"}, VONAGE_TIMEOUT="2"
    ) as stack:
        yield stack


def test_every_example_answers_what_its_comment_says(demo_like, credentials):
    emulator, service = demo_like
    readme = (ROOT / "README.md").read_text()
    slug_cells = re.findall(r"^\| [\d /]+ \| (.+?) \|", readme, re.MULTILINE)
    slugs = {slug for cell in slug_cells for slug in re.findall(r"`([a-z-]+)`", cell)}
    prelude, commands = readme_examples()

    def adapt(shell: str) -> str:
        """Point the lines at this stack, and have curl print each status on a line."""
        return (
            shell.replace("localhost:8000", service.url.removeprefix("http://"))
            .replace("https://localhost:8443", emulator.url)
            .replace(".demo/ca.pem", str(credentials.ca))
            .replace("curl -s ", f"curl -s -w '\\n{STATUS}%{{http_code}}\\n' ")
        )

    assert len(commands) >= 20
    seen = set()
    for command, comment in commands:
        result = subprocess.run(
            [shutil.which("bash") or "bash", "-c", f"{adapt(prelude)}\n{adapt(command)}"],
            env={"SMS_API_KEY": credentials.api_key, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        answers = [line for line in result.stdout.splitlines() if not line.startswith(STATUS)]
        statuses = re.findall(rf"^{STATUS}(\d+)$", result.stdout, re.MULTILINE)
        status, slug = expected(comment, slugs)
        assert statuses and statuses[-1] == status, (command, result.stdout[-600:])
        if slug:
            assert f"/problems/{slug}" in "\n".join(answers), (command, answers)
        seen.add(slug)
    # Every row of the error table the README says the demo produces has an example.
    assert slugs - seen == {"upstream-rejected", "storage-unavailable", "internal-error"}
