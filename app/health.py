"""GET /health for load balancers: no auth, no limit, no call to Vonage."""

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.get("/health")
def get_health():
    return {"status": "ok"}
