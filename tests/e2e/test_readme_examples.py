"""The documents' examples, run as written against the service and the emulator wired together
as `make demo` wires them: the README's first send, and docs/api.md's error examples line by
line, each answering what its comment says."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.stack import wired_stack

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api.md"
STATUS = "HTTP_STATUS="
EXPECTED = re.compile(r"\b([1-5]\d\d)\b(?: ([a-z]+(?:-[a-z]+)*))?")


def error_examples() -> tuple[str, list[tuple[str, str]]]:
    """The `send()` prelude and each (command, comment) of docs/api.md's error examples."""
    api = API.read_text()
    block = api.split("send() {", 1)[1].split("```", 1)[0]
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


def first_send() -> tuple[list[str], dict]:
    """The README's First send: its two blocks of commands, and the answer it shows."""
    section = (ROOT / "README.md").read_text().split("\n## First send\n", 1)[1].split("\n## ")[0]
    blocks = re.findall(r"^```(\w+)\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    commands = [body for language, body in blocks if language == "sh"]
    answer = next(json.loads(body) for language, body in blocks if language == "json")
    return commands, answer


@pytest.fixture(scope="module")
def demo_like(credentials):
    with wired_stack(
        credentials, emulator_env={"EMULATOR_HANG_SECONDS": "4"}, VONAGE_TIMEOUT="2"
    ) as stack:
        yield stack


@pytest.fixture
def adapt(demo_like, credentials):
    emulator, service = demo_like

    def adapt(shell: str) -> str:
        """Point the lines at this stack, and have curl print each status on a line."""
        return (
            shell.replace("localhost:8000", service.url.removeprefix("http://"))
            .replace("https://localhost:8443", emulator.url)
            .replace(".demo/", f"{credentials.folder}/")
            .replace("curl -s ", f"curl -s -w '\\n{STATUS}%{{http_code}}\\n' ")
        )

    return adapt


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shutil.which("bash") or "bash", "-c", script],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def answered(stdout: str) -> list[tuple[str, object]]:
    """Each (status, JSON body) that the adapted curl commands printed, in order."""
    parts = re.split(rf"^{STATUS}(\d+)$", stdout, flags=re.MULTILINE)
    return [
        (status, json.loads(body)) for body, status in zip(parts[:-1:2], parts[1::2], strict=True)
    ]


def test_the_readmes_first_send_answers_as_shown(adapt, credentials):
    """The send (with the API key read from the demo's folder) is a 200 with the fields the
    README shows; the inbox holds the message, and its record answers with the message_uuid
    put in place of MESSAGE_UUID."""
    (send, follow_up), shown = first_send()

    [(status, answer)] = answered(bash(adapt(send), {}).stdout)
    assert status == "200", answer
    assert {**answer, "message_uuid": "…"} == {**shown, "message_uuid": "…"}

    script = adapt(follow_up).replace("MESSAGE_UUID", answer["message_uuid"])
    exported = {"SMS_API_KEY": credentials.api_key}  # as the first block left it
    [(inbox_status, inbox), (record_status, record)] = answered(bash(script, exported).stdout)
    assert (inbox_status, record_status) == ("200", "200")
    assert answer["message_uuid"] in {message["message_uuid"] for message in inbox}
    assert record["message_uuid"] == answer["message_uuid"]


def test_every_error_example_answers_what_its_comment_says(demo_like, adapt, credentials):
    api = API.read_text()
    errors = api[api.index("\n## Errors\n") :]
    slug_cells = re.findall(r"^\| [\d /]+ \| (.+?) \|", errors, re.MULTILINE)
    slugs = {slug for cell in slug_cells for slug in re.findall(r"`([a-z-]+)`", cell)}
    prelude, commands = error_examples()

    assert len(commands) >= 20
    seen = set()
    for command, comment in commands:
        result = bash(f"{adapt(prelude)}\n{adapt(command)}", {"SMS_API_KEY": credentials.api_key})
        answers = [line for line in result.stdout.splitlines() if not line.startswith(STATUS)]
        statuses = re.findall(rf"^{STATUS}(\d+)$", result.stdout, re.MULTILINE)
        status, slug = expected(comment, slugs)
        assert statuses and statuses[-1] == status, (command, result.stdout[-600:])
        if slug:
            assert f"/problems/{slug}" in "\n".join(answers), (command, answers)
        seen.add(slug)
    # Every row of the error table that docs/api.md says the demo produces has an example.
    assert slugs - seen == {
        "budget-exhausted",
        "upstream-rejected",
        "storage-unavailable",
        "request-timeout",
        "service-busy",
        "webhook-not-configured",
        "internal-error",
    }
