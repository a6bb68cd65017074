"""In-process tests of the emulator's pure parts: segments, validation, table, TLS, signing."""

from __future__ import annotations

import datetime as dt
import hashlib

import jwt
import phonenumbers
import pytest
from cryptography import x509

from emulator import problems
from emulator.config import Config, ConfigError
from emulator.inbox import render_inbox
from emulator.magic import MAGIC_NUMBERS, Action, number_for, outcome_for
from emulator.redact import mask_number
from emulator.segments import Segmentation, segment
from emulator.signing import SignatureError, sign_webhook, verify_webhook
from emulator.tls import ensure_certificates
from emulator.validation import check_sms, parse_body


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # 160 septets: each € is ESC + e
        ("€" * 81, "GSM-7", 2),
        ("a" * 152 + "€", "GSM-7", 1),  # 154 septets fit one SMS
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),  # 306 septets, but the € moves whole to part 2
        ("\f" * 80, "GSM-7", 1),  # form feed is an extension character too
        ("é" * 160, "GSM-7", 1),  # é is in the basic GSM alphabet
        ("ç" * 1, "UCS-2", 1),  # ç (lower case) is not: UCS-2
        ("ü" * 70 + "ж", "UCS-2", 2),
        ("ж" * 70, "UCS-2", 1),
        ("ж" * 71, "UCS-2", 2),
        ("ж" * 134, "UCS-2", 2),
        ("ж" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # 70 UTF-16 code units
        ("😀" * 36, "UCS-2", 2),
        ("xx" + "😀" * 66, "UCS-2", 3),  # 134 units, but pairs cannot straddle parts
    ],
)
def test_segment_counts_parts_like_a_carrier(text, encoding, segments):
    """GSM-7 is 160/153 septets with two-septet extensions; UCS-2 is 70/67 UTF-16 units."""
    assert segment(text) == Segmentation(encoding, segments)


def test_segment_never_splits_a_surrogate_pair():
    """67 code units fill a part exactly: a pair that would straddle moves to the next part."""
    # 66 units + one pair = 68 > 67, so the pair opens part 2; 134 units total is over 2x67.
    assert segment("ж" * 66 + "😀" + "ж" * 66).segments == 3
    assert segment("ж" * 65 + "😀" + "ж" * 67).segments == 2


def test_segment_unicode_encoding_type_forces_ucs2():
    """sms.encoding_type=unicode sends even plain ASCII as UCS-2."""
    assert segment("hello", "unicode").encoding == "UCS-2"
    assert segment("a" * 71, "unicode").segments == 2
    assert segment("hello", "auto").encoding == "GSM-7"


def test_valid_sms_passes_every_check():
    """A body as the SDK sends it, with every optional field, has no problem."""
    body = dict(
        channel="sms",
        message_type="text",
        to="442079460123",
        client_ref="r" * 100,
        ttl=20,
        sms={"encoding_type": "auto", "content_id": "c", "entity_id": "e", "pool_id": "p"},
        webhook_url="https://example.com/status",
        webhook_version="v1",
        trusted_recipient=False,
        text="t" * 1000,
        **{"from": "Acme"},
    )
    assert check_sms(body) is None


def test_parse_body_refuses_non_objects():
    """Invalid JSON, bad UTF-8 and non-object JSON are all the invalid-json problem."""
    for raw in (b"{", b"[1]", b"\xff", b""):
        problem = parse_body(raw)
        assert not isinstance(problem, dict)
        assert problem.title == "The request body did not contain valid JSON"
        assert problem.status == 422


def test_check_sms_names_every_bad_field_at_once():
    """All problems come back in one answer, so a client can fix them in one go."""
    problem = check_sms({"channel": "mms", "to": "+44"})
    assert problem is not None
    names = {p["name"] for p in problem.invalid_parameters}
    assert names == {"channel", "message_type", "to", "from", "text"}


def test_magic_numbers_are_valid_phone_numbers():
    """Each magic number passes phonenumbers, so the service under test forwards it."""
    for number in MAGIC_NUMBERS:
        assert phonenumbers.is_valid_number(phonenumbers.parse(f"+{number}")), number


