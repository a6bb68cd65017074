"""The body of a request: JSON, UTF-8, bounded in size and time; and a send's body read
as an SmsRequest (app/domain/sms_request.py), with every bad field named in one 400."""

from __future__ import annotations

import codecs
import functools
import json
from typing import IO

from flask import request
from werkzeug.wsgi import LimitedStream

from ..domain.problems import Problem
from ..domain.sms_request import InvalidFields, SendRules, SmsRequest, parse_send_sms
from .problems import (
    InvalidPayload,
    RequestTimeout,
    payload_too_large_problem,
    request_timeout_problem,
)
from .request_context import request_state

MAX_BODY_BYTES = 16 * 1024
UTF8_NAMES = ("utf-8", "utf8")


def require_json(view):
    """Refuse a body that is not JSON (415) or too large (413); keep it in the request's
    state (raw_body).

    The body is read before the API key is looked at: a braked client's answer then takes
    as long whether its key is right or not. Reading it is bounded by the server's read
    deadline (app/server/worker.py), so a slow body costs a greenlet for 10 s at most.
    """

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if request.mimetype != "application/json":
            raise Problem.UNSUPPORTED_MEDIA_TYPE.error()
        charset = request.mimetype_params.get("charset")
        if charset is not None and charset.strip().lower() not in UTF8_NAMES:
            raise Problem.UNSUPPORTED_MEDIA_TYPE.error(
                "Send the body as UTF-8 JSON: Content-Type application/json, with no charset "
                "or charset=utf-8."
            )
        request_state().raw_body = read_body()
        return view(*args, **kwargs)

    return wrapped


class _DuplicateKey(ValueError):
    """A JSON object names the same key twice: which one wins is anyone's guess."""


def parse_json_object(raw: bytes) -> object:
    """Return the parsed JSON body; 400 naming `body` when it is not JSON, or ambiguous."""
    text = _utf8_text(raw)
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise InvalidPayload({"body": f"has the key {exc} more than once"}) from None
    except (ValueError, RecursionError) as exc:
        position = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise InvalidPayload({"body": f"must be valid JSON (UTF-8){position}"}) from None


def parse_sms_request(raw: bytes, settings: SendRules) -> SmsRequest:
    """Read a POST /send-sms body as the SMS it asks for, or raise InvalidPayload (400): about
    the body itself when it is not one JSON object, else naming every bad field at once."""
    try:
        return parse_send_sms(parse_json_object(raw), settings)
    except InvalidFields as exc:
        raise InvalidPayload(exc.errors) from None


def read_body() -> bytes:
    """Read the whole body, refusing it (413) once it passes MAX_BODY_BYTES.

    A declared Content-Length over the limit is refused unread. Otherwise one byte past the
    limit is asked for, which tells a body of exactly MAX_BODY_BYTES from a longer one (a
    chunked body declares no length). A body that stalls past the server's read deadline
    (app/server/worker.py) is a 408.
    """
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise payload_too_large_problem(MAX_BODY_BYTES)
    stream = _body_stream()
    chunks, size = [], 0
    while size <= MAX_BODY_BYTES:
        try:
            chunk = stream.read(MAX_BODY_BYTES + 1 - size)
        except RequestTimeout:
            raise request_timeout_problem() from None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_BODY_BYTES:
        raise payload_too_large_problem(MAX_BODY_BYTES)
    return b"".join(chunks)


def _utf8_text(raw: bytes) -> str:
    """Decode the body as UTF-8, the only encoding JSON may use between systems (RFC 8259).

    json.loads on bytes would guess UTF-16 or UTF-32 and skip a byte order mark; here
    they are refused. UTF-16 or UTF-32 of ASCII text is valid UTF-8 with NUL bytes, and a
    raw NUL is never valid JSON, so a NUL names the likely cause.
    """
    if raw.startswith(codecs.BOM_UTF8):
        raise InvalidPayload({"body": "must be UTF-8 without a byte order mark"})
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPayload({"body": "must be encoded as UTF-8"}) from None
    if "\x00" in text:
        raise InvalidPayload({"body": "must be encoded as UTF-8 (it looks like UTF-16 or UTF-32)"})
    return text


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """Build an object, refusing a key given twice (json keeps the last one silently)."""
    found: dict[str, object] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(json.dumps(key[:40]))  # quoted, and short: it is echoed
        found[key] = value
    return found


def _body_stream() -> IO[bytes]:
    """The body's stream, with room for the byte past MAX_BODY_BYTES.

    When the server ends the stream at the body's end (`wsgi.input_terminated`: gunicorn,
    for chunked and sized bodies alike), werkzeug caps it at MAX_CONTENT_LENGTH and refuses
    even to ask for one byte more, so a body of exactly 16 KiB was a 413 under gunicorn.
    Its cap here is one byte higher; read_body itself refuses that byte."""
    if request.environ.get("wsgi.input_terminated"):
        return LimitedStream(request.environ["wsgi.input"], MAX_BODY_BYTES + 1, is_max=True)
    return request.stream  # capped at its Content-Length, already checked


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
