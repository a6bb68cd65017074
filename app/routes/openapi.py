"""GET /openapi.json: the service's contract, written by hand and served as it is in the repo."""

import functools
from pathlib import Path

from flask import Blueprint, Response

bp = Blueprint("openapi", __name__)
DOCUMENT = Path(__file__).parents[1] / "openapi.json"


@functools.cache
def _document() -> bytes:
    """Read once: the file does not change while the service runs."""
    return DOCUMENT.read_bytes()


@bp.get("/openapi.json")
def get_openapi():
    return Response(_document(), content_type="application/json")
