"""The catalogue of problems (app/domain/problems.py) is the one list of slugs: app/openapi.json
and docs/api.md's error table list the same slugs with the same statuses, in both directions,
and no other module of app/ spells a slug."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from app.domain.problems import Problem
from tests.openapi_conformance import load_document

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE_MODULE = ROOT / "app" / "domain" / "problems.py"
# Slug -> status, as the documents write it: "other" for the HTTP layer's own statuses.
CATALOGUE = {problem.slug: str(problem.status or "other") for problem in Problem}
OPENAPI_ITEM = re.compile(r"^- `([a-z-]+)` \((\d{3}|other)\):", re.MULTILINE)
TABLE_ROW = re.compile(r"^\| ([\d /]+|other) \| (.+?) \|", re.MULTILINE)


def openapi_listing() -> dict[str, str]:
    """Slug -> status, as the description of Problem.type in app/openapi.json lists them."""
    problem = load_document()["components"]["schemas"]["Problem"]
    return _one_each(OPENAPI_ITEM.findall(problem["properties"]["type"]["description"]))


def api_md_listing() -> dict[str, str]:
    """Slug -> status, as the table under docs/api.md's "## Errors" lists them. A row may
    pair its statuses with its slugs: `404 / 405` with `not-found` / `method-not-allowed`."""
    api = (ROOT / "docs" / "api.md").read_text()
    errors = api.split("\n## Errors\n", 1)[1].split("\n#", 1)[0]
    pairs = []
    for statuses, slugs in TABLE_ROW.findall(errors):
        names, codes = re.findall(r"`([a-z-]+)`", slugs), statuses.split(" / ")
        assert len(names) == len(codes), f"statuses and slugs do not pair: {statuses} | {slugs}"
        pairs += zip(names, codes, strict=True)
    return _one_each(pairs)


def _one_each(pairs: list[tuple[str, str]]) -> dict[str, str]:
    listing = dict(pairs)
    assert len(listing) == len(pairs), f"a slug is listed twice: {sorted(pairs)}"
    return listing


@pytest.mark.parametrize(
    ("document", "listing"),
    [("app/openapi.json", openapi_listing), ("docs/api.md", api_md_listing)],
)
def test_each_document_lists_the_catalogue_and_nothing_else(document, listing: Callable):
    """Every slug of the catalogue is documented with the catalogue's status, and nothing is
    documented that the catalogue lacks."""
    listed = listing()

    assert set(CATALOGUE) - set(listed) == set(), f"missing from {document}"
    assert set(listed) - set(CATALOGUE) == set(), f"in {document}, not in the catalogue"
    assert listed == CATALOGUE, f"statuses differ in {document}"


def test_no_module_but_the_catalogue_spells_a_slug():
    """Problems are raised by name: a slug written anywhere else would be a second, loose copy."""
    quoted = re.compile("|".join(rf"[\"']{re.escape(slug)}[\"']" for slug in CATALOGUE))
    spelled = [
        f"{path.relative_to(ROOT)}: {match}"
        for path in sorted((ROOT / "app").rglob("*.py"))
        if path != CATALOGUE_MODULE
        for match in quoted.findall(path.read_text())
    ]
    assert spelled == []


def test_each_slug_and_name_is_in_the_catalogue_once():
    """Two entries cannot share a slug (Enum would make the second an alias of the first)."""
    slugs = [problem.slug for problem in Problem]
    assert len(slugs) == len(set(slugs)) == len(Problem.__members__)
