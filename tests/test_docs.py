"""Every variable the service reads is documented in .env.example and in the README."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def variables_read() -> set[str]:
    sources = [ROOT / "app" / "settings.py", ROOT / "gunicorn.conf.py"]
    found = set()
    for source in sources:
        found |= set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', source.read_text()))
    return found - {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def test_the_settings_read_the_variables_we_expect():
    assert {
        "VONAGE_APPLICATION_ID",
        "API_KEYS",
        "RATE_LIMIT",
        "PORT",
        "VONAGE_MAX_IN_FLIGHT",
        "BUSY_WAIT_MS",
    } <= variables_read()


@pytest.mark.parametrize("document", [".env.example", "README.md"])
def test_every_variable_is_documented(document):
    text = (ROOT / document).read_text()
    missing = sorted(name for name in variables_read() if name not in text)
    assert missing == []


def test_env_example_is_a_valid_configuration_shape():
    """Each documented line is NAME=value, so `.env.example` copies straight to `.env`."""
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Z_]+=.*", line), line


def test_the_demos_stop_example_opts_out_no_number_the_readme_sends_to():
    """Following the demo banner's STOP step must not break the README's send examples."""
    from tools.demo import STOP_EXAMPLE, _banner
    from tools.stack import Credentials

    credentials = Credentials(ROOT, "app-id", ROOT / "key.pem", "demo-key")
    banner = _banner(credentials, "https://127.0.0.1:8443", "http://127.0.0.1:8000")
    stopped = set(re.findall(r'"from": "(\d+)", "text": "STOP"', banner))
    assert stopped == {STOP_EXAMPLE.lstrip("+")}
    readme_recipients = set(re.findall(r'"to": "\+(\d+)"', (ROOT / "README.md").read_text()))
    assert readme_recipients
    assert not stopped & readme_recipients


def test_the_readmes_400_example_is_the_answer_to_its_request(client):
    """The README's problem example is what its `400 validation-error` line gets, field by
    field and in the same order (the request id aside)."""
    from tests.conftest import AUTH

    readme = (ROOT / "README.md").read_text()
    errors = readme[readme.index("Every error is `application/problem+json`") :]
    example = json.loads(errors[errors.index("```json") + 7 : errors.index("```\n")])
    request = re.search(r"send -d '(.*?)' +# 400 validation-error: (.*)", readme)
    answer = client.post("/send-sms", json=json.loads(request[1]), headers=AUTH).json

    example["request_id"] = answer["request_id"]
    assert list(answer.items()) == list(example.items())
    assert request[2] == ", ".join(error["field"] for error in answer["errors"])
