"""Count SMS segments the way carriers bill them, so tests can assert on cost.

Written apart from app/domain/sms_encoding.py on purpose: the emulator stands in for Vonage,
and the end-to-end tests compare the service's count with this one. One shared copy
would make that comparison agree with itself.
"""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 default alphabet (one septet each); ESC is left out: it only prefixes extensions.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: ESC + char, so two septets that must stay in one segment.
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM_SINGLE, GSM_PART = 160, 153  # septets; a UDH header takes 7 septets in a concatenated part
UCS2_SINGLE, UCS2_PART = 70, 67  # UTF-16 code units


@dataclass(frozen=True)
class Segmentation:
    """How a text travels: its encoding and how many SMS parts it needs."""

    encoding: str  # "GSM-7" or "UCS-2"
    segments: int


def is_gsm7(text: str) -> bool:
    """Tell whether every character fits the GSM-7 alphabet (with extensions)."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def segment(text: str, encoding_type: str | None = None) -> Segmentation:
    """Choose the encoding as Vonage's "auto" does and count the parts; "unicode" forces UCS-2."""
    if encoding_type != "unicode" and is_gsm7(text):
        sizes = [2 if ch in GSM_EXTENSION else 1 for ch in text]
        return Segmentation("GSM-7", _count(sizes, GSM_SINGLE, GSM_PART))
    sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]  # astral chars are surrogate pairs
    return Segmentation("UCS-2", _count(sizes, UCS2_SINGLE, UCS2_PART))


def _count(sizes: list[int], single: int, part: int) -> int:
    if sum(sizes) <= single:
        return 1
    # Greedy fill: a unit that would straddle a boundary moves whole to the next part.
    parts, used = 1, 0
    for size in sizes:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts
