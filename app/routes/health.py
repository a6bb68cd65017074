"""GET /health for load balancers: no auth, no limit, no call to Vonage.

It stays 200 when Redis is down (liveness must not depend on Redis, or one blip makes
the balancer drop every instance) and reports the storage in its body.
"""

from flask import Blueprint, current_app

bp = Blueprint("health", __name__)


@bp.get("/health")
def get_health():
    storage = "ok" if current_app.extensions["store"].ping() else "unavailable"
    return {"status": "ok", "storage": storage}
