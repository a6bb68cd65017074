"""GET /metrics: the Prometheus exposition, behind METRICS_TOKEN and the failed-key brake.

Apart from app/metrics.py because the brake (app/web/rate_limits.py) counts its refusals in
the metrics' counters: the route depends on the limits, the limits on the counters.
"""

from __future__ import annotations

import contextlib
import hmac
import os

from flask import Blueprint, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from ..domain.problems import Problem
from ..store.contract import StorageUnavailable
from ..web.app_settings import current_settings
from ..web.bearer import bearer_credentials
from ..web.rate_limits import admit_credential

bp = Blueprint("metrics", __name__)
METRICS = "#metrics"  # the token's name at the failed-key brake; no API key name holds a '#'


@bp.get("/metrics")
def get_metrics():
    token = current_settings().metrics_token
    if token:
        _check_token(token)
    return Response(_exposition(), content_type=CONTENT_TYPE_LATEST)


def _check_token(token: str) -> None:
    """401 for a wrong token; 429 while the client's address is braked (as for API keys).

    With Redis out of reach the token is still checked, without the brake: monitoring has to
    see the outage, and the brake's counts are in Redis."""
    presented = bearer_credentials(request.headers.get("Authorization", "")) or ""
    right = hmac.compare_digest(presented.encode(), token.encode())
    with contextlib.suppress(StorageUnavailable):
        admit_credential(METRICS if right else None)
    if not right:
        raise Problem.UNAUTHORIZED.error(
            "Send the metrics token as 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
