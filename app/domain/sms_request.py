"""Turn a POST /send-sms body into an SmsRequest, or name every bad field at once."""

from __future__ import annotations

import codecs
import functools
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import IO

from flask import g, request
from werkzeug.wsgi import LimitedStream

from ..settings import Settings
from ..web.problems import (
    ApiProblem,
    InvalidPayload,
    RequestTimeout,
    payload_too_large_problem,
    request_timeout_problem,
)
from .phone import EXAMPLE, InvalidNumber, e164, parse_number
from .sms_encoding import Encoded, encode, non_gsm7_characters, smart_encode

MAX_BODY_BYTES = 16 * 1024
UTF8_NAMES = ("utf-8", "utf8")
VONAGE_MAX_TEXT_CHARACTERS = 1000  # the Messages API's own limit on `text`
MAX_CLIENT_REF = 100
TTL_RANGE = (20, 604800)
ENCODINGS = ("auto", "text", "unicode")
FIELDS = ("to", "text", "from", "client_ref", "ttl", "encoding", "smart_encoding")
# An answer names a few unknown fields, each cut short, and counts the rest: echoing them all
# made a 16 KiB body of long names a 40 KB answer, kept 24 h under an Idempotency-Key.
UNKNOWN_FIELDS_SHOWN = 3
FIELD_NAME_SHOWN = 32
_SURROGATE = re.compile("[\ud800-\udfff]")
# Control characters a text must not carry: C0 but tab, newline, carriage return and form
# feed (GSM-7 has all but tab; tab is sent as UCS-2, or a space with smart_encoding), DEL, C1.
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
# What an identifier such as client_ref must not carry: controls (Cc), format characters
# (Cf: bidi overrides, zero-width ones), surrogates (Cs), line and paragraph separators.
_NOT_PRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@dataclass(frozen=True)
class SmsRequest:
    """A validated SMS, ready to send."""

    to: str  # E.164 with the leading +
    sender: str
    encoded: Encoded
    client_ref: str | None = None
    ttl: int | None = None
    encoding_type: str | None = None  # passed to Vonage as sms.encoding_type
    country_code: int = field(default=0, compare=False)

    def summary(self) -> dict[str, object]:
        """Describe the SMS for the caller, without the text."""
        summary: dict[str, object] = {
            "to": self.to,
            "from": self.sender,
            "encoding": self.encoded.encoding,
            "segments": self.encoded.segments,
            "characters": self.encoded.characters,
        }
        if self.client_ref is not None:
            summary["client_ref"] = self.client_ref
        return summary


def require_json(view):
    """Refuse a body that is not JSON (415) or too large (413); keep it in g.raw_body.

    The body is read before the API key is looked at: a braked client's answer then takes
    as long whether its key is right or not. Reading it is bounded by the server's read
    deadline (app/server/worker.py), so a slow body costs a greenlet for 10 s at most.
    """

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if request.mimetype != "application/json":
            raise ApiProblem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as JSON with Content-Type: application/json.",
            )
        charset = request.mimetype_params.get("charset")
        if charset is not None and charset.strip().lower() not in UTF8_NAMES:
            raise ApiProblem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as UTF-8 JSON: Content-Type application/json, with no charset "
                "or charset=utf-8.",
            )
        g.raw_body = read_body()
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


def parse_send_sms(body: object, settings: Settings) -> SmsRequest:
    """Return an SmsRequest, or raise InvalidPayload naming every bad field."""
    if not isinstance(body, dict):
        raise InvalidPayload({"body": "must be a JSON object"})
    errors = _unknown_fields(body)
    number = _parse_to(body.get("to"), settings.default_region, errors)
    sender = _parse_sender(body.get("from"), settings, errors)
    client_ref = _optional_string(body, "client_ref", MAX_CLIENT_REF, errors)
    ttl = _optional_ttl(body, errors)
    encoding_type = _optional_choice(body, "encoding", ENCODINGS, errors)
    smart = body.get("smart_encoding")
    smart = False if smart is None else smart  # null means absent, as for the other options
    if not isinstance(smart, bool):
        errors["smart_encoding"] = "must be true or false"
    encoded = _parse_text(
        body.get("text"), smart is True, encoding_type, settings.max_segments, errors
    )
    if errors:
        raise InvalidPayload(errors)
    return SmsRequest(
        to=e164(number),
        sender=sender,
        encoded=encoded,
        client_ref=client_ref,
        ttl=ttl,
        encoding_type=encoding_type,
        country_code=number.country_code,
    )


