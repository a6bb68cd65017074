"""Sending one SMS through Vonage, and what each Vonage outcome means for the caller.

The rule behind retries: retry only when Vonage certainly did not accept the
message (429, 503, no connection), so a retry can never send a second SMS.
Everything else is answered at once; a lost answer is reported as unknown.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from flask import Flask, current_app
from vonage_messages import Sms, SmsOptions

from ..domain.phone import without_plus
from ..domain.problems import ApiProblem, Problem
from ..domain.sms_request import SmsRequest
from ..metrics import VONAGE_DURATION, VONAGE_OUTCOMES, VONAGE_RETRIES
from ..settings import Settings
from .transport import AnswerTimedOut, OutcomeUnknown, VonageTransport

logger = logging.getLogger("sms_service")

BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 4.0
DEFAULT_RETRY_AFTER_S = 5
MAX_RETRY_AFTER_S = 60
RETRYABLE_STATUSES = (429, 503)
ACCOUNT_HINTS = {
    401: "Vonage refused the credentials: check that VONAGE_APPLICATION_ID and the private key "
    "belong to the same application",
    402: "Vonage reports a low balance: top up the account in the Vonage dashboard",
    403: "Vonage forbids this for the account: check the application's Messages capability",
}
_RECIPIENT_WORDS = ("recipient", "white-listed", "whitelist", "barred", "destination")
_EXTENSION = "sms"  # the gateway's key in app.extensions


class SmsGateway:
    """Holds the application's single transport to Vonage and sends through it.

    Vonage not taking the SMS, or perhaps not, is raised as a problem of the catalogue
    (app/domain/problems.py): the gateway knows what each outcome means for the caller;
    app/web/problems.py answers it."""

    def __init__(
        self,
        transport: VonageTransport,
        settings: Settings,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.transport, self.settings, self.sleep, self.clock = transport, settings, sleep, clock

    def send(self, message: SmsRequest) -> str:
        """Send one SMS and return its message_uuid, retrying only what is safe to retry."""
        # The SDK's model checks the fields once; the same bytes serve every attempt.
        body = vonage_body(message)
        deadline = self.clock() + self.settings.vonage_timeout_s
        retries = 0
        renewed_token = False
        while True:
            try:
                return self._send_once(body)
            except _TokenRefused as refused:
                if renewed_token:
                    raise _account_error(refused.response) from None
                # A 401 means nothing was accepted: a fresh token covers clock skew or revocation.
                self.transport.renew_token()
                renewed_token = True
            except _Retryable as retryable:
                wait = max(_backoff(retries), retryable.retry_after or 0)
                if retries >= self.settings.vonage_max_retries or self.clock() + wait > deadline:
                    raise _unavailable(retryable) from None
                retries += 1
                VONAGE_RETRIES.labels(retryable.reason).inc()
                logger.warning(
                    "vonage retry",
                    extra={"fields": {"attempt": retries, "reason": retryable.reason}},
                )
                self.sleep(wait)

    def _send_once(self, body: bytes) -> str:
        """One call to Vonage, timed and counted by outcome."""
        started = time.perf_counter()
        outcome = "accepted"
        try:
            return self._call_vonage(body)
        except _Retryable as retryable:
            outcome = retryable.reason
            raise
        except ApiProblem as problem:
            outcome = problem.slug
            raise
        except _TokenRefused:
            outcome = "vonage-401"
            raise
        finally:
            VONAGE_DURATION.observe(time.perf_counter() - started)
            VONAGE_OUTCOMES.labels(outcome).inc()

    def _call_vonage(self, body: bytes) -> str:
        """POST the SMS through our transport and read the answer's status ourselves."""
        try:
            response = self.transport.post(body)
        except (requests.ReadTimeout, AnswerTimedOut):
            raise Problem.UPSTREAM_TIMEOUT.error(timeout_s=self.settings.vonage_timeout_s) from None
        except OutcomeUnknown:
            raise Problem.UPSTREAM_TIMEOUT.error(
                "The connection to Vonage closed after the request was sent, before an answer: "
                "the SMS may or may not have been sent."
            ) from None
        except requests.ConnectionError:  # the transport lets through only what sent nothing
            raise _Retryable("no-connection", None) from None
        except requests.RequestException as exc:
            failure = f"The call to Vonage failed ({type(exc).__name__})."
            raise Problem.UPSTREAM_ERROR.error(failure) from None
        return _message_uuid(response)


