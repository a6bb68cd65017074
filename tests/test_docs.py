"""The documents say what is true and point where they say: every variable declared in
app/settings.py, and no other, is in .env.example and in the configuration table of
docs/operations.md with its default (and in the table with its help), every link, `make` target
and `python -m` command of README.md and docs/ resolves, and the README keeps a newcomer's
outline with no project history."""

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from app.settings import LOG_LEVELS, VARIABLES, Variable

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
# Written by bench/report.py and bench/soak.py from a run, not by hand.
GENERATED = {
    ROOT / "docs" / "benchmarks" / name for name in ("results.md", "soak.md", "sqlite-check.md")
}
# How the worker model was chosen, with its measurements: a decision record by design.
DECISION_RECORDS = {ROOT / "docs" / "concurrency.md"}
# Paths the documents name that a command creates (git-ignored).
CREATED = {"bench/node_peer/node_modules"}
README_SECTIONS = ["Quickstart", "First send", "Next steps", "Documentation"]
HISTORY = re.compile(
    r"\bbrief\b|\bhonestly\b|\btargets?(?::| is| was| of \d)|\b(?:is|are|was|were) (?:not )?met\b"
    r"|\bwe (?:decided|chose|picked|agreed)\b|\bissue #?\d+|\bno longer\b|\bused to\b"
    r"|\bpreviously\b|\boriginally\b|\bthe run before\b|\bat first\b",
    re.IGNORECASE,
)
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose(text: str) -> str:
    """The text without its fenced code blocks (a `# comment` there is not a heading)."""
    return FENCE.sub("", text)


def code(text: str) -> list[str]:
    """Every fenced block and inline code span: where commands are written."""
    blocks = [block.split("\n", 1)[1] for block in FENCE.findall(text)]
    return blocks + CODE_SPAN.findall(prose(text))


def headings(text: str, level: int) -> list[str]:
    return re.findall(rf"^{'#' * level} (.+?)\s*$", prose(text), re.MULTILINE)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, seen = set(), {}
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", prose(path.read_text()), re.MULTILINE):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return found


def makefile_targets() -> dict[str, str]:
    """Each rule of the Makefile named by a word, with its `## ` comment ('' when none)."""
    rules = re.findall(r"^([a-z][a-z-]*):(?!=)([^\n]*)", (ROOT / "Makefile").read_text(), re.M)
    return {name: rest.partition("## ")[2].strip() for name, rest in rules}


def names_in_code(source: Path) -> set[str]:
    """Every string constant of a module that is a whole variable-like name (docstrings and
    messages are not): the variables it reads, and a few words such as DEBUG."""
    return {
        node.value
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9_]{2,}", node.value)
    }


def declared() -> dict[str, Variable]:
    return {variable.name: variable for variable in VARIABLES}


def env_example() -> dict[str, tuple[str, list[str]]]:
    """Each variable of .env.example: the comment lines above its lines, joined, and the
    values of its lines that are not commented out."""
    found: dict[str, tuple[str, list[str]]] = {}
    block: list[str] = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        assignment = re.fullmatch(r"(# ?)?([A-Z][A-Z0-9_]*)=(.*)", line)
        if assignment:
            comment, values = found.get(assignment[2], ("", []))
            comment += " ".join(block)
            values += [] if assignment[1] else [assignment[3]]
            found[assignment[2]] = (comment, values)
            block = []
        elif line.startswith("# ") and not line.startswith("# ---"):
            block.append(line[2:])
        else:
            block = []
    return found


def section(path: Path, heading: str) -> str:
    """The text under a `## heading`, up to the next `## `."""
    text = path.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


# --- what the service reads is documented ---------------------------------------------------


def test_the_settings_read_the_variables_we_expect():
    assert {
        "VONAGE_APPLICATION_ID",
        "API_KEYS",
        "RATE_LIMIT",
        "HOST",
        "PORT",
        "WEB_CONCURRENCY",
        "VONAGE_MAX_IN_FLIGHT",
        "BUSY_WAIT_MS",
    } <= set(declared())


