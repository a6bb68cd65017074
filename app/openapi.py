"""GET /openapi.json: the service's contract, written by hand and served as it is in the repo."""

from pathlib import Path

from flask import Blueprint, Response

bp = Blueprint("openapi", __name__)
DOCUMENT = Path(__file__).with_name("openapi.json")


@bp.get("/openapi.json")
def get_openapi():
    return Response(DOCUMENT.read_bytes(), content_type="application/json")
