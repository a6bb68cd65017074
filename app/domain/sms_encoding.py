"""How an SMS text is encoded and into how many segments it is split.

GSM 03.38: a text made only of GSM-7 characters costs 7-bit septets, 160 in one
part or 153 per part once split (the rest is the concatenation header). The
extension characters cost two septets (escape + char) and are never split
across parts. One character outside GSM-7 makes the whole text UCS-2: 70 UTF-16
code units in one part, 67 per part, a surrogate pair never split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GSM7 = "GSM-7"
UCS2 = "UCS-2"

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_PART_SIZES = {GSM7: (160, 153), UCS2: (70, 67)}

# Look-alikes that force UCS-2 for no good reason, mapped to GSM-7 (like Twilio's Smart Encoding).
SMART_REPLACEMENTS = str.maketrans(
    {
        **dict.fromkeys("‘’‚‛′‹›`´", "'"),
        **dict.fromkeys("“”„‟″«»", '"'),
        **dict.fromkeys("‐‑‒–—―−", "-"),
        **dict.fromkeys(
            "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
            "\u200a\u202f\u205f\u3000",
            " ",
        ),
        **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", ""),
        "…": "...",
        "•": "-",
        "ˆ": "^",
        "˜": "~",
        "\t": " ",
    }
)


@dataclass(frozen=True)
class Encoded:
    """A text as it will be sent: its encoding and exact segment count."""

    text: str = field(repr=False)  # message text stays out of logs and reprs
    encoding: str
    segments: int

    @property
    def characters(self) -> int:
        return len(self.text)


def smart_encode(text: str) -> str:
    """Replace Unicode look-alikes (curly quotes, long dashes, odd spaces) by GSM-7 ones."""
    return text.translate(SMART_REPLACEMENTS)


def is_gsm7(text: str) -> bool:
    """Tell whether every character of `text` exists in the GSM-7 alphabet."""
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def non_gsm7_characters(text: str) -> list[str]:
    """Return the distinct characters of `text` that GSM-7 cannot carry, in order."""
    return list(dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION))


def encode(text: str, force_unicode: bool = False) -> Encoded:
    """Choose the encoding Vonage will use for `text` and count its segments."""
    if is_gsm7(text) and not force_unicode:
        costs = [2 if char in GSM7_EXTENSION else 1 for char in text]
        return Encoded(text, GSM7, count_segments(costs, GSM7))
    costs = [2 if ord(char) > 0xFFFF else 1 for char in text]  # UTF-16 code units
    return Encoded(text, UCS2, count_segments(costs, UCS2))


def count_segments(costs: list[int], encoding: str) -> int:
    """Pack characters of the given costs into parts without splitting any character."""
    single, per_part = _PART_SIZES[encoding]
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return parts
