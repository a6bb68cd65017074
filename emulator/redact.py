"""Keep phone numbers out of logs: show only enough to tell test numbers apart."""

from __future__ import annotations


def mask_number(number: object) -> str:
    """Hide all but the last two digits of a phone number."""
    text = str(number)
    return "*" * max(0, len(text) - 2) + text[-2:]
