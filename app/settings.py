"""Configuration: one frozen object, read from the environment and checked at start-up.

Each variable is declared once, as a field of `Settings`: its name, parser (with its bounds),
default and help all sit in one `variable(...)` call, and `Settings.from_environ` reads and
checks every field from that alone, collecting every problem into one ConfigError. The
server's own variables (HOST, PORT, WEB_CONCURRENCY) are fields too: gunicorn.conf.py takes
them from the same reading. The few variables read before any of this can be (gevent must
patch first, prometheus_client reads its folder on import, ENV_FILE says where the others
are) are declared in `EARLY`, for the documents.

To add a variable, add one field, e.g.

    state_path: str = variable("STATE_PATH", parse_state_path, "the SQLite file …", default="x.db")

with a parser `(text, name, reading) -> value` that calls `reading.problem(...)` for a bad
value (the text is stripped, and is the default when the variable is unset or empty); add
`required=True` for a variable without default, `secret=True` to keep the value out of repr.
A parser that needs another variable's value reads `reading.values[NAME]`: declare that one
first. Then the tests (tests/test_docs.py) say which line of `.env.example` and which row
of docs/operations.md's table to add: both are checked against these declarations.
"""

from __future__ import annotations

import ipaddress
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import phonenumbers
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from dotenv import dotenv_values
from limits import parse_many

from .domain.destinations import DEFAULT_NUMBER_TYPES, NUMBER_TYPES, REFUSED_BY_DEFAULT
from .domain.phone import is_e164

MIN_SECRET_LENGTH = 24
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")
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
MEMORY_STATE = ":memory:"  # the STATE_PATH that keeps state in process memory
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class ConfigError(Exception):
    """The environment cannot run the service; the message names every problem."""


class Reading:
    """One pass over an environment: the values read so far, by variable name, and every
    problem found, so that one error can name them all."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.values: dict[str, Any] = {}
        self.problems: list[str] = []

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def raise_problems(self) -> None:
        """One ConfigError naming every problem found, if any."""
        if self.problems:
            raise ConfigError("invalid configuration: " + "; ".join(self.problems))


# A parser: (text, the variable's name, the reading) -> the value. It reports a bad text with
# reading.problem(...), never quoting a secret, and may then return anything: no Settings is
# built from a reading with problems.
Parse = Callable[[str, str, Reading], Any]


@dataclass(frozen=True)
class Variable:
    """One environment variable: everything the service and its documents know of it."""

    name: str
    parse: Parse | None  # None: read before the settings can be (see EARLY)
    help: str  # Markdown, as docs/operations.md's table shows it; {bounds} is the parser's
    default: str = ""  # the text read when the variable is unset or empty; "" is none
    required: bool = False
    shown_default: str = ""  # the documents' words for a default that is no fixed text

    @property
    def description(self) -> str:
        return self.help.replace("{bounds}", getattr(self.parse, "bounds", ""))

    @property
    def documented_default(self) -> str:
        """The default as docs/operations.md's table writes it (Markdown)."""
        if self.shown_default:
            return self.shown_default
        if self.required:
            return "required"
        return f"`{self.default}`" if self.default else "none"

    def read(self, reading: Reading) -> Any:
        """Parse this variable's text (or default) into its value, noting any problem."""
        assert self.parse is not None, f"{self.name} is read before the settings"
        text = reading.environ.get(self.name, "").strip() or self.default
        if not text and self.required:
            reading.problem(f"{self.name} is not set")
            value = None
        else:
            value = self.parse(text, self.name, reading)
        reading.values[self.name] = value
        return value


def variable(
    name: str,
    parse: Parse,
    help: str,
    *,
    default: str = "",
    required: bool = False,
    secret: bool = False,
    shown_default: str = "",
) -> Any:
    """Declare a field of Settings read from the variable `name`; a secret stays out of repr."""
    declared = Variable(name, parse, help, default, required, shown_default)
    return field(repr=not secret, metadata={"variable": declared})


