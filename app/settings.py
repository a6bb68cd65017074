"""Configuration: one frozen object, read from the environment and checked at start-up."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import phonenumbers
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from dotenv import dotenv_values
from limits import parse_many

from .domain.phone import is_e164

MIN_SECRET_LENGTH = 24
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9 ]{1,11}")
_DURATION = re.compile(r"([0-9]{1,9})([smhd]?)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The example values of .env.example: public, so a copied file must not start (a test keeps
# this tuple and the file in step).
PLACEHOLDERS = (
    "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "replace-with-a-long-random-secret-1",
    "replace-with-a-long-random-secret-2",
    "replace-with-the-signature-secret",
)
DEFAULT_STATE_PATH = "sms-state.db"  # in the working directory
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class ConfigError(Exception):
    """The environment cannot run the service; the message names every problem."""


@dataclass(frozen=True)
class Settings:
    vonage_application_id: str
    vonage_private_key: RSAPrivateKey = field(repr=False)
    vonage_number: str
    api_keys: Mapping[str, str] = field(repr=False)  # name -> secret
    opt_out_override_keys: frozenset[str] = frozenset()  # key names that may lift a STOP
    vonage_api_host: str = "api.nexmo.com"
    vonage_timeout_s: int = 10
    vonage_max_retries: int = 2
    vonage_max_in_flight: int = 256  # per process: the bulkhead and the connection pool
    busy_wait_ms: int = 250  # a send waits this long for a free slot, then 503 service-busy
    rate_limit: str = "60 per minute"
    recipient_rate_limit: str = "5 per minute"
    auth_failure_limit: str = "10 per minute"
    allowed_senders: tuple[str, ...] = ()
    default_region: str | None = None
    max_segments: int = 6
    trusted_proxies: int = 0
    log_level: str = "INFO"
    signature_secrets: tuple[str, ...] = field(default=(), repr=False)
    webhook_allow_unsigned: bool = False
    webhook_max_age_s: int = 300
    message_retention_s: int = 7 * 24 * 3600
    max_messages: int = 100_000
    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    state_path: str = DEFAULT_STATE_PATH  # SQLite file without REDIS_URL; ":memory:" for none
    idempotency_ttl_s: int = 24 * 3600
    idempotency_max_mb: int = 64  # without Redis; the count is bounded by max_messages
    metrics_token: str | None = field(default=None, repr=False)

    @property
    def request_deadline_s(self) -> int:
        """The longest a send can take: one attempt, backoff and retries inside VONAGE_TIMEOUT,
        then a last attempt; gunicorn's worker timeout and the idempotency lock follow it."""
        return 2 * self.vonage_timeout_s + 10

    @property
    def senders(self) -> tuple[str, ...]:
        """Every `from` a caller may use; the first is the default."""
        return (self.vonage_number, *self.allowed_senders)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read and check every variable; raise one ConfigError naming all problems."""
        reader = _Reader(environ)
        api_keys = reader.api_keys("API_KEYS")
        values = dict(
            vonage_application_id=reader.application_id("VONAGE_APPLICATION_ID"),
            vonage_private_key=reader.private_key(),
            vonage_number=reader.sender("VONAGE_NUMBER"),
            api_keys=api_keys,
            opt_out_override_keys=reader.key_names("OPT_OUT_OVERRIDE_KEYS", api_keys),
            vonage_api_host=reader.matching(
                "VONAGE_API_HOST", _HOST, "api.nexmo.com", "host[:port]"
            ),
            vonage_timeout_s=reader.integer("VONAGE_TIMEOUT", 10, 1, 120),
            vonage_max_retries=reader.integer("VONAGE_MAX_RETRIES", 2, 0, 5),
            vonage_max_in_flight=reader.integer("VONAGE_MAX_IN_FLIGHT", 256, 1, 10_000),
            busy_wait_ms=reader.integer("BUSY_WAIT_MS", 250, 0, 5_000),
            rate_limit=reader.rate_limit("RATE_LIMIT", "60 per minute"),
            recipient_rate_limit=reader.rate_limit("RECIPIENT_RATE_LIMIT", "5 per minute"),
            auth_failure_limit=reader.rate_limit("AUTH_FAILURE_LIMIT", "10 per minute"),
            allowed_senders=reader.senders("ALLOWED_SENDERS"),
            default_region=reader.region("DEFAULT_REGION"),
            max_segments=reader.integer("MAX_SEGMENTS", 6, 1, 15),
            trusted_proxies=reader.integer("TRUSTED_PROXIES", 0, 0, 10),
            log_level=reader.choice("LOG_LEVEL", LOG_LEVELS, "INFO"),
            signature_secrets=reader.secrets("VONAGE_SIGNATURE_SECRET"),
            webhook_allow_unsigned=reader.boolean("WEBHOOK_ALLOW_UNSIGNED", False),
            webhook_max_age_s=reader.integer("WEBHOOK_MAX_AGE", 300, 10, 86400),
            message_retention_s=reader.duration("MESSAGE_RETENTION", "7d"),
            max_messages=reader.integer("MAX_MESSAGES", 100_000, 1, 10_000_000),
            redis_url=reader.redis_url("REDIS_URL"),
            state_path=reader.state_path("STATE_PATH"),
            idempotency_ttl_s=reader.duration("IDEMPOTENCY_TTL", "24h"),
            idempotency_max_mb=reader.integer("IDEMPOTENCY_MAX_MB", 64, 1, 65_536),
            metrics_token=reader.optional_secret("METRICS_TOKEN"),
        )
        reader.integer(
            "PORT", 8000, 1, 65535
        )  # used by gunicorn.conf.py; checked here with the rest
        if reader.problems:
            raise ConfigError("invalid configuration: " + "; ".join(reader.problems))
        return cls(**values)


def env_file() -> str | None:
    """The file of variables to read: ENV_FILE, default `.env` in the working directory;
    an empty ENV_FILE reads none."""
    path = os.environ.get("ENV_FILE", ".env")
    return path if path and os.path.isfile(path) else None


def read_environment() -> dict[str, str]:
    """Return the variables of the env file (when present) overlaid by the real environment."""
    path = env_file()
    file_values = dotenv_values(path) if path else {}
    return {**{k: v for k, v in file_values.items() if v is not None}, **os.environ}


class _Reader:
    """Read variables one by one, collecting problems instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.problems: list[str] = []

    def _get(self, name: str) -> str:
        return self.environ.get(name, "").strip()

    def _required(self, name: str) -> str | None:
        value = self._get(name)
        if not value:
            self.problems.append(f"{name} is not set")
            return None
        return value

    def application_id(self, name: str) -> str:
        value = self._required(name)
        if value is None:
            return ""
        try:
            uuid.UUID(value)
        except ValueError:
            self.problems.append(f"{name} must be the application's UUID")
        if value in PLACEHOLDERS:
            self.problems.append(f"{name} is the placeholder of .env.example")
        return value

    def private_key(self) -> RSAPrivateKey | None:
        path = self._get("VONAGE_APPLICATION_PRIVATE_KEY_PATH")
        text = self._get("VONAGE_PRIVATE_KEY")
        if bool(path) == bool(text):
            self.problems.append(
                "set exactly one of VONAGE_APPLICATION_PRIVATE_KEY_PATH and VONAGE_PRIVATE_KEY"
            )
            return None
        if path:
            try:
                with open(path, "rb") as key_file:
                    pem = key_file.read()
            except OSError as exc:
                self.problems.append(
                    f"VONAGE_APPLICATION_PRIVATE_KEY_PATH cannot be read ({exc.strerror})"
                )
                return None
            return self._load_key("VONAGE_APPLICATION_PRIVATE_KEY_PATH", pem)
        # Container platforms often store a PEM on one line with literal \n escapes.
        return self._load_key("VONAGE_PRIVATE_KEY", text.replace("\\n", "\n").encode())

    def _load_key(self, name: str, pem: bytes) -> RSAPrivateKey | None:
        try:
            key = serialization.load_pem_private_key(pem, password=None)  # PKCS#8 or PKCS#1
        except TypeError:
            self.problems.append(f"{name}: the private key must not be password-protected")
            return None
        except ValueError:
            self.problems.append(f"{name} is not a PEM private key (PKCS#8 or PKCS#1)")
            return None
        if not isinstance(key, RSAPrivateKey):
            self.problems.append(f"{name} must be an RSA private key, as Vonage issues")
            return None
        return key

    def sender(self, name: str) -> str:
        value = self._required(name)
        if value is not None and not is_sender(value):
            self.problems.append(
                f"{name} must be an E.164 number or an alphanumeric sender ID of 1-11 characters"
            )
        return value or ""

    def senders(self, name: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in self._get(name).split(",") if v.strip())
        bad = [v for v in values if not is_sender(v)]
        if bad:
            self.problems.append(
                f"{name}: {len(bad)} value(s) are neither E.164 numbers nor alphanumeric sender IDs"
            )
        return values

    def api_keys(self, name: str) -> dict[str, str]:
        """`name:secret` pairs. A problem names the entry by its position only: a malformed
        entry may be a bare secret, or a secret and a name swapped, so none of its text is
        ever repeated."""
        value = self._required(name)
        if value is None:
            return {}
        keys: dict[str, str] = {}
        positions: dict[str, int] = {}  # secret -> position of the entry that holds it
        for position, pair in enumerate(value.split(","), start=1):
            key_name, colon, secret = (part.strip() for part in pair.partition(":"))
            where = f"{name} entry {position}"
            if not colon:
                self.problems.append(f"{where} is not a name:secret pair")
            elif not _KEY_NAME.fullmatch(key_name):
                self.problems.append(f"{where} needs a name of letters, digits, '_', '.' or '-'")
            elif key_name in keys:
                first = positions[keys[key_name]]
                self.problems.append(f"{where} has the same name as entry {first}")
            elif len(secret) < MIN_SECRET_LENGTH:
                self.problems.append(
                    f"{where}: the secret must be at least {MIN_SECRET_LENGTH} characters"
                )
            elif secret in PLACEHOLDERS:
                self.problems.append(f"{where} holds a placeholder secret of .env.example")
            elif secret in positions:
                self.problems.append(f"{where} reuses the secret of entry {positions[secret]}")
            else:
                keys[key_name] = secret
                positions[secret] = position
        return keys

    def key_names(self, name: str, api_keys: Mapping[str, str]) -> frozenset[str]:
        """Comma-separated names of API_KEYS entries (the unknown ones are counted, not
        printed: a secret pasted here by mistake must not reach the log)."""
        names = frozenset(n.strip() for n in self._get(name).split(",") if n.strip())
        unknown = [n for n in names if n not in api_keys]
        if unknown:
            self.problems.append(f"{name}: {len(unknown)} name(s) are not key names in API_KEYS")
        return names - set(unknown)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self._get(name)
        if not value:
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            self.problems.append(f"{name} must be a whole number from {low} to {high}")
            return default
        return int(value)

    def matching(self, name: str, pattern: re.Pattern, default: str, shape: str) -> str:
        value = self._get(name) or default
        if not pattern.fullmatch(value):
            self.problems.append(f"{name} must look like {shape}")
        return value

    def rate_limit(self, name: str, default: str) -> str:
        value = self._get(name) or default
        try:
            parse_many(value)
        except ValueError:
            self.problems.append(f"{name} must be in flask-limiter syntax, e.g. '60 per minute'")
        return value

    def region(self, name: str) -> str | None:
        value = self._get(name).upper()
        if value and value not in phonenumbers.SUPPORTED_REGIONS:
            self.problems.append(f"{name} must be an ISO 3166 country code such as GB or US")
        return value or None

    def secrets(self, name: str) -> tuple[str, ...]:
        """Several comma-separated secrets, so a new one can be added before the old goes."""
        values = tuple(s.strip() for s in self._get(name).split(",") if s.strip())
        for position, value in enumerate(values, start=1):
            if value in PLACEHOLDERS:
                self.problems.append(f"{name} entry {position} is a placeholder of .env.example")
        return values

    def optional_secret(self, name: str) -> str | None:
        value = self._get(name)
        if value and len(value) < 16:
            self.problems.append(f"{name} must be at least 16 characters")
        return value or None

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name).lower()
        if not value:
            return default
        if value not in _BOOLEANS:
            self.problems.append(f"{name} must be true or false")
            return default
        return _BOOLEANS[value]

    def duration(self, name: str, default: str) -> int:
        """Seconds, or a number with s, m, h or d (e.g. 7d)."""
        value = (self._get(name) or default).lower()
        match = _DURATION.fullmatch(value)
        if not match or int(match[1]) == 0:
            self.problems.append(f"{name} must be a duration such as 3600, 12h or 7d")
            return _seconds(_DURATION.fullmatch(default))
        return _seconds(match)

    def redis_url(self, name: str) -> str | None:
        value = self._get(name)
        if value and not value.startswith(("redis://", "rediss://")):
            self.problems.append(f"{name} must start with redis:// or rediss:// (TLS)")
        return value or None

    def state_path(self, name: str) -> str:
        """A file in a folder that exists (a missing folder is a typo, not an outage), or
        :memory:. Whether it can be written is the store's to find out: that can change."""
        value = self._get(name) or DEFAULT_STATE_PATH
        if value == ":memory:":
            return value
        if os.path.isdir(value):
            self.problems.append(f"{name} must name a file, not a folder")
        elif not os.path.isdir(os.path.dirname(os.path.abspath(value))):
            self.problems.append(f"{name}: the folder of {value} does not exist")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self._get(name).upper() or default
        if value not in choices:
            self.problems.append(f"{name} must be one of {', '.join(choices)}")
        return value


def _seconds(match: re.Match) -> int:
    return int(match[1]) * _UNIT_SECONDS[match[2] or "s"]


def is_sender(value: str) -> bool:
    """Tell whether `value` can be an SMS sender: an E.164 number or an alphanumeric ID."""
    return is_e164(value) or bool(_ALPHANUMERIC_SENDER.fullmatch(value.strip()))
