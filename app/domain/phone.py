"""Phone numbers: parsing callers' input, the forms a number is written in, and masking.

Our API writes E.164 with its `+` (+442071838750); Vonage's Messages API writes the same
digits without it (442071838750), in what it sends us and in what it accepts. Every `+`
added or taken away goes through with_plus and without_plus, here.
"""

from __future__ import annotations

import re

import phonenumbers

EXAMPLE = "e.g. +442071838750"
_PHONE_CHARACTERS = re.compile(r"[0-9+()./ -]{1,40}")
# E.164 digits, with or without the +, as Vonage writes them in webhooks. [0-9] is ASCII
# only, unlike \d and str.isdigit, which take Arabic-Indic or fullwidth digits too; [1-9]
# first refuses a 00 prefix.
_E164 = re.compile(r"\+?[1-9][0-9]{6,14}")


class InvalidNumber(ValueError):
    """The text is not a phone number we can send to; the message says why."""


def parse_number(value: object, region: str | None = None) -> phonenumbers.PhoneNumber:
    """Parse a valid phone number; international (+…) unless a default region is given."""
    if not isinstance(value, str) or not _PHONE_CHARACTERS.fullmatch(value.strip()):
        raise InvalidNumber(f"must be a phone number as a string of digits, {EXAMPLE}")
    value = value.strip()
    if region is None and not value.startswith("+"):
        raise InvalidNumber(f"must be in international format starting with +, {EXAMPLE}")
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidNumber(f"is not a valid phone number, {EXAMPLE}")
    return number


def parse_webhook_number(value: str) -> phonenumbers.PhoneNumber:
    """Parse a number from a Vonage webhook: E.164 in ASCII digits, without + or 00 (a + is
    tolerated), and valid; anything else (a sender ID, other scripts' digits) is refused."""
    if not is_e164(value):
        raise InvalidNumber("must be E.164 in ASCII digits, without a 00 prefix")
    return parse_number(with_plus(value))


def is_e164(text: str) -> bool:
    """Tell whether `text` is E.164 in ASCII digits, with or without its +, with no 00."""
    return bool(_E164.fullmatch(text))


def e164(number: phonenumbers.PhoneNumber) -> str:
    """The number as our API writes it: E.164 with its +."""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def with_plus(number: str) -> str:
    """E.164 with its leading +, whether `number` came with one (ours) or not (Vonage's)."""
    return "+" + number.removeprefix("+")


def without_plus(number: str) -> str:
    """The number as Vonage writes it: E.164 digits with no +. A sender ID has none to lose."""
    return number.lstrip("+")


def mask_number(e164_number: str, country_code: int) -> str:
    """Keep the country code and the last two digits: +44********50."""
    digits = without_plus(e164_number)
    prefix = str(country_code)
    hidden = max(0, len(digits) - len(prefix) - 2)
    return f"+{prefix}{'*' * hidden}{digits[-2:]}"


def mask_digits(digits: str) -> str:
    """Mask a number whose country code we do not know: all but the last two digits."""
    return "*" * max(0, len(digits) - 2) + digits[-2:]