def test_magic_table_covers_every_outcome():
    """The table names each documented outcome once, and other numbers are delivered."""
    names = {outcome.name for outcome in MAGIC_NUMBERS.values()}
    assert names == {
        "non-whitelisted", "invalid-recipient", "low-balance", "bad-credentials",
        "throttled-once", "throttled-always", "internal-error", "service-unavailable",
        "hang", "drop", "rejected", "undeliverable",
    }  # fmt: skip
    assert outcome_for("442079460123").action is Action.ACCEPT
    assert outcome_for("442079460123").final_status == "delivered"
    assert outcome_for(number_for("drop")).action is Action.DROP


def test_mask_number_keeps_only_two_digits():
    """Logs show which test number was hit without exposing a real one."""
    assert mask_number("447700900123") == "**********23"


def test_sign_webhook_is_standard_hs256(tmp_path):
    """An ordinary JWT library verifies our token with the secret and sees Vonage's claims."""
    body = b'{"status":"delivered"}'
    secret = "s" * 32
    token = sign_webhook(body, secret, "key1", "app1", issued_at=1_700_000_000, jti="j")
    claims = jwt.decode(token, secret, algorithms=["HS256"], issuer="Vonage")
    assert claims == {
        "iat": 1_700_000_000,
        "jti": "j",
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "key1",
        "application_id": "app1",
    }
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_verify_webhook_refuses_wrong_secret_or_body():
    """The reverse check fails on another secret or on bytes other than the signed ones."""
    token = sign_webhook(b"{}", "short", "key1")  # Vonage allows short secrets
    assert verify_webhook(token, "short", b"{}")["api_key"] == "key1"
    with pytest.raises(SignatureError):
        verify_webhook(token, "other", b"{}")
    with pytest.raises(SignatureError):
        verify_webhook(token, "short", b"{ }")
    with pytest.raises(SignatureError):
        verify_webhook("not-a-token", "short")


def test_ensure_certificates_reuses_valid_files(tmp_path):
    """A second call keeps the same CA, so clients that trust it keep working."""
    first = ensure_certificates(tmp_path)
    ca = first.ca.read_bytes()
    second = ensure_certificates(tmp_path)
    assert second.ca.read_bytes() == ca
    cert = x509.load_pem_x509_certificate(first.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    assert first.key.stat().st_mode & 0o077 == 0  # the private key is for us alone


def test_ensure_certificates_replaces_broken_files(tmp_path):
    """A damaged or mismatched file makes a fresh CA instead of a server that cannot start."""
    paths = ensure_certificates(tmp_path)
    old_ca = paths.ca.read_bytes()
    paths.key.write_text("garbage")
    ensure_certificates(tmp_path)
    assert paths.ca.read_bytes() != old_ca
    x509.load_pem_x509_certificate(paths.cert.read_bytes()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(paths.ca.read_bytes())
    )


def test_inbox_escapes_every_field():
    """Text, sender and reference are shown as text, never run as markup."""
    page = render_inbox(
        [
            {
                "message_uuid": "u", "to": "442079460123", "from": "<i>evil</i>",
                "text": "<script>alert(1)</script>", "client_ref": '"><img src=x>',
                "segments": 1, "encoding": "GSM-7", "time": "t",
            }
        ]
    )  # fmt: skip
    assert "<script>alert" not in page and "<i>evil" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_config_names_every_missing_setting():
    """Without an application id and key the emulator refuses to start, naming both."""
    with pytest.raises(ConfigError) as error:
        Config.from_args([], environ={"EMULATOR_PORT": "x"})
    message = str(error.value)
    assert "--application-id" in message and "--public-key" in message and "--port" in message


def test_config_reads_environment_fallbacks():
    """Flags win; environment variables fill the gaps."""
    config = Config.from_args(
        ["--latency-ms", "7"],
        environ={
            "VONAGE_APPLICATION_ID": "app",
            "EMULATOR_KEY_PATH": "/k.pem",
            "EMULATOR_LATENCY_MS": "99",
            "EMULATOR_HANG_SECONDS": "1.5",
            "STATUS_WEBHOOK_URL": "http://x/s",
        },
    )
    assert (config.application_id, str(config.key_path), config.latency_ms) == ("app", "/k.pem", 7)
    assert config.hang_seconds == 1.5
    assert config.status_webhook_url == "http://x/s"
    assert config.host == "127.0.0.1" and config.port == 0


def test_problem_bodies_have_vonage_fields():
    """Every error body carries type, title, detail and a fresh instance."""
    first, second = problems.THROTTLED.body(), problems.THROTTLED.body()
    assert set(first) == {"type", "title", "detail", "instance"}
    assert first["instance"] != second["instance"]
