"""Prometheus metrics: the counters every module counts in (GET /metrics: app/routes/scrape.py).

Under gunicorn every worker writes its samples to PROMETHEUS_MULTIPROC_DIR (prepared
and cleaned by gunicorn.conf.py) and /metrics adds them up; elsewhere one process
serves its own. Labels stay bounded: route templates, key names, slugs; never a number.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # *_created samples: noise here, and absent in multiprocess mode

HTTP_REQUESTS = Counter(
    "sms_http_requests", "HTTP requests answered.", ["route", "method", "status"]
)
HTTP_DURATION = Histogram(
    "sms_http_request_duration_seconds", "Time to answer an HTTP request.", ["route"]
)
SMS_ACCEPTED = Counter("sms_accepted", "SMS accepted by Vonage.", ["api_key", "encoding"])
SMS_SEGMENTS = Counter("sms_segments_sent", "SMS segments accepted by Vonage.", ["api_key"])
VONAGE_DURATION = Histogram(
    "sms_vonage_request_duration_seconds", "Time of one call to Vonage (one attempt)."
)
VONAGE_OUTCOMES = Counter("sms_vonage_outcomes", "Outcomes of calls to Vonage.", ["outcome"])
SENDS_IN_FLIGHT = Gauge(
    "sms_sends_in_flight", "Sends holding a slot of the bulkhead.", multiprocess_mode="livesum"
)
SENDS_SHED = Counter("sms_sends_shed", "Sends refused 503 service-busy: no slot in time.")
VONAGE_RETRIES = Counter("sms_vonage_retries", "Calls to Vonage tried again.", ["reason"])
RATE_LIMITED = Counter("sms_rate_limited", "Requests refused by a rate limit.", ["limit"])
IDEMPOTENCY = Counter(
    "sms_idempotency", "Requests with an Idempotency-Key that were not run.", ["result"]
)
WEBHOOKS = Counter("sms_webhooks", "Webhooks received, by answer.", ["type", "status"])
RECEIPTS = Counter("sms_delivery_receipts", "Delivery receipts applied.", ["status"])
OPT_OUTS = Counter("sms_opt_out_changes", "Opt-out list changes.", ["change", "source"])
INBOUND = Counter("sms_inbound_messages", "Inbound SMS received.", ["action"])

_METHODS = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"}
_WEBHOOK_ROUTES = {"/webhooks/status": "status", "/webhooks/inbound": "inbound"}


def observe_request(route: str, method: str, status: int, duration_s: float) -> None:
    """Count one answered request under its route template (never its raw path)."""
    HTTP_REQUESTS.labels(route, method_label(method), str(status)).inc()
    HTTP_DURATION.labels(route).observe(duration_s)
    if route in _WEBHOOK_ROUTES:
        WEBHOOKS.labels(_WEBHOOK_ROUTES[route], str(status)).inc()


def method_label(method: str) -> str:
    """A usual HTTP method, else OTHER: gunicorn passes any token of capitals and digits
    (`G14155550100T`), so a method can be unbounded and carry a number."""
    return method if method in _METHODS else "OTHER"
