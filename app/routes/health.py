"""GET /health for load balancers: no auth, no limit, no call to Vonage.

It stays 200 when the storage fails (liveness must not depend on Redis or a disk, or one
blip makes the balancer drop every instance) and reports it in its body: which store
(`sqlite`, `redis` or `memory`) and whether it takes writes.
"""

from flask import Blueprint

from ..store import get_store

bp = Blueprint("health", __name__)


@bp.get("/health")
def get_health():
    store = get_store()
    writable = store.ping()
    return {
        "status": "ok",
        "storage": "ok" if writable else "unavailable",
        "store": store.kind,
        "writable": writable,
    }
