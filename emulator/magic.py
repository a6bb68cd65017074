"""The one table of recipient numbers that trigger each outcome, like Twilio's test numbers.

All are in Ofcom's drama range 020 7946 0xxx: never a real subscriber, yet valid for
libphonenumber, so a service's own number check lets them through to the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from emulator import problems
from emulator.problems import Problem


class Action(Enum):
    """What the emulator does with a request, beyond the ordinary 202."""

    ACCEPT = "accept"  # 202; webhooks report the outcome's final status
    FAIL = "fail"  # answer with the outcome's problem
    FAIL_ONCE = "fail_once"  # the problem the first time, then ACCEPT
    HANG = "hang"  # read the request, answer nothing until the client has given up
    DROP = "drop"  # read the request, close the connection without a word


@dataclass(frozen=True)
class Outcome:
    """One row of the table."""

    name: str
    action: Action
    problem: Problem | None = None
    final_status: str = "delivered"  # the last status webhook of an accepted message
    error_code: str | None = None  # status webhook error.title for rejected/undeliverable
    error_detail: str | None = None


DELIVERED = Outcome("delivered", Action.ACCEPT)

MAGIC_NUMBERS: dict[str, Outcome] = {
    "442079460901": Outcome("non-whitelisted", Action.FAIL, problems.NON_WHITELISTED),
    "442079460902": Outcome("invalid-recipient", Action.FAIL, problems.INVALID_RECIPIENT),
    "442079460903": Outcome("low-balance", Action.FAIL, problems.LOW_BALANCE),
    "442079460904": Outcome("bad-credentials", Action.FAIL, problems.UNAUTHORIZED),
    "442079460905": Outcome("throttled-once", Action.FAIL_ONCE, problems.THROTTLED),
    "442079460906": Outcome("throttled-always", Action.FAIL, problems.THROTTLED),
    "442079460907": Outcome("internal-error", Action.FAIL, problems.INTERNAL),
    "442079460908": Outcome("service-unavailable", Action.FAIL, problems.UNAVAILABLE),
    "442079460909": Outcome("hang", Action.HANG),
    "442079460910": Outcome("drop", Action.DROP),
    "442079460911": Outcome(
        "rejected",
        Action.ACCEPT,
        final_status="rejected",
        error_code="1250",
        error_detail="Unroutable - The chosen route to send your message is not available.",
    ),
    "442079460912": Outcome(
        "undeliverable",
        Action.ACCEPT,
        final_status="undeliverable",
        error_code="1190",
        error_detail="Absent Subscriber Permanent - `to` is no longer active.",
    ),
}


def outcome_for(to: str) -> Outcome:
    """Look up what a recipient triggers; every other number is simply delivered."""
    return MAGIC_NUMBERS.get(to, DELIVERED)


def number_for(name: str) -> str:
    """Find the magic number of an outcome by name, so callers never hard-code digits."""
    return next(number for number, outcome in MAGIC_NUMBERS.items() if outcome.name == name)