# --- parsers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Integer:
    """A whole number from low to high."""

    low: int
    high: int

    @property
    def bounds(self) -> str:
        return f"{self.low}–{self.high}"

    def __call__(self, text: str, name: str, reading: Reading) -> int | None:
        if not _is_number(text) or not self.low <= int(text) <= self.high:
            reading.problem(f"{name} must be a whole number from {self.low} to {self.high}")
            return None
        return int(text)


@dataclass(frozen=True)
class Matching:
    """Text of a given shape, e.g. host[:port]."""

    pattern: re.Pattern
    shape: str

    def __call__(self, text: str, name: str, reading: Reading) -> str:
        if not self.pattern.fullmatch(text):
            reading.problem(f"{name} must look like {self.shape}")
        return text


@dataclass(frozen=True)
class Choice:
    """One of a few words, in any case."""

    choices: tuple[str, ...]

    @property
    def bounds(self) -> str:
        words = [f"`{choice}`" for choice in self.choices]
        return f"{', '.join(words[:-1])} or {words[-1]}"

    def __call__(self, text: str, name: str, reading: Reading) -> str:
        value = text.upper()
        if value not in self.choices:
            reading.problem(f"{name} must be one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True)
class Token:
    """An optional secret of at least `min_length` characters."""

    min_length: int

    @property
    def bounds(self) -> str:
        return f"{self.min_length}+ characters"

    def __call__(self, text: str, name: str, reading: Reading) -> str | None:
        if text and len(text) < self.min_length:
            reading.problem(f"{name} must be at least {self.min_length} characters")
        return text or None


def parse_text(text: str, name: str, reading: Reading) -> str | None:
    return text or None


def parse_uuid(text: str, name: str, reading: Reading) -> str:
    try:
        uuid.UUID(text)
    except ValueError:
        reading.problem(f"{name} must be the application's UUID")
    if text in PLACEHOLDERS:
        reading.problem(f"{name} is the placeholder of .env.example")
    return text


def parse_sender(text: str, name: str, reading: Reading) -> str:
    if not is_sender(text):
        reading.problem(
            f"{name} must be an E.164 number or an alphanumeric sender ID of 1-11 characters"
        )
    return text


def parse_senders(text: str, name: str, reading: Reading) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in values if not is_sender(v)]
    if bad:
        reading.problem(
            f"{name}: {len(bad)} value(s) are neither E.164 numbers nor alphanumeric sender IDs"
        )
    return values


def parse_api_keys(text: str, name: str, reading: Reading) -> dict[str, str]:
    """`name:secret` pairs. A problem names the entry by its position only: a malformed entry
    may be a bare secret, or a secret and a name swapped, so none of its text is ever
    repeated."""
    keys: dict[str, str] = {}
    positions: dict[str, int] = {}  # secret -> position of the entry that holds it
    for position, pair in enumerate(text.split(","), start=1):
        key_name, colon, secret = (part.strip() for part in pair.partition(":"))
        where = f"{name} entry {position}"
        if not colon:
            reading.problem(f"{where} is not a name:secret pair")
        elif not _KEY_NAME.fullmatch(key_name):
            reading.problem(f"{where} needs a name of letters, digits, '_', '.' or '-'")
        elif key_name in keys:
            reading.problem(f"{where} has the same name as entry {positions[keys[key_name]]}")
        elif len(secret) < MIN_SECRET_LENGTH:
            reading.problem(f"{where}: the secret must be at least {MIN_SECRET_LENGTH} characters")
        elif secret in PLACEHOLDERS:
            reading.problem(f"{where} holds a placeholder secret of .env.example")
        elif secret in positions:
            reading.problem(f"{where} reuses the secret of entry {positions[secret]}")
        else:
            keys[key_name] = secret
            positions[secret] = position
    return keys


@dataclass(frozen=True)
class KeyNames:
    """Comma-separated names of entries of another variable's keys (the unknown ones are
    counted, not printed: a secret pasted here by mistake must not reach the log)."""

    keys: str  # the variable holding the keys, declared before

    def __call__(self, text: str, name: str, reading: Reading) -> frozenset[str]:
        known = reading.values[self.keys] or {}
        names = frozenset(n.strip() for n in text.split(",") if n.strip())
        unknown = [n for n in names if n not in known]
        if unknown:
            reading.problem(f"{name}: {len(unknown)} name(s) are not key names in {self.keys}")
        return names - set(unknown)


