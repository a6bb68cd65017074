"""Idempotency-Key on POST /send-sms: a retried request never sends a second SMS.

The first request with a key runs; its final answer is kept IDEMPOTENCY_TTL and
replayed to any later request with the same key and body, without calling Vonage.
Answers that prove nothing was sent (429, 503, an account error) are not kept, so a
retry with the same key sends: NOT_KEPT, the problems whose catalogue entry says a retry
may send (app/domain/problems.py). An unknown outcome (504, 502) is kept: replaying it
is safe, sending again is not.

What is kept is bounded: a body of at most MAX_KEPT_BODY bytes under each key (our answers
are far smaller: a refusal names at most a few unknown fields), kept IDEMPOTENCY_TTL; without
Redis the store also bounds how many answers, and how many bytes, it holds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable

from flask import Response, current_app

from ..domain.claims import Claim
from ..domain.problems import Problem
from ..metrics import IDEMPOTENCY
from ..store import get_store
from ..store.admission import IdempotencyTicket
from ..store.contract import StorageUnavailable
from .app_settings import current_settings
from .problems import PROBLEMS, InvalidPayload, as_problem, problem_response
from .request_context import request_state

logger = logging.getLogger("sms_service")
HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x20-\x7e]{1,255}")  # printable ASCII
# Answers that prove nothing was sent, for a reason that can pass: the catalogue says which.
NOT_KEPT = frozenset(problem for problem in Problem if problem.retry_may_send)
KEPT_HEADERS = ("Content-Type",)
MAX_KEPT_BODY = 4096  # bytes of one kept answer's body
_CORE_FIELD = 300  # characters of one field an answer over MAX_KEPT_BODY keeps


def idempotency_ticket(
    presented: str | None, api_key_name: str, raw_body: bytes, lock_s: int
) -> IdempotencyTicket | None:
    """Read the Idempotency-Key header for admission to take: None without one, a 400 when
    it is malformed. Keys are scoped per API key."""
    if presented is None:
        return None
    if not _KEY.fullmatch(presented):
        raise InvalidPayload({HEADER: "must be 1 to 255 printable ASCII characters"})
    key = f"{api_key_name}:{hashlib.sha256(presented.encode()).hexdigest()}"
    return IdempotencyTicket(key, fingerprint(raw_body), lock_s)


def answer_once(
    ticket: IdempotencyTicket | None, claim: Claim | None, run: Callable[[], object]
) -> object:
    """Answer a request whose Idempotency-Key admission took, or found taken: replay the
    stored answer, refuse a clash, or run the request and keep its final answer."""
    if ticket is None:
        return run()
    assert claim is not None, "admission takes the key of every ticket it lets through"
    if claim.outcome != "started":
        return _answer_taken(claim)
    response = _run_holding(ticket, claim, run)
    _keep_or_release(ticket, claim, response)
    return response


def _answer_taken(claim: Claim) -> Response:
    """The key is another request's: replay its answer, or refuse the clash."""
    IDEMPOTENCY.labels(claim.outcome).inc()
    if claim.outcome == "replay":
        return _replay(claim.response)
    if claim.outcome == "mismatch":
        raise Problem.IDEMPOTENCY_KEY_REUSED.error()
    # "conflict": the request that took the key is still running
    raise Problem.IDEMPOTENCY_CONFLICT.error(headers={"Retry-After": "1"})


def _run_holding(ticket: IdempotencyTicket, claim: Claim, run: Callable[[], object]) -> Response:
    """Run the request while it holds the key, and make its answer a response (a problem
    too). A crash lets go of the key, so that a retry runs."""
    try:
        return current_app.make_response(run())
    except PROBLEMS as problem:
        return problem_response(as_problem(problem))
    except BaseException:
        get_store().release_request(ticket.key, claim.token)
        raise


def _keep_or_release(ticket: IdempotencyTicket, claim: Claim, response: Response) -> None:
    """Keep the final answer under the key; or let go of the key when the answer proves
    nothing was sent, so that a retry with it sends."""
    store = get_store()
    try:
        if request_state().problem not in NOT_KEPT:  # the run's problem, if it had one
            ttl_s = current_settings().idempotency_ttl_s
            store.finish_request(ticket.key, claim.token, kept_answer(response), ttl_s)
        else:
            store.release_request(ticket.key, claim.token)
    except StorageUnavailable:
        # The answer stands; the key stays locked until its in-flight expiry.
        logger.error("idempotent answer not stored: storage unavailable")


def fingerprint(raw: bytes) -> str:
    """Hash the body's meaning, not its spacing or key order."""
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


def kept_answer(response: Response) -> dict:
    """The answer to keep under a key: status, Content-Type and a body of at most MAX_KEPT_BODY
    bytes. A larger body (none of ours is) is kept as its core: see _core."""
    body = response.get_data(as_text=True)
    if len(body.encode()) > MAX_KEPT_BODY:
        body = _core(body)
    return {
        "status": response.status_code,
        "headers": {
            name: response.headers[name] for name in KEPT_HEADERS if name in response.headers
        },
        "body": body,
    }


def _core(body: str) -> str:
    """A JSON object's short top-level fields, as many as fit in MAX_KEPT_BODY bytes: a problem
    keeps its type, title, status and request_id, and loses lists such as `errors`."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    core: dict[str, object] = {}
    for name, value in parsed.items() if isinstance(parsed, dict) else ():
        if isinstance(value, list | dict) or len(str(value)) > _CORE_FIELD:
            continue
        if len(json.dumps({**core, name: value}).encode()) > MAX_KEPT_BODY:
            break
        core[name] = value
    return json.dumps(core)


def _replay(stored: dict) -> Response:
    response = Response(stored["body"], status=stored["status"], headers=stored["headers"])
    response.headers["Idempotent-Replayed"] = "true"
    return response
