"""Fuzzing with schemathesis: whatever arrives, no unexpected 5xx, and every answer conforms
to the OpenAPI document. Bounded and seeded, so the suite stays fast and repeatable."""

from __future__ import annotations

import pytest
import responses
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
)

from app import create_app
from app.settings import Settings
from tests.conftest import (
    APPLICATION_ID,
    AUTH,
    SECRET_A,
    UUID,
    VONAGE_SMS_URL,
    generate_private_key_pem,
)

MAX_EXAMPLES = 100  # per operation; about 10 s in all


@pytest.fixture
def vonage():
    """Vonage accepts whatever the fuzzer manages to get through validation."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
        yield rsps


def fuzzed_app():
    """The app as the fuzzer sees it. Webhooks accept unsigned bodies here, so that their
    lenient parser is what gets fuzzed (signatures have tests of their own); limits are high,
    so that requests get past them."""
    environment = {
        "VONAGE_APPLICATION_ID": APPLICATION_ID,
        "VONAGE_PRIVATE_KEY": generate_private_key_pem(),
        "VONAGE_NUMBER": "+447700900000",
        "API_KEYS": f"alpha:{SECRET_A}",
        "WEBHOOK_ALLOW_UNSIGNED": "true",
        "RATE_LIMIT": "100000 per minute",
        "RECIPIENT_RATE_LIMIT": "100000 per minute",
        "AUTH_FAILURE_LIMIT": "100000 per minute",
        "LOG_LEVEL": "WARNING",
        "STATE_PATH": ":memory:",
    }
    return create_app(Settings.from_environ(environment))


# Built at collection: schemathesis's fixture-based loader does not run under pytest 9.
schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzzed_app())

FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # a fixed seed: the same examples on every run
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
# Every other check stays on, not_a_server_error among them: any 5xx fails the test (Vonage is
# stubbed to accept, so the documented upstream 5xx cannot occur). Schema-valid requests may still
# be refused on purpose: phone numbers must be real, senders
# configured, texts within MAX_SEGMENTS.
BY_DESIGN = [positive_data_acceptance]


@schema.exclude(path_regex="^/webhooks/").parametrize()
@FUZZ
def test_api_routes(case):
    case.call_and_validate(headers=AUTH, excluded_checks=BY_DESIGN)


@schema.include(path_regex="^/webhooks/").parametrize()
@FUZZ
def test_webhooks(case):
    """Webhook bodies are read leniently (unknown or odd fields ignored, as Vonage adds them):
    schema-invalid bodies may be taken; and signatures are off here (WEBHOOK_ALLOW_UNSIGNED),
    so a missing or wrong token is not refused: tests/test_webhook_auth.py covers that."""
    case.call_and_validate(
        excluded_checks=[*BY_DESIGN, negative_data_rejection, missing_required_header, ignored_auth]
    )