@dataclass(frozen=True)
class PrivateKey:
    """An RSA private key (PKCS#8 or PKCS#1 PEM), given as this variable's text or in the file
    another variable names: exactly one of the two."""

    path: str  # the variable naming the key's file, declared before

    def __call__(self, text: str, name: str, reading: Reading) -> RSAPrivateKey | None:
        path = reading.values[self.path] or ""
        if bool(path) == bool(text):
            reading.problem(f"set exactly one of {self.path} and {name}")
            return None
        if path:
            try:
                with open(path, "rb") as key_file:
                    pem = key_file.read()
            except OSError as exc:
                reading.problem(f"{self.path} cannot be read ({exc.strerror})")
                return None
            return _load_key(self.path, pem, reading)
        # Container platforms often store a PEM on one line with literal \n escapes.
        return _load_key(name, text.replace("\\n", "\n").encode(), reading)


def _load_key(name: str, pem: bytes, reading: Reading) -> RSAPrivateKey | None:
    try:
        key = serialization.load_pem_private_key(pem, password=None)  # PKCS#8 or PKCS#1
    except TypeError:
        reading.problem(f"{name}: the private key must not be password-protected")
        return None
    except ValueError:
        reading.problem(f"{name} is not a PEM private key (PKCS#8 or PKCS#1)")
        return None
    if not isinstance(key, RSAPrivateKey):
        reading.problem(f"{name} must be an RSA private key, as Vonage issues")
        return None
    return key


def parse_rate_limit(text: str, name: str, reading: Reading) -> str:
    try:
        parse_many(text)
    except ValueError:
        reading.problem(f"{name} must be in flask-limiter syntax, e.g. '60 per minute'")
    return text


@dataclass(frozen=True)
class SegmentBudget:
    """An optional budget in flask-limiter syntax, counted in segments: each of its limits must
    let through the longest text another variable allows, else that text could never go."""

    max_segments: str  # the variable of the longest text, in segments, declared before

    def __call__(self, text: str, name: str, reading: Reading) -> str | None:
        if not text:
            return None
        try:
            items = parse_many(text)
        except ValueError:
            reading.problem(f"{name} must be in flask-limiter syntax, e.g. '5000 per day'")
            return None
        longest = reading.values[self.max_segments]
        if longest is not None and any(item.amount < longest for item in items):
            reading.problem(f"{name}: each limit must allow at least {self.max_segments} segments")
        return text


def parse_region(text: str, name: str, reading: Reading) -> str | None:
    value = text.upper()
    if value and value not in phonenumbers.SUPPORTED_REGIONS:
        reading.problem(f"{name} must be an ISO 3166 country code such as GB or US")
    return value or None


def parse_countries(text: str, name: str, reading: Reading) -> frozenset[str]:
    """Comma-separated ISO 3166 codes, in any case; empty: every country."""
    values = {value.strip().upper() for value in text.split(",") if value.strip()}
    bad = sorted(value for value in values if value not in phonenumbers.SUPPORTED_REGIONS)
    if bad:
        reading.problem(f"{name}: not ISO 3166 country codes (such as GB): {', '.join(bad)}")
    return frozenset(values)


def parse_number_types(text: str, name: str, reading: Reading) -> frozenset[str]:
    """Comma-separated names of phonenumbers' number types, in any case."""
    values = {value.strip().lower() for value in text.split(",") if value.strip()}
    bad = sorted(value for value in values if value not in NUMBER_TYPES)
    if bad:
        reading.problem(f"{name}: not number types ({', '.join(NUMBER_TYPES)}): {', '.join(bad)}")
    elif not values:
        reading.problem(f"{name} must name at least one number type")
    return frozenset(values)


