"""The soak's traffic: a weighted mix of recipients, each with the answer docs/api.md prescribes.

The emulator has no random-fault mode, so the load generator picks each request's
recipient from the emulator's magic numbers; the expected status is then known per request.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import requests

from emulator.magic import number_for


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix and what the service must answer to it."""

    name: str
    to: str  # E.164, as callers send it
    weight: float  # percent of requests
    status: int
    slug: str | None  # the problem type's last path segment; None for a 200
    resend_safe: bool  # the service may retry it (Vonage certainly did not accept it)


MIX = (
    Kind("normal", "+14155550100", 95.0, 200, None, resend_safe=False),
    Kind("throttled (429)", "+" + number_for("throttled-always"), 2.0, 503,
         "upstream-unavailable", resend_safe=True),
    Kind("unavailable (503)", "+" + number_for("service-unavailable"), 1.0, 503,
         "upstream-unavailable", resend_safe=True),
    Kind("internal error (500)", "+" + number_for("internal-error"), 1.0, 502,
         "upstream-error", resend_safe=False),
    Kind("hang", "+" + number_for("hang"), 0.5, 504, "upstream-timeout", resend_safe=False),
    Kind("drop", "+" + number_for("drop"), 0.5, 504, "upstream-timeout", resend_safe=False),
)  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """What the service answered to one request of the mix."""

    kind: Kind
    status: int  # 0: no HTTP answer at all
    slug: str | None
    message_uuid: str | None

    @property
    def as_prescribed(self) -> bool:
        return self.status == self.kind.status and self.slug == self.kind.slug


def make_sender(service_url: str, api_key: str, seed: int) -> Callable[[], Answer]:
    """A sender with its own session and random stream; each call sends one SMS of the mix."""
    session = requests.Session()
    session.trust_env = False
    chooser = random.Random(seed)
    kinds, weights = list(MIX), [kind.weight for kind in MIX]
    headers = {"X-API-Key": api_key}

    def send() -> Answer:
        kind = chooser.choices(kinds, weights)[0]
        body = {"to": kind.to, "text": "Soak message"}
        try:
            answer = session.post(service_url + "/send-sms", json=body, headers=headers, timeout=30)
        except requests.RequestException:
            return Answer(kind, 0, None, None)
        try:
            data = answer.json()
        except ValueError:
            data = {}
        slug = str(data["type"]).rsplit("/", 1)[-1] if "type" in data else None
        return Answer(kind, answer.status_code, slug, data.get("message_uuid"))

    return send
