"""The catalogue of problems: every refusal the service can answer, each named once.

A problem is what the caller is told (RFC 9457): a stable slug to branch on, its HTTP
status, a title, and a default detail whose `{blanks}` the raising code fills in. Code
raises one by name, `raise Problem.RECIPIENT_OPTED_OUT.error(since=since)`, never with a
slug of its own; app/web/problems.py turns it into application/problem+json. Plain data,
so that the Vonage gateway and the web layer alike can raise them.

`retry_may_send` is the one rule the catalogue decides for the send: an answer that proves
nothing was sent, for a reason that can pass (a spent limit, an outage, a busy service, the
account's trouble), is not kept under an Idempotency-Key, so that a retry with the key
sends. An answer after which the SMS may have gone is kept, and so is a refusal that the
same request would meet again (a bad field, an opt-out): the retry gets it replayed.

tests/test_problem_catalogue.py keeps app/openapi.json and docs/api.md's error table in
step with this list, in both directions.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import NamedTuple


class _Entry(NamedTuple):
    slug: str
    status: int | None  # None: the HTTP layer's own status (http-error)
    title: str
    detail: str  # the default, a str.format template
    retry_may_send: bool = False


class Problem(Enum):
    """Every problem the service answers, grouped by where it arises."""

    # The request as HTTP: its framing, route, method, body and credentials.
    VALIDATION_ERROR = _Entry(
        "validation-error", 400, "Invalid request", "Fix these fields: {fields}."
    )
    UNAUTHORIZED = _Entry(
        "unauthorized", 401, "Unauthorized", "Send a valid API key in the X-API-Key header."
    )
    NOT_FOUND = _Entry(
        "not-found",
        404,
        "Not found",
        "The requested URL was not found on the server. If you entered the URL manually please "
        "check your spelling and try again.",
    )
    METHOD_NOT_ALLOWED = _Entry(
        "method-not-allowed",
        405,
        "Method Not Allowed",
        "The method is not allowed for the requested URL.",
    )
    REQUEST_TIMEOUT = _Entry(
        "request-timeout",
        408,
        "Request timeout",
        "The request did not arrive whole within {seconds} s.",
        retry_may_send=True,
    )
    PAYLOAD_TOO_LARGE = _Entry(
        "payload-too-large",
        413,
        "Payload too large",
        "The body must be at most {limit} bytes ({kib:g} KiB).",
    )
    UNSUPPORTED_MEDIA_TYPE = _Entry(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "Send the body as JSON with Content-Type: application/json.",
    )
    HTTP_ERROR = _Entry(
        "http-error", None, "HTTP error", "The HTTP request could not be read ({reason})."
    )

    # The send's rules: Idempotency-Key, destinations, the opt-out list, the rate limits, the
    # segment budget.
    IDEMPOTENCY_CONFLICT = _Entry(
        "idempotency-conflict",
        409,
        "Request in progress",
        "A request with this Idempotency-Key is still in progress; retry shortly.",
        retry_may_send=True,
    )
    IDEMPOTENCY_KEY_REUSED = _Entry(
        "idempotency-key-reused",
        422,
        "Idempotency-Key reused",
        "This Idempotency-Key was used with a different request body.",
    )
    OPTED_OUT_BY_RECIPIENT = _Entry(
        "opted-out-by-recipient",
        409,
        "Opted out by the recipient",
        "{whose}; only the recipient's START lifts it, or a key named in "
        "OPT_OUT_OVERRIDE_KEYS. Nothing was changed.",
    )
    RECIPIENT_OPTED_OUT = _Entry(
        "recipient-opted-out",
        422,
        "Recipient opted out",
        "The recipient opted out of SMS on {since}; nothing was sent.",
    )
    # Judged before the Idempotency-Key is taken (app/web/send_gate.py), so never kept under
    # it; a retry meets the same refusal while the settings stay, as it would a kept 400.
    DESTINATION_NOT_ALLOWED = _Entry(
        "destination-not-allowed",
        422,
        "Destination not allowed",
        "Sending to {destination} is not allowed by this service; nothing was sent.",
    )
    RATE_LIMITED = _Entry(
        "rate-limited",
        429,
        "Too many requests",
        "The limit of {limit} for this client is spent; retry after {retry_after} seconds.",
        retry_may_send=True,
    )
    RECIPIENT_RATE_LIMITED = _Entry(
        "recipient-rate-limited",
        429,
        "Too many requests",
        "The limit of {limit} for this recipient is spent; retry after {retry_after} seconds.",
        retry_may_send=True,
    )

    BUDGET_EXHAUSTED = _Entry(
        "budget-exhausted",
        429,
        "Segment budget exhausted",
        "The segment budget of {limit} for this API key has too few segments left for this "
        "text; nothing was sent. Retry after {retry_after} seconds.",
        retry_may_send=True,
    )

    # Vonage's answers, as the gateway (app/vonage/gateway.py) judges them.
    RECIPIENT_REJECTED = _Entry(
        "recipient-rejected", 422, "Recipient rejected", "Vonage refused the recipient: {reason}"
    )
    UPSTREAM_REJECTED = _Entry(
        "upstream-rejected", 422, "Rejected by Vonage", "Vonage refused the message: {reason}"
    )
    UPSTREAM_ACCOUNT_ERROR = _Entry(
        "upstream-account-error",
        502,
        "SMS provider account problem",
        "Vonage refused the request ({vonage_status}): the service's Vonage account needs "
        "attention.",
        retry_may_send=True,
    )
    UPSTREAM_ERROR = _Entry(
        "upstream-error", 502, "SMS provider error", "Vonage answered {vonage_status}: {reason}"
    )
    UPSTREAM_UNAVAILABLE = _Entry(
        "upstream-unavailable",
        503,
        "SMS provider unavailable",
        "Vonage is unavailable or throttling us; the SMS was not sent. Retry later.",
        retry_may_send=True,
    )
    UPSTREAM_TIMEOUT = _Entry(
        "upstream-timeout",
        504,
        "SMS provider timeout",
        "Vonage did not answer within {timeout_s} s after receiving the request: the SMS may "
        "or may not have been sent.",
    )

    # The service itself: a bug, its load, its shared state.
    INTERNAL_ERROR = _Entry(
        "internal-error",
        500,
        "Internal server error",
        "Something went wrong on our side. Quote the request_id when you report it.",
    )
    SERVICE_BUSY = _Entry(
        "service-busy",
        503,
        "Service busy",
        "Too many SMS are being sent right now; nothing was sent. Retry shortly.",
        retry_may_send=True,
    )
    STORAGE_UNAVAILABLE = _Entry(
        "storage-unavailable",
        503,
        "Storage unavailable",
        "The service's state storage is unavailable; nothing was sent. Retry later.",
        retry_may_send=True,
    )

    # Vonage's webhooks.
    WEBHOOK_NOT_CONFIGURED = _Entry(
        "webhook-not-configured",
        503,
        "Webhook verification not configured",
        "webhook verification not configured: set VONAGE_SIGNATURE_SECRET.",
    )
    WEBHOOK_UNSIGNED = _Entry(
        "webhook-unsigned",
        503,
        "Unsigned webhook",
        "The webhook carries no signature; answer 5xx so that Vonage retries it signed.",
    )

    def __init__(
        self, slug: str, status: int | None, title: str, detail: str, retry_may_send: bool
    ):
        self.slug, self.status, self.title = slug, status, title
        self.detail, self.retry_may_send = detail, retry_may_send

    def error(
        self,
        detail: str | None = None,
        /,
        *,
        headers: Mapping[str, str] | None = None,
        **blanks: object,
    ) -> ApiProblem:
        """This problem, ready to raise: with `detail` when the case needs its own words,
        else with the default detail, its blanks filled in."""
        return ApiProblem(
            self, self.describe(**blanks) if detail is None else detail, headers=headers
        )

    def describe(self, **blanks: object) -> str:
        """The default detail, its blanks filled in."""
        return self.detail.format(**blanks)


class ApiProblem(Exception):
    """A refusal we mean to give: a catalogue entry, with the detail of this case.

    `status` and `title` differ from the entry's only for the HTTP layer's own refusals
    (werkzeug's and gunicorn's words, under the slug of their status: app/web/problems.py),
    and for a webhook's bad signature, whose title says which credential failed."""

    def __init__(
        self,
        kind: Problem,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: object,
    ):
        self.kind, self.slug, self.detail = kind, kind.slug, detail
        self.status = status or kind.status
        self.title = title or kind.title
        self.headers = dict(headers or {})
        self.extra = extra  # more members of the body, such as a validation error's `errors`
        super().__init__(f"{self.status} {self.slug}: {detail}")