def parse_secrets(text: str, name: str, reading: Reading) -> tuple[str, ...]:
    """Several comma-separated secrets, so a new one can be added before the old goes."""
    values = tuple(s.strip() for s in text.split(",") if s.strip())
    for position, value in enumerate(values, start=1):
        if value in PLACEHOLDERS:
            reading.problem(f"{name} entry {position} is a placeholder of .env.example")
    return values


def parse_boolean(text: str, name: str, reading: Reading) -> bool:
    value = text.lower()
    if value not in _BOOLEANS:
        reading.problem(f"{name} must be true or false")
        return False
    return _BOOLEANS[value]


def parse_duration(text: str, name: str, reading: Reading) -> int | None:
    """Seconds, or a number with s, m, h or d (e.g. 7d)."""
    match = _DURATION.fullmatch(text.lower())
    if not match or int(match[1]) == 0:
        reading.problem(f"{name} must be a duration such as 3600, 12h or 7d")
        return None
    return _seconds(match)


def parse_redis_url(text: str, name: str, reading: Reading) -> str | None:
    if text and not text.startswith(("redis://", "rediss://")):
        reading.problem(f"{name} must start with redis:// or rediss:// (TLS)")
    return text or None


def parse_state_path(text: str, name: str, reading: Reading) -> str:
    """A file in a folder that exists (a missing folder is a typo, not an outage), or
    :memory:. Whether it can be written is the store's to find out: that can change."""
    if text == MEMORY_STATE:
        return text
    if os.path.isdir(text):
        reading.problem(f"{name} must name a file, not a folder")
    elif not os.path.isdir(os.path.dirname(os.path.abspath(text))):
        reading.problem(f"{name}: the folder of {text} does not exist")
    return text


