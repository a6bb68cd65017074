"""Opt-outs: the keywords a recipient texts, and the rules of the opt-out list.

A text that is, as a whole, STOP (or STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) opts its
sender out; START (or UNSTOP, YES) opts them back in.

The opt-out list remembers who put each number on it, and keeps these rules:
- the first date stays: adding a number again never moves `since`;
- a recipient's STOP makes the entry theirs (`sms`), even when a key added it first;
  a key adding it again never takes it from them;
- the recipient's START lifts any entry; an API key lifts only an entry made through
  the API, unless it may override (OPT_OUT_OVERRIDE_KEYS). An entry whose source is
  unknown (kept in Redis before sources were) counts as the recipient's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})

OptOutSource = Literal["sms", "api"]
Keyword = Literal["opt-out", "opt-in"]


def keyword_of(text: str) -> Keyword | None:
    """What a text does to its sender's entry when the whole of it is a keyword; else None."""
    word = text.strip().upper()
    if word in OPT_OUT_WORDS:
        return "opt-out"
    if word in OPT_IN_WORDS:
        return "opt-in"
    return None


@dataclass(frozen=True)
class OptOut:
    """A number on the opt-out list: since when, and who put it there."""

    since: str
    source: OptOutSource | None  # None: kept before sources were (old Redis entries)


@dataclass(frozen=True)
class OptIn:
    """What an attempt to take a number off the opt-out list found and did."""

    found: OptOut | None  # None: the number was not on the list
    removed: bool


def added_opt_out(existing: OptOut | None, since: str, source: OptOutSource) -> OptOut:
    """The entry after adding a number: the first date stays; a STOP makes it the recipient's."""
    if existing is None:
        return OptOut(since, source)
    return OptOut(existing.since, "sms") if source == "sms" else existing


def may_lift(entry: OptOut, by: OptOutSource, override: bool) -> bool:
    """The recipient's START lifts any opt-out; a key only one made through the API, unless
    it may override. An entry of unknown source counts as the recipient's."""
    return by == "sms" or override or entry.source == "api"
