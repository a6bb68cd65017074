"""GET /health for load balancers: no auth, no limit, no call to Vonage.

It stays 200 when Redis is down (liveness must not depend on Redis, or one blip makes
the balancer drop every instance) and reports the storage in its body.
"""

from flask import Blueprint

from ..store import get_store

bp = Blueprint("health", __name__)


@bp.get("/health")
def get_health():
    storage = "ok" if get_store().ping() else "unavailable"
    return {"status": "ok", "storage": storage}