def init_gateway(app: Flask, settings: Settings) -> None:
    """Attach the app's one gateway to Vonage (get_gateway reaches it)."""
    app.extensions[_EXTENSION] = SmsGateway(VonageTransport(settings), settings)


def get_gateway(app: Flask | None = None) -> SmsGateway:
    """The gateway of `app`, by default of the app handling the current request."""
    return (current_app if app is None else app).extensions[_EXTENSION]


def send_sms(message: SmsRequest) -> str:
    """Send one SMS through the app's gateway and return its message_uuid."""
    return get_gateway().send(message)


def vonage_body(message: SmsRequest) -> bytes:
    """The JSON body of the Messages API call, checked by the SDK's model."""
    fields = to_vonage_sms(message).model_dump(by_alias=True, exclude_none=True)
    return json.dumps(fields, separators=(",", ":")).encode()


def to_vonage_sms(message: SmsRequest) -> Sms:
    """Build the SDK's model; Vonage wants numbers without their leading +."""
    options = SmsOptions(encoding_type=message.encoding_type) if message.encoding_type else None
    return Sms(
        to=without_plus(message.to),
        from_=without_plus(message.sender),
        text=message.encoded.text,
        client_ref=message.client_ref,
        ttl=message.ttl,
        sms=options,
    )


@dataclass
class _Retryable(Exception):
    reason: str
    retry_after: float | None


@dataclass
class _TokenRefused(Exception):
    """Vonage answered 401: nothing was accepted, so one more try with a new token is safe."""

    response: requests.Response


def _message_uuid(response: requests.Response) -> str:
    """Return the message_uuid of a 2xx answer, or raise what the status means for us."""
    status = response.status_code
    if status == 401:
        raise _TokenRefused(response)
    if not 200 <= status < 300:  # redirects are not followed: a 3xx is an upstream error
        raise _classify_status(response)
    message_uuid = _json(response).get("message_uuid")
    if not isinstance(message_uuid, str) or not message_uuid:
        unreadable = "Vonage accepted the request but its answer was unreadable."
        raise Problem.UPSTREAM_ERROR.error(unreadable)
    return message_uuid


def _classify_status(response: requests.Response) -> Exception:
    status = response.status_code
    if status in RETRYABLE_STATUSES:
        return _Retryable(f"vonage-{status}", _retry_after(response))
    if status in ACCOUNT_HINTS:
        return _account_error(response)
    reason = _vonage_reason(response)
    if status in (400, 422):
        if any(word in reason.lower() for word in _RECIPIENT_WORDS) or _names_field(response, "to"):
            return Problem.RECIPIENT_REJECTED.error(reason=reason)
        return Problem.UPSTREAM_REJECTED.error(reason=reason)
    return Problem.UPSTREAM_ERROR.error(vonage_status=status, reason=reason)


def _account_error(response: requests.Response) -> ApiProblem:
    status = response.status_code
    logger.error(
        "vonage account problem",
        extra={"fields": {"vonage_status": status, "hint": ACCOUNT_HINTS[status]}},
    )
    return Problem.UPSTREAM_ACCOUNT_ERROR.error(vonage_status=status)


def _unavailable(retryable: _Retryable) -> ApiProblem:
    retry_after = math.ceil(retryable.retry_after or DEFAULT_RETRY_AFTER_S)
    return Problem.UPSTREAM_UNAVAILABLE.error(headers={"Retry-After": str(retry_after)})


def _backoff(retries_done: int) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**retries_done))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), MAX_RETRY_AFTER_S) if value.isdigit() else None


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _vonage_reason(response: requests.Response) -> str:
    body = _json(response)
    parts = [str(body[k]) for k in ("title", "detail") if isinstance(body.get(k), (str, int))]
    return (": ".join(parts) or f"HTTP {response.status_code}")[:300]


def _names_field(response: requests.Response, name: str) -> bool:
    problems = _json(response).get("invalid_parameters")
    return isinstance(problems, list) and any(
        isinstance(p, dict) and p.get("name") == name for p in problems
    )