def parse_host(text: str, name: str, reading: Reading) -> str:
    """An IP address (IPv4 or IPv6), or a host name the machine resolves, e.g. localhost."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _HOST_NAME.fullmatch(text):
            reading.problem(f"{name} must be an IP address or a host name")
    return text


@dataclass(frozen=True)
class Workers:
    """gunicorn's worker processes. Without shared state, rate limits and records live in one
    process: one worker, and more are refused. With it, all workers share them: one per CPU
    by default (each waits on Vonage in greenlets)."""

    shared_state: str  # the variable that gives the workers shared state, declared before

    def __call__(self, text: str, name: str, reading: Reading) -> int | None:
        shared = reading.values[self.shared_state]
        if not text:
            return (os.cpu_count() or 1) if shared else 1
        if not _is_number(text) or int(text) < 1:
            reading.problem(f"{name} must be a whole number of workers, at least 1")
            return None
        if int(text) > 1 and not shared:
            reading.problem(
                f"{name}={text} needs {self.shared_state}: without shared state each worker "
                "would count rate limits and keep records on its own"
            )
            return None
        return int(text)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()  # "²".isdigit() too, and int("²") fails


# --- the declaration -------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Every variable the service reads once started, one field each, in the documents' order."""

    vonage_application_id: str = variable(
        "VONAGE_APPLICATION_ID",
        parse_uuid,
        "the Vonage application's id (a UUID)",
        required=True,
    )
    vonage_private_key_path: str | None = variable(
        "VONAGE_APPLICATION_PRIVATE_KEY_PATH",
        parse_text,
        "path to the application's private key (PEM, PKCS#8 or PKCS#1)",
        shown_default="one of these two",
    )
    vonage_private_key: RSAPrivateKey = variable(  # noqa: RUF009 - a Field, as field() returns
        "VONAGE_PRIVATE_KEY",
        PrivateKey(path="VONAGE_APPLICATION_PRIVATE_KEY_PATH"),
        "the PEM text itself; literal `\\n` escapes are accepted",
        shown_default="one of these two",
        secret=True,
    )
    vonage_number: str = variable(
        "VONAGE_NUMBER",
        parse_sender,
        "default sender: an E.164 number or an alphanumeric sender ID (1–11 characters)",
        required=True,
    )
    api_keys: Mapping[str, str] = variable(  # name -> secret
        "API_KEYS",
        parse_api_keys,
        "comma-separated `name:secret` pairs; unique names; secrets of at least "
        f"{MIN_SECRET_LENGTH} characters. The name identifies the caller in logs and limits; "
        "the secret appears nowhere. A malformed entry is named by its position, never quoted",
        required=True,
        secret=True,
    )
    opt_out_override_keys: frozenset[str] = variable(
        "OPT_OUT_OVERRIDE_KEYS",
        KeyNames(keys="API_KEYS"),
        "comma-separated names of `API_KEYS` entries that may lift an opt-out the recipient "
        "made by SMS (`DELETE /opt-outs/…`); other keys get `409 opted-out-by-recipient`",
    )
    vonage_api_host: str = variable(
        "VONAGE_API_HOST",
        Matching(_HOST, "host[:port]"),
        "Vonage's API host, `host[:port]`",
        default="api.nexmo.com",
    )
    vonage_timeout_s: int = variable(
        "VONAGE_TIMEOUT",
        Integer(1, 120),
        "seconds to wait for Vonage's answer ({bounds})",
        default="10",
    )
    vonage_max_retries: int = variable(
        "VONAGE_MAX_RETRIES",
        Integer(0, 5),
        "retries when Vonage certainly did not accept the SMS ({bounds})",
        default="2",
    )
    vonage_max_in_flight: int = variable(  # per process: the bulkhead and the connection pool
        "VONAGE_MAX_IN_FLIGHT",
        Integer(1, 10_000),
        "sends in progress at once per worker process: the bulkhead, and the size of the "
        "connection pool to Vonage ({bounds})",
        default="256",
    )
    busy_wait_ms: int = variable(  # a send waits this long for a free slot, then 503 service-busy
        "BUSY_WAIT_MS",
        Integer(0, 5_000),
        "how long a send waits for one of those slots before it is refused `503 service-busy` "
        "with `Retry-After` ({bounds})",
        default="250",
    )
    rate_limit: str = variable(
        "RATE_LIMIT",
        parse_rate_limit,
        "per API key, flask-limiter syntax, `;` for several (`10 per second;300 per hour`)",
        default="60 per minute",
    )
    recipient_rate_limit: str = variable(
        "RECIPIENT_RATE_LIMIT",
        parse_rate_limit,
        "per destination number across all keys, against SMS pumping (toll fraud)",
        default="5 per minute",
    )
    auth_failure_limit: str = variable(
        "AUTH_FAILURE_LIMIT",
        parse_rate_limit,
        "failed credentials (API keys, the metrics token, webhook signatures) allowed per "
        "client IP; past it the IP is refused (429) whatever it sends next, except a "
        "credential that succeeded from it in the last 24 h",
        default="10 per minute",
    )
    allowed_senders: tuple[str, ...] = variable(
        "ALLOWED_SENDERS",
        parse_senders,
        "extra `from` values callers may ask for, comma-separated",
    )
    default_region: str | None = variable(
        "DEFAULT_REGION",
        parse_region,
        "ISO country (e.g. `GB`): national-format numbers are then accepted and normalised; "
        "otherwise `to` must start with `+`",
    )
    allowed_countries: frozenset[str] = variable(
        "ALLOWED_COUNTRIES",
        parse_countries,
        "comma-separated ISO 3166 codes (e.g. `GB,IE`) of the countries sends may go to; "
        "others get `422 destination-not-allowed`, as do non-geographic numbers (+800, +882). "
        "Unset: every country. See [SMS pumping](#sms-pumping)",
    )
    allowed_number_types: frozenset[str] = variable(
        "ALLOWED_NUMBER_TYPES",
        parse_number_types,
        "comma-separated number types sends may go to, as phonenumbers classifies them: "
        f"{', '.join(f'`{name}`' for name in NUMBER_TYPES)}; it replaces the default set. "
        "Others get `422 destination-not-allowed`",
        default=", ".join(DEFAULT_NUMBER_TYPES),
        shown_default="every type but "
        + ", ".join(f"`{name}`" for name in REFUSED_BY_DEFAULT[:-1])
        + f" and `{REFUSED_BY_DEFAULT[-1]}`",
    )
    max_segments: int = variable(
        "MAX_SEGMENTS",
        Integer(1, 15),
        "longest text accepted, in SMS segments ({bounds}); longer texts are refused before "
        "any call to Vonage",
        default="6",
    )
    segment_budget: str | None = variable(
        "SEGMENT_BUDGET",
        SegmentBudget(max_segments="MAX_SEGMENTS"),
        "per API key, in SMS segments rather than requests (a 3-segment text costs 3), "
        "flask-limiter syntax, `;` for several (`5000 per day`); each at least `MAX_SEGMENTS`. "
        "Past it: `429 budget-exhausted`, nothing sent. Unset: no budget",
    )
    signature_secrets: tuple[str, ...] = variable(
        "VONAGE_SIGNATURE_SECRET",
        parse_secrets,
        "Vonage's signature secret for webhooks; several comma-separated while rotating. "
        "Without it the webhook routes answer 503",
        secret=True,
    )
    webhook_allow_unsigned: bool = variable(
        "WEBHOOK_ALLOW_UNSIGNED",
        parse_boolean,
        "accept unsigned webhooks (development only; a warning at start-up)",
        default="false",
    )
    webhook_max_age_s: int = variable(
        "WEBHOOK_MAX_AGE",
        Integer(10, 86400),
        "oldest webhook token accepted, in seconds (tokens up to 60 s in the future are "
        "accepted too)",
        default="300",
    )
    message_retention_s: int = variable(
        "MESSAGE_RETENTION",
        parse_duration,
        "how long message records are kept: seconds, or a number with `s`, `m`, `h`, `d`",
        default="7d",
    )
    max_messages: int = variable(
        "MAX_MESSAGES",
        Integer(1, 10_000_000),
        "most message records kept, and without Redis most `Idempotency-Key` answers; "
        "the oldest go first",
        default="100000",
    )
    trusted_proxies: int = variable(
        "TRUSTED_PROXIES",
        Integer(0, 10),
        "reverse proxies in front of the service; their `X-Forwarded-For` is believed, "
        "nobody else's, and only when it holds an IP address",
        default="0",
    )
    log_level: str = variable("LOG_LEVEL", Choice(LOG_LEVELS), "{bounds}", default="INFO")
    metrics_token: str | None = variable(
        "METRICS_TOKEN",
        Token(min_length=16),
        "when set, `GET /metrics` asks for `Authorization: Bearer <token>` ({bounds})",
        secret=True,
    )
    redis_url: str | None = variable(  # may hold a password
        "REDIS_URL",
        parse_redis_url,
        "Redis (`redis://…`, or `rediss://…` for TLS) shared by all workers and instances: "
        "rate limits, message records, opt-outs, idempotency keys. Unset: the `STATE_PATH` file",
        secret=True,
    )
    state_path: str = variable(  # SQLite file without REDIS_URL; ":memory:" for none
        "STATE_PATH",
        parse_state_path,
        "without `REDIS_URL`, the SQLite file keeping message records, opt-outs and idempotency "
        "keys across restarts; its folder must exist. `:memory:` keeps them in process memory, "
        "lost on restart (a warning at start-up). See [What survives a restart]"
        "(#what-survives-a-restart)",
        default=DEFAULT_STATE_PATH,
        shown_default="`sms-state.db` (Docker: `/var/lib/sms-service/sms-state.db`)",
    )
    idempotency_ttl_s: int = variable(
        "IDEMPOTENCY_TTL",
        parse_duration,
        "how long an `Idempotency-Key`'s answer is kept",
        default="24h",
    )
    idempotency_max_mb: int = variable(  # without Redis; the count is bounded by max_messages
        "IDEMPOTENCY_MAX_MB",
        Integer(1, 65_536),
        "most megabytes of `Idempotency-Key` answers kept without Redis (about; {bounds}); "
        "the oldest go first",
        default="64",
    )
    host: str = variable(
        "HOST",
        parse_host,
        "address gunicorn listens on: `0.0.0.0` every IPv4 interface, `127.0.0.1` this "
        "machine only, `::` every interface",
        default="0.0.0.0",  # noqa: S104 - a server's listening address, as before
    )
    port: int = variable("PORT", Integer(1, 65535), "port gunicorn listens on", default="8000")
    workers: int = variable(
        "WEB_CONCURRENCY",
        Workers(shared_state="REDIS_URL"),
        "gunicorn workers; more than 1 without `REDIS_URL` is refused",
        shown_default="1, or one per CPU with `REDIS_URL`",
    )

    @property
    def request_deadline_s(self) -> int:
        """The longest a send can take: one attempt, backoff and retries inside VONAGE_TIMEOUT,
        then a last attempt; gunicorn's worker timeout and the idempotency lock follow it."""
        return 2 * self.vonage_timeout_s + 10

    @property
    def senders(self) -> tuple[str, ...]:
        """Every `from` a caller may use; the first is the default."""
        return (self.vonage_number, *self.allowed_senders)

    @property
    def state_file(self) -> str | None:
        """The SQLite file that keeps the state, or None: Redis keeps it, or process memory."""
        return None if self.redis_url or self.state_path == MEMORY_STATE else self.state_path

    @property
    def bind(self) -> str:
        """gunicorn's `bind`: host:port, an IPv6 address in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read and check every variable; raise one ConfigError naming all problems."""
        reading = Reading(environ)
        values = {each.name: declaration(each).read(reading) for each in fields(cls)}
        reading.raise_problems()
        return cls(**values)


