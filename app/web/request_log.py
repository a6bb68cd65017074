"""One JSON line per request on stdout, with a request id; no secrets, no text, no full numbers."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, request

from ..metrics import method_label, observe_request
from .request_context import RequestState, request_state

logger = logging.getLogger("sms_service")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_DIGIT = re.compile(r"\d")  # any script's digits: a number can be spelled with separators
_TRACEPARENT = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace_id>[0-9a-f]{32})-(?P<parent_id>[0-9a-f]{16})"
    r"-[0-9a-f]{2}(?P<rest>-.*)?"
)


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object: time, level, event, then its `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = record.exc_info[
                0
            ].__name__  # the type only: tracebacks can hold data
        return json.dumps(line, default=str)


class StdoutHandler(logging.StreamHandler):
    """Write to whatever sys.stdout is at the time of the record (tests swap it)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: str) -> None:
    """Send our records and the libraries' as JSON lines to stdout."""
    handler = StdoutHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDK logs its headers (the JWT among them) at DEBUG, and full error bodies at WARNING;
    # our own lines already carry the outcome.
    logging.getLogger("vonage").setLevel(logging.ERROR)


def init_request_log(app: Flask) -> None:
    """Start each request's log (its id, its clock) before anything else, and write its line."""
    app.before_request(_start)
    app.after_request(_finish)


def _start() -> None:
    state = request_state()
    state.started = time.perf_counter()
    presented = request.headers.get("X-Request-ID", "")
    state.request_id = presented if _REQUEST_ID.fullmatch(presented) else uuid.uuid4().hex
    state.trace_id = trace_id_of(request.headers.get("traceparent", ""))


def trace_id_of(traceparent: str) -> str | None:
    """The trace id of a W3C traceparent header, so a call can be followed across services."""
    match = _TRACEPARENT.fullmatch(traceparent.strip())
    if not match or match["version"] == "ff" or set(match["trace_id"]) == {"0"}:
        return None
    if set(match["parent_id"]) == {"0"} or (match["version"] == "00" and match["rest"]):
        return None
    return match["trace_id"]


def _finish(response: Response) -> Response:
    state = request_state()
    response.headers["X-Request-ID"] = state.request_id
    duration_s = time.perf_counter() - state.started
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    observe_request(route, request.method, response.status_code, duration_s)
    fields = {
        "request_id": state.request_id,
        "method": method_label(request.method),
        "path": _loggable_path(),
        "status": response.status_code,
        "duration_ms": round(duration_s * 1000, 2),
        **_learned(state),
    }
    logger.info("request", extra={"fields": fields})
    return response


def _learned(state: RequestState) -> dict[str, object]:
    """What the request learned on its way, for its log line: only what it did learn."""
    fields = {
        "api_key": state.api_key_name,
        "to": state.to_masked,
        "segments": state.segments,
        "message_uuid": state.message_uuid,
        "error": state.problem.slug if state.problem else None,
        "trace_id": state.trace_id,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _loggable_path() -> str:
    """The route template when one matched; otherwise the path with every digit masked
    (`/opt-outs/+1-415-555-0190/x` holds a number however it is split)."""
    if request.url_rule is not None:
        return request.url_rule.rule
    return _DIGIT.sub("*", request.path[:200])