def test_every_variable_the_code_names_is_declared():
    """app/settings.py and gunicorn.conf.py name no variable outside the declaration."""
    named = names_in_code(ROOT / "app" / "settings.py") | names_in_code(ROOT / "gunicorn.conf.py")
    assert sorted(named - set(declared()) - set(LOG_LEVELS)) == []


def test_env_example_has_each_declared_variable_with_its_default_and_no_other():
    """Each variable's comment says Required, or `Default: <the declared default>`, or the
    declared words for a default that is no fixed text; a line that sets it sets the default
    (required ones and those with such words hold examples)."""
    example = env_example()
    assert sorted(example) == sorted(declared())
    wrong = []
    for name, variable in declared().items():
        comment, values = example[name]
        if variable.required:
            expected = "Required"
        elif variable.shown_default:
            expected = variable.shown_default.replace("`", "")
        else:
            expected = f"Default: {variable.documented_default.replace('`', '')}"
        stated = re.search(rf"{re.escape(expected)}(?![\w-])", comment, re.IGNORECASE)
        fixed = not (variable.required or variable.shown_default)
        if not stated or (fixed and any(value != variable.default for value in values)):
            wrong.append((name, expected, comment, values))
    assert wrong == []


def test_the_configuration_table_is_the_declaration_row_by_row():
    """docs/operations.md's table: one row per declared variable, in the declaration's order,
    with its default and help (a new variable's row is in the diff below)."""
    table = section(ROOT / "docs" / "operations.md", "Configuration")
    rows = re.findall(r"^\| `[A-Z][A-Z0-9_]+` \|.*$", table, re.MULTILINE)
    expected = [
        f"| `{variable.name}` | {variable.documented_default} | {variable.description} |"
        for variable in VARIABLES
    ]
    assert rows == expected


def test_env_example_is_a_valid_configuration_shape():
    """Each documented line is NAME=value, so `.env.example` copies straight to `.env`."""
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Z_]+=.*", line), line


# --- the examples agree with the code -------------------------------------------------------


def test_the_demos_stop_example_opts_out_no_number_the_docs_send_to():
    """Following the demo banner's STOP step must not break a send example of the documents."""
    from tools.demo import STOP_EXAMPLE, _banner
    from tools.stack import Credentials

    credentials = Credentials(ROOT, "app-id", ROOT / "key.pem", "demo-key")
    banner = _banner(credentials, "https://127.0.0.1:8443", "http://127.0.0.1:8000")
    stopped = set(re.findall(r'"from": "(\d+)", "text": "STOP"', banner))
    assert stopped == {STOP_EXAMPLE.lstrip("+")}
    recipients = {
        number for path in DOCUMENTS for number in re.findall(r'"to": "\+(\d+)"', path.read_text())
    }
    assert recipients
    assert not stopped & recipients


def test_the_400_example_is_the_answer_to_its_request(client):
    """docs/api.md's problem example is what its `400 validation-error` line gets, field by
    field and in the same order (the request id aside)."""
    from tests.conftest import AUTH

    api = (ROOT / "docs" / "api.md").read_text()
    errors = api[api.index("Every error is `application/problem+json`") :]
    example = json.loads(errors[errors.index("```json") + 7 : errors.index("```\n")])
    request = re.search(r"send -d '(.*?)' +# 400 validation-error: (.*)", api)
    answer = client.post("/send-sms", json=json.loads(request[1]), headers=AUTH).json

    example["request_id"] = answer["request_id"]
    assert list(answer.items()) == list(example.items())
    assert request[2] == ", ".join(error["field"] for error in answer["errors"])


# --- every reference resolves ---------------------------------------------------------------


