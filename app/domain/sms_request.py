"""The SMS a POST /send-sms asks for: SmsRequest, or every bad field named at once.

Plain rules over the parsed JSON body; reading the body itself (size, UTF-8, JSON) is
app/web/body.py's, which answers InvalidFields as a 400 problem.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Protocol

from .destinations import Destination, destination_of
from .phone import EXAMPLE, InvalidNumber, e164, parse_number, without_plus
from .sms_encoding import Encoded, encode, non_gsm7_characters, smart_encode

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


class InvalidFields(ValueError):
    """A request with bad fields: each named, with what is wrong with it, all at once."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(", ".join(errors))
        self.errors = errors


class SendRules(Protocol):
    """What reading a send needs of the configuration (app.settings.Settings has it all)."""

    @property
    def vonage_number(self) -> str: ...

    @property
    def senders(self) -> tuple[str, ...]: ...

    @property
    def default_region(self) -> str | None: ...

    @property
    def max_segments(self) -> int: ...


@dataclass(frozen=True)
class SmsRequest:
    """A validated SMS, ready to send."""

    to: str  # E.164 with the leading +
    sender: str
    encoded: Encoded
    destination: Destination = field(compare=False)  # country and type, judged at the gate
    client_ref: str | None = None
    ttl: int | None = None
    encoding_type: str | None = None  # passed to Vonage as sms.encoding_type

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


def parse_send_sms(body: object, settings: SendRules) -> SmsRequest:
    """Return an SmsRequest, or raise InvalidFields naming every bad field."""
    if not isinstance(body, dict):
        raise InvalidFields({"body": "must be a JSON object"})
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
        raise InvalidFields(errors)
    return SmsRequest(
        to=e164(number),
        sender=sender,
        encoded=encoded,
        destination=destination_of(number),
        client_ref=client_ref,
        ttl=ttl,
        encoding_type=encoding_type,
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


def _parse_sender(value: object, settings: SendRules, errors: dict[str, str]) -> str:
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
    digits = without_plus(stripped)
    return digits if digits.isdigit() else stripped


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
