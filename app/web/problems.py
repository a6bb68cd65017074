"""The one place that turns failures into application/problem+json answers (RFC 9457)."""

from __future__ import annotations

import json
import logging
import traceback

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from ..domain.problems import ApiProblem, Problem
from ..store.contract import StorageUnavailable
from .request_context import request_state

PROBLEM_TYPE_BASE = "https://sms-service.example/problems/"
READ_TIMEOUT_S = 10  # the server's bound from a request's first byte to its last
logger = logging.getLogger("sms_service")

# The HTTP layer's own refusals (werkzeug's, gunicorn's), by status, under our stable slugs;
# any other status is an http-error.
HTTP_PROBLEMS = {
    400: Problem.VALIDATION_ERROR,
    401: Problem.UNAUTHORIZED,
    404: Problem.NOT_FOUND,
    405: Problem.METHOD_NOT_ALLOWED,
    413: Problem.PAYLOAD_TOO_LARGE,
    415: Problem.UNSUPPORTED_MEDIA_TYPE,
    429: Problem.RATE_LIMITED,
    500: Problem.INTERNAL_ERROR,
}
# One title per status, whoever refuses: werkzeug's own would say "Not Found" where ours say
# "Not found". The HTTP layer's other refusals keep their own words.
CATALOGUE_TITLES = {Problem.NOT_FOUND}


class InvalidPayload(ApiProblem):
    """A 400 naming every bad field at once."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(
            Problem.VALIDATION_ERROR,
            Problem.VALIDATION_ERROR.describe(fields=", ".join(errors)),
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
    return Problem.PAYLOAD_TOO_LARGE.error(limit=limit, kib=limit / 1024)


def storage_unavailable() -> ApiProblem:
    """The state is out of reach or read-only (the store's StorageUnavailable): nothing was sent."""
    return Problem.STORAGE_UNAVAILABLE.error(headers={"Retry-After": "5"})


# What is answered as a problem: our own refusals (the Vonage gateway's among them), and the
# store's failure; as_problem answers each.
PROBLEMS = (ApiProblem, StorageUnavailable)


def as_problem(exc: ApiProblem | StorageUnavailable) -> ApiProblem:
    """The problem that answers `exc`."""
    if isinstance(exc, StorageUnavailable):
        return storage_unavailable()
    return exc


def init_error_handlers(app: Flask) -> None:
    """Install the only code that turns exceptions into responses."""
    for failure in PROBLEMS:
        app.register_error_handler(failure, _answer_problem)
    # Flask turns an unhandled exception into an InternalServerError (500) and brings it here,
    # except under TESTING, where it propagates to the test.
    app.register_error_handler(HTTPException, _http_problem)


def _answer_problem(exc: ApiProblem | StorageUnavailable) -> Response:
    return problem_response(as_problem(exc))


def _http_problem(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 500:
        return problem_response(Problem.INTERNAL_ERROR.error())
    if status == 413:  # werkzeug's own words do not say what the limit is
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return problem_response(payload_too_large_problem(limit))
    response = exc.get_response()  # keeps headers such as Allow on a 405
    kind = HTTP_PROBLEMS.get(status, Problem.HTTP_ERROR)
    problem = ApiProblem(
        kind,
        exc.description or exc.name,
        status=status,
        title=kind.title if kind in CATALOGUE_TITLES else exc.name,
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


def problem_response(problem: ApiProblem) -> Response:
    """Render a problem as application/problem+json, and note it in the request's state (for
    the request log, and for what an Idempotency-Key keeps)."""
    state = request_state()
    state.problem = problem.kind
    return Response(
        problem_body(problem, state.request_id),
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
    return Problem.REQUEST_TIMEOUT.error(seconds=READ_TIMEOUT_S)


def service_busy(detail: str | None = None) -> ApiProblem:
    """A request shed under load before anything was done for it; retry in a second."""
    return Problem.SERVICE_BUSY.error(detail, headers={"Retry-After": "1"})


def unreadable_request_problem(status: int, reason: str) -> ApiProblem:
    """A request refused before it could be read (by gunicorn: a malformed request line,
    headers too large), in gunicorn's words under the slug of its status, with http-error's
    default detail whatever that slug. Its message is left out: it quotes the request."""
    return ApiProblem(
        HTTP_PROBLEMS.get(status, Problem.HTTP_ERROR),
        Problem.HTTP_ERROR.describe(reason=reason),
        status=status,
        title=reason,
    )