@pytest.mark.parametrize("document", DOCUMENTS, ids=relative)
def test_every_relative_link_resolves_to_a_file_and_its_anchor(document):
    broken = []
    for target in LINK.findall(prose(document.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        inside = file.is_file() and ROOT in file.parents
        if not inside or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=relative)
def test_every_file_a_document_names_in_code_exists(document):
    """`app/…py`, `tests/…`, `bench/…`: a path named in backticks is a path of the repository."""
    named = {
        span
        for span in CODE_SPAN.findall(prose(document.read_text()))
        if re.fullmatch(r"(?:app|bench|emulator|tests|tools|docs)/[\w./-]*", span)
    }
    missing = {name for name in named if not (ROOT / name).exists()}
    assert sorted(missing - CREATED) == []


@pytest.mark.parametrize("document", [*DOCUMENTS, ROOT / ".env.example"], ids=relative)
def test_every_make_target_a_document_names_exists(document):
    targets = makefile_targets()
    named = {
        name
        for snippet in code(document.read_text())
        for name in re.findall(r"(?:^|[\s;&|(])make ([a-z][a-z-]*)", snippet)
    }
    assert sorted(named - set(targets)) == []


def python_commands(text: str) -> list[tuple[str, str]]:
    """Each (module, arguments) of a `python -m module …` command, continuation lines joined;
    and each `make target VAR=…` whose variable the Makefile passes to a module."""
    passes = dict(
        (variable, module)
        for module, variable in re.findall(
            r"python -m ([\w.]+) \$\((\w+)\)", (ROOT / "Makefile").read_text()
        )
    )
    found = []
    for snippet in code(text):
        joined = snippet.replace("\\\n", " ")
        found += re.findall(r"python3? -m ([\w.]+)([^\n#;|&]*)", joined)
        for variable, arguments in re.findall(r"\b(\w+_ARGS)=(\"[^\"]*\"|\S+)", joined):
            if variable in passes:
                found.append((passes[variable], arguments))
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=relative)
def test_every_python_command_names_a_module_and_options_it_has(document):
    """`python -m bench.run --only …`: the module is ours or installed, and each option is one
    its argument parser declares."""
    import importlib.util

    wrong = []
    for module, arguments in python_commands(document.read_text()):
        file = ROOT / Path(*module.split("."))
        sources = [*file.glob("*.py")] if file.is_dir() else [file.with_suffix(".py")]
        if not all(source.is_file() for source in sources) or not sources:
            if importlib.util.find_spec(module) is None:
                wrong.append(module)
            continue
        declared = "".join(source.read_text() for source in sources)
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", arguments):
            if f'"{option}"' not in declared:
                wrong.append(f"{module} {option}")
    assert wrong == []


# --- the README starts a newcomer -----------------------------------------------------------


def test_the_readme_has_the_newcomers_outline():
    """What it is, then exactly these sections and no deeper ones; the reference lives in docs/."""
    text = README.read_text()
    assert headings(text, 1) == ["SMS service"]
    assert headings(text, 2) == README_SECTIONS
    assert headings(text, 3) == []
    assert len(text.encode()) < 6000


def test_the_readme_runs_the_two_commands_and_links_every_document():
    text = README.read_text()
    quickstart = section(README, "Quickstart")
    for command in ("make demo", "make test", "make run", "make help"):
        assert command in quickstart
    assert "curl -s localhost:8000/send-sms" in section(README, "First send")
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in LINK.findall(prose(text))}
    hand_written = set(DOCUMENTS) - GENERATED - {README}
    assert sorted(relative(path) for path in hand_written - linked) == []


@pytest.mark.parametrize(
    "document",
    [path for path in DOCUMENTS if path not in GENERATED | DECISION_RECORDS],
    ids=relative,
)
def test_no_project_history(document):
    """The documents state what is true now: no brief, no targets, no story of decisions."""
    assert HISTORY.findall(prose(document.read_text())) == []


# --- make help ------------------------------------------------------------------------------


def test_every_phony_target_says_what_it_does():
    """`make help` prints the `## ` comments: every target a person types carries one."""
    phony = re.search(r"^\.PHONY: (.*)$", (ROOT / "Makefile").read_text(), re.M)[1].split()
    targets = makefile_targets()
    assert sorted(name for name in phony if not targets.get(name)) == []


@pytest.mark.slow
def test_make_help_lists_every_target_with_its_comment():
    result = subprocess.run(
        [shutil.which("make") or "make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    listed = dict(re.findall(r"^\s*make (\S+)\s+(.*?)\s*$", result.stdout, re.MULTILINE))
    assert listed == {name: comment for name, comment in makefile_targets().items() if comment}