def declaration(settings_field: Any) -> Variable:
    """The Variable a field of Settings is read from."""
    return settings_field.metadata["variable"]


_ENV_FILE = Variable(
    "ENV_FILE",
    None,
    "the file of variables to read, in the working directory; empty reads none",
    default=".env",
)
# Read before the settings can be, by gunicorn.conf.py and env_file(): declared here for the
# documents. gevent must patch the standard library before anything imports ssl, so
# GUNICORN_CMD_ARGS (which may choose another worker) is read before this module is imported;
# prometheus_client reads its folder on import; ENV_FILE says where the other variables are.
EARLY = (
    Variable(
        "GUNICORN_CMD_ARGS",
        None,
        "gunicorn's own options; a `--worker-class` there replaces the gevent worker "
        "(for benchmarks)",
    ),
    Variable(
        "PROMETHEUS_MULTIPROC_DIR",
        None,
        "where gunicorn workers share metric samples (cleaned at start)",
        shown_default="a temporary folder",
    ),
    _ENV_FILE,
)
# Every variable the service reads, in the order of docs/operations.md's table.
VARIABLES = (*(declaration(each) for each in fields(Settings)), *EARLY)


def read_variables(
    variables: Iterable[Variable], environ: Mapping[str, str] = os.environ
) -> list[Any]:
    """Parse declared variables as `Settings.from_environ` does, for a tool that needs only
    these (make demo's ports); one ConfigError naming every problem."""
    reading = Reading(environ)
    values = [each.read(reading) for each in variables]
    reading.raise_problems()
    return values


def declared(name: str) -> Variable:
    """The declaration of the variable `name`."""
    return next(each for each in VARIABLES if each.name == name)


def env_file() -> str | None:
    """The file of variables to read: ENV_FILE, default `.env` in the working directory;
    an empty ENV_FILE reads none."""
    path = os.environ.get(_ENV_FILE.name, _ENV_FILE.default)
    return path if path and os.path.isfile(path) else None


def read_environment() -> dict[str, str]:
    """Return the variables of the env file (when present) overlaid by the real environment."""
    path = env_file()
    file_values = dotenv_values(path) if path else {}
    return {**{k: v for k, v in file_values.items() if v is not None}, **os.environ}


def _seconds(match: re.Match) -> int:
    return int(match[1]) * _UNIT_SECONDS[match[2] or "s"]


def is_sender(value: str) -> bool:
    """Tell whether `value` can be an SMS sender: an E.164 number or an alphanumeric ID."""
    return is_e164(value) or bool(_ALPHANUMERIC_SENDER.fullmatch(value.strip()))
