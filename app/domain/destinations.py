"""Destination permissions: the countries and the kinds of number a send may go to.

Against SMS pumping (traffic sent to premium-rate or high-cost numbers, paid for by us and
shared with whoever runs them), a send is refused when its recipient's country is not in
ALLOWED_COUNTRIES (empty: every country), or when its number type is not in
ALLOWED_NUMBER_TYPES. The refusal names the country code or the type, never the number.

Types are phonenumbers' (`phonenumbers.number_type`), written in lower case with hyphens.
Allowed by default: every type but premium-rate, shared-cost, uan, voicemail and pager.
`fixed-line-or-mobile` is allowed because it is the type of every valid NANP number (US,
CA...) and of others whose plans do not tell the two apart; `unknown` is allowed because
phonenumbers types no number it judges valid as unknown (refusing it would refuse nothing),
and a later metadata release must not start refusing numbers by surprise.

A number that belongs to no country (+800, +882...: phonenumbers' region `001`) is
refused whenever ALLOWED_COUNTRIES is set: no ISO code can allow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import phonenumbers
from phonenumbers import PhoneNumberType

from .problems import ApiProblem, Problem

NUMBER_TYPES: dict[str, int] = {
    "fixed-line": PhoneNumberType.FIXED_LINE,
    "mobile": PhoneNumberType.MOBILE,
    "fixed-line-or-mobile": PhoneNumberType.FIXED_LINE_OR_MOBILE,
    "toll-free": PhoneNumberType.TOLL_FREE,
    "premium-rate": PhoneNumberType.PREMIUM_RATE,
    "shared-cost": PhoneNumberType.SHARED_COST,
    "voip": PhoneNumberType.VOIP,
    "personal-number": PhoneNumberType.PERSONAL_NUMBER,
    "pager": PhoneNumberType.PAGER,
    "uan": PhoneNumberType.UAN,
    "voicemail": PhoneNumberType.VOICEMAIL,
    "unknown": PhoneNumberType.UNKNOWN,
}
_TYPE_NAMES = {value: name for name, value in NUMBER_TYPES.items()}
REFUSED_BY_DEFAULT = ("premium-rate", "shared-cost", "uan", "voicemail", "pager")
DEFAULT_NUMBER_TYPES = tuple(name for name in NUMBER_TYPES if name not in REFUSED_BY_DEFAULT)
NON_GEOGRAPHIC = "001"  # phonenumbers' region of numbers that belong to no country


class DestinationRules(Protocol):
    """What the check needs of the configuration (app.settings.Settings has it)."""

    @property
    def allowed_countries(self) -> frozenset[str]: ...  # ISO 3166 codes; empty: every one

    @property
    def allowed_number_types(self) -> frozenset[str]: ...  # names of NUMBER_TYPES


@dataclass(frozen=True)
class Destination:
    """Where a number sends to: enough to judge it, nothing that identifies it."""

    region: str  # ISO 3166 code, or NON_GEOGRAPHIC
    number_type: str  # a name of NUMBER_TYPES
    country_code: int  # the calling code, e.g. 44

    def country(self) -> str:
        """The country as a refusal names it."""
        if self.region == NON_GEOGRAPHIC:
            return f"non-geographic numbers (+{self.country_code})"
        return self.region


def destination_of(number: phonenumbers.PhoneNumber) -> Destination:
    """Classify a valid number by country and type."""
    region = phonenumbers.region_code_for_number(number) or NON_GEOGRAPHIC
    number_type = _TYPE_NAMES.get(phonenumbers.number_type(number), "unknown")
    return Destination(region, number_type, number.country_code or 0)


def destination_refusal(destination: Destination, rules: DestinationRules) -> ApiProblem | None:
    """The 422 for a destination the rules do not allow (the country first), else None."""
    if rules.allowed_countries and destination.region not in rules.allowed_countries:
        return Problem.DESTINATION_NOT_ALLOWED.error(destination=destination.country())
    if destination.number_type not in rules.allowed_number_types:
        return Problem.DESTINATION_NOT_ALLOWED.error(
            destination=f"numbers of type {destination.number_type}"
        )
    return None
