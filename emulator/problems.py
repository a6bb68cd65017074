"""Vonage's error bodies, copied in shape from its spec and SDK fixtures (shared/vonage)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

DOCS = "https://developer.nexmo.com/api-errors"
MESSAGES_DOCS = "https://developer.vonage.com/api-errors/messages"


@dataclass(frozen=True)
class Problem:
    """One error answer: its HTTP status and the Vonage fields of its JSON body."""

    status: int
    type: str
    title: str
    detail: str
    invalid_parameters: list[dict[str, str]] = field(default_factory=list)

    def body(self) -> dict[str, object]:
        """Render the body with a fresh instance id, as Vonage gives each error its own trace."""
        body: dict[str, object] = {
            "type": self.type,
            "title": self.title,
            "detail": self.detail,
            "instance": str(uuid.uuid4()),
        }
        if self.invalid_parameters:
            body["invalid_parameters"] = self.invalid_parameters
        return body


UNAUTHORIZED = Problem(  # fixtures/python-sdk/http_client/401.json
    401, f"{DOCS}#unauthorized", "Unauthorized", "You did not provide correct credentials."
)
LOW_BALANCE = Problem(  # fixtures/python-sdk/messages/low_balance_error.json
    402,
    f"{DOCS}/#low-balance",
    "Low balance",
    "This request could not be performed due to your account balance being low.",
)
NON_WHITELISTED = Problem(  # x-errors 1160
    422,
    f"{MESSAGES_DOCS}#1160",
    "Non White-listed Destination",
    "The phone number you set in `to` is not in your pre-approved destination list (whitelist). "
    "To send messages to this phone number, add it using the Dashboard.",
)
INVALID_RECIPIENT = Problem(  # spec ErrorRecipient (its anchor #110 is the spec's own typo)
    422,
    "https://developer.nexmo.com/api-errors/messages-olympus#110",
    "Invalid recipient",
    "The `to` parameter is invalid for the given channel.",
)
THROTTLED = Problem(  # spec ErrorThrottled
    429,
    "https://developer.nexmo.com/api-errors/messages-olympus#1000",
    "Rate Limit Hit",
    "Please wait, then retry your request",
)
INTERNAL = Problem(  # spec ErrorInternal
    500,
    "https://developer.nexmo.com/api-errors/messages-olympus#1000",
    "Internal error",
    "There was an error processing your request in the Platform.",
)
UNAVAILABLE = Problem(  # no published body; same fields as every other Vonage error
    503,
    f"{DOCS}#service-unavailable",
    "Service Unavailable",
    "The service is temporarily unavailable. Please try again later.",
)
NOT_FOUND = Problem(404, f"{DOCS}#not-found", "Not Found", "The requested resource does not exist.")
METHOD_NOT_ALLOWED = Problem(
    405, f"{DOCS}#method-not-allowed", "Method Not Allowed", "This method is not supported here."
)
TOO_LARGE = Problem(
    413, f"{DOCS}#payload-too-large", "Payload Too Large", "The request body is too large."
)


def invalid_json(detail: str) -> Problem:
    """Describe a body that is not a JSON object (fixtures/php-sdk/messages/bad-request.json)."""
    return Problem(
        422, f"{DOCS}#invalid-json", "The request body did not contain valid JSON", detail
    )


def invalid_params(reasons: dict[str, str]) -> Problem:
    """Name every bad field, as fixtures/python-sdk/messages/invalid_error.json does."""
    return Problem(
        422,
        f"{MESSAGES_DOCS}#1150",
        "Invalid params",
        "The value of one or more parameters is invalid.",
        [{"name": name, "reason": reason} for name, reason in reasons.items()],
    )