def _unknown_fields(body: dict) -> dict[str, str]:
    """Name the first few fields we do not know, each cut short, and count the others."""
    unknown = [name for name in body if name not in FIELDS]
    errors = {_cut(name): "is not a known field" for name in unknown[:UNKNOWN_FIELDS_SHOWN]}
    if len(unknown) > UNKNOWN_FIELDS_SHOWN:
        more = f"holds {len(unknown) - UNKNOWN_FIELDS_SHOWN} more unknown field(s)"
        errors["body"] = f"{errors['body']}; the body {more}" if "body" in errors else more
    return errors


def _cut(name: str) -> str:
    return name if len(name) <= FIELD_NAME_SHOWN else name[: FIELD_NAME_SHOWN - 1] + "…"


def _parse_to(value: object, region: str | None, errors: dict[str, str]):
    if value is None:
        errors["to"] = f"is required: the recipient's phone number, {EXAMPLE}"
        return None
    try:
        return parse_number(value, region)
    except InvalidNumber as exc:
        errors["to"] = str(exc)
        return None


def _parse_sender(value: object, settings: Settings, errors: dict[str, str]) -> str:
    if value is None:
        return settings.vonage_number
    allowed = {_sender_key(sender): sender for sender in settings.senders}
    if not isinstance(value, str) or _sender_key(value) not in allowed:
        errors["from"] = "must be one of the senders this service is configured with"
        return settings.vonage_number
    return allowed[_sender_key(value)]


def _sender_key(sender: str) -> str:
    """Compare numbers with or without their +; sender IDs exactly."""
    stripped = sender.strip()
    return stripped.lstrip("+") if stripped.lstrip("+").isdigit() else stripped


def _parse_text(
    value: object, smart: bool, encoding_type: str | None, max_segments: int, errors: dict[str, str]
) -> Encoded | None:
    if not isinstance(value, str) or not value.strip():
        errors["text"] = "is required: a non-empty string"
        return None
    if _SURROGATE.search(value):
        errors["text"] = "must be valid Unicode (it has an unpaired surrogate)"
        return None
    if _TEXT_CONTROLS.search(value):
        errors["text"] = (
            "must not contain control characters (U+0000-U+001F but tab, newline, carriage "
            "return and form feed; U+007F-U+009F)"
        )
        return None
    text = smart_encode(value) if smart else value
    if _is_blank(value) or _is_blank(text):
        errors["text"] = (
            "must have a visible character: it is only whitespace and invisible format "
            "characters (such as zero-width spaces or soft hyphens)"
            + (", once smart_encoding has replaced them" if smart else "")
        )
        return None
    if encoding_type == "text" and non_gsm7_characters(text):
        count = len(non_gsm7_characters(text))
        errors["text"] = (
            f"has {count} character(s) outside GSM-7, which encoding 'text' would lose; "
            "use encoding 'auto' or 'unicode', or smart_encoding"
        )
        return None
    encoded = encode(text, force_unicode=encoding_type == "unicode")
    if encoded.segments > max_segments:
        errors["text"] = (
            f"needs {encoded.segments} {encoded.encoding} segments; "
            f"the most allowed is {max_segments}"
        )
    elif encoded.characters > VONAGE_MAX_TEXT_CHARACTERS:
        errors["text"] = f"must be at most {VONAGE_MAX_TEXT_CHARACTERS} characters"
    return encoded


def _is_blank(text: str) -> bool:
    """Tell whether a phone would show nothing: only whitespace and format characters
    (Unicode category Cf: zero-width spaces and joiners, soft hyphens, BOMs, bidi marks)."""
    return all(char.isspace() or unicodedata.category(char) == "Cf" for char in text)


def _optional_string(body: dict, name: str, max_length: int, errors: dict[str, str]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        errors[name] = f"must be a string of 1 to {max_length} characters"
        return None
    if any(unicodedata.category(char) in _NOT_PRINTABLE for char in value):
        errors[name] = (
            "must be printable text: no control, format (bidi, zero-width) or line "
            "separator characters"
        )
        return None
    return value


def _optional_ttl(body: dict, errors: dict[str, str]) -> int | None:
    value = body.get("ttl")
    if value is None:
        return None
    low, high = TTL_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors["ttl"] = f"must be whole seconds from {low} to {high}"
        return None
    return value


def _optional_choice(body: dict, name: str, choices: tuple[str, ...], errors: dict[str, str]):
    value = body.get(name)
    if value is None:
        return None
    if value not in choices:
        errors[name] = f"must be one of {', '.join(choices)}"
        return None
    return value
