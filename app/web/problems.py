"""The one place that turns failures into application/problem+json answers (RFC 9457)."""

from __future__ import annotations

import json
import logging
import traceback

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from ..store.contract import StorageUnavailable
from ..vonage.gateway import UpstreamError

PROBLEM_TYPE_BASE = "https://sms-service.example/problems/"
READ_TIMEOUT_S = 10  # the server's bound from a request's first byte to its last
logger = logging.getLogger("sms_service")

# Werkzeug's own refusals, by status, under our stable slugs.
HTTP_SLUGS = {
    400: "validation-error",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    429: "rate-limited",
    500: "internal-error",
}
# One title per status, whoever refuses: werkzeug's own would say "Not Found" where ours say
# "Not found".
NOT_FOUND_TITLE = "Not found"


class ApiProblem(Exception):
    """A refusal we mean to give: status, stable slug, human title and detail."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: object,
    ):
        super().__init__(f"{status} {slug}: {detail}")
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = headers or {}
        self.extra = extra


class InvalidPayload(ApiProblem):
    """A 400 naming every bad field at once."""

    def __init__(self, errors: dict[str, str]):
        fields = ", ".join(errors)
        super().__init__(
            400,
            "validation-error",
            "Invalid request",
            f"Fix these fields: {fields}.",
            errors=[{"field": name, "message": message} for name, message in errors.items()],
        )


class UnreadableBody(InvalidPayload):
    """A body that breaks HTTP's framing (a malformed chunk, a connection closed before its
    end). Raised by the server's input stream (app/server/worker.py) wherever the body is read, so
    it is answered 400 like any invalid body, never as a crash."""

    def __init__(self):
        super().__init__(
            {"body": "could not be read: malformed chunked encoding, or it ended too early"}
        )


def payload_too_large_problem(limit: int) -> ApiProblem:
    """A body over `limit` bytes, refused with the limit named."""
    return ApiProblem(
        413,
        "payload-too-large",
        "Payload too large",
        f"The body must be at most {limit} bytes ({limit / 1024:g} KiB).",
    )


def storage_unavailable() -> ApiProblem:
    """The state is out of reach or read-only (the store's StorageUnavailable): nothing was sent."""
    return ApiProblem(
        503,
        "storage-unavailable",
        "Storage unavailable",
        "The service's state storage is unavailable; nothing was sent. Retry later.",
        headers={"Retry-After": "5"},
    )


# What is answered as a problem: our own refusals, and the failures of the adapters below (the
# store's, and Vonage's outcomes as the gateway judges them); as_problem answers each.
PROBLEMS = (ApiProblem, StorageUnavailable, UpstreamError)


def as_problem(exc: ApiProblem | StorageUnavailable | UpstreamError) -> ApiProblem:
    """The problem that answers `exc`."""
    if isinstance(exc, StorageUnavailable):
        return storage_unavailable()
    if isinstance(exc, UpstreamError):
        return ApiProblem(exc.status, exc.slug, exc.title, exc.detail, headers=exc.headers)
    return exc


def register_error_handlers(app: Flask) -> None:
    """Install the only code that turns exceptions into responses."""
    for failure in PROBLEMS:
        app.register_error_handler(failure, _answer_problem)
    # Flask turns an unhandled exception into an InternalServerError (500) and brings it here,
    # except under TESTING, where it propagates to the test.
    app.register_error_handler(HTTPException, _http_problem)


def _answer_problem(exc: ApiProblem | StorageUnavailable | UpstreamError) -> Response:
    return problem_response(as_problem(exc))


def _http_problem(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 500:
        return _internal_error(exc)
    if status == 413:  # werkzeug's own words do not say what the limit is
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return problem_response(payload_too_large_problem(limit))
    response = exc.get_response()  # keeps headers such as Allow on a 405
    problem = ApiProblem(
        status,
        HTTP_SLUGS.get(status, "http-error"),
        NOT_FOUND_TITLE if status == 404 else exc.name,
        exc.description or exc.name,
        headers={k: v for k, v in response.headers.items() if k.lower() == "allow"},
    )
    return problem_response(problem)


def log_unhandled(exc_info) -> None:
    """Log a crash for the operator: its type, route and stack frames, never its message
    (which can hold the text, a number or a secret) nor the raw path (which can hold a
    number). Replaces Flask.log_exception."""
    exc_type, _, tb = exc_info
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    fields = {"exception": exc_type.__name__, "route": route, "stack": stack_frames(tb)}
    logger.error("unhandled exception", extra={"fields": fields})


def stack_frames(tb) -> list[str]:
    """The last frames of a traceback as `file:line in function`: where, never what."""
    frames = traceback.extract_tb(tb)[-8:]
    return [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames]


def _internal_error(exc: HTTPException) -> Response:
    return problem_response(internal_error_problem())


def internal_error_problem() -> ApiProblem:
    return ApiProblem(
        500,
        "internal-error",
        "Internal server error",
        "Something went wrong on our side. Quote the request_id when you report it.",
    )


def problem_response(problem: ApiProblem) -> Response:
    """Render a problem as application/problem+json and note its slug for the request log."""
    g.error_slug = problem.slug
    return Response(
        problem_body(problem, g.get("request_id")),
        status=problem.status,
        headers=problem.headers,
        content_type="application/problem+json",
    )


def problem_body(problem: ApiProblem, request_id: str | None) -> str:
    """The RFC 9457 body of a problem, as JSON."""
    body = {
        "type": PROBLEM_TYPE_BASE + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "request_id": request_id,
        "success": False,
        **problem.extra,
    }
    return json.dumps(body)


class RequestTimeout(Exception):
    """The client took longer than READ_TIMEOUT_S to send its request (raised by the
    server's socket, app/server/worker.py; not an OSError, which gunicorn would log as a fault)."""


def request_timeout_problem() -> ApiProblem:
    """A request whose headers or body did not arrive within READ_TIMEOUT_S."""
    return ApiProblem(
        408,
        "request-timeout",
        "Request timeout",
        f"The request did not arrive whole within {READ_TIMEOUT_S} s.",
    )


def service_busy(detail: str) -> ApiProblem:
    """A request shed under load before anything was done for it; retry in a second."""
    return ApiProblem(503, "service-busy", "Service busy", detail, headers={"Retry-After": "1"})


def unreadable_request_problem(status: int, reason: str) -> ApiProblem:
    """A request refused before it could be read (by gunicorn: a malformed request line,
    headers too large). Its message is left out: it quotes the request."""
    return ApiProblem(
        status,
        HTTP_SLUGS.get(status, "http-error"),
        reason,
        f"The HTTP request could not be read ({reason}).",
    )
