"""The emulator's settings: flags first, then environment variables, checked all at once."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CERTS = Path(tempfile.gettempdir()) / "vonage-emulator-certs"


class ConfigError(ValueError):
    """One message naming every problem in the settings."""


@dataclass(frozen=True)
class Config:
    """Everything the emulator needs to know, fixed at start-up."""

    application_id: str
    key_path: Path  # the application's public key, or its private key
    host: str = "127.0.0.1"
    port: int = 0
    certs: Path = DEFAULT_CERTS
    latency_ms: int = 0
    hang_seconds: float = 30.0
    status_webhook_url: str | None = None
    inbound_webhook_url: str | None = None
    signature_secret: str | None = field(default=None, repr=False)
    api_key: str = "abcd1234"
    webhook_delay_ms: int = 200
    number: str = "447700900000"  # our virtual number: `to` of inbound SMS
    quiet: bool = False

    @classmethod
    def from_args(
        cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ
    ) -> Config:
        """Read flags, fall back to environment variables; raise one ConfigError for all gaps."""
        args = _parser(environ).parse_args(argv)
        problems = []
        if not args.application_id:
            problems.append("--application-id (or VONAGE_APPLICATION_ID) is required")
        if not args.public_key:
            problems.append("--public-key (or EMULATOR_KEY_PATH) is required")
        numbers = {}
        for name, kind in _NUMBERS.items():
            try:
                numbers[name] = kind(getattr(args, name))
            except (TypeError, ValueError):
                problems.append(f"--{name.replace('_', '-')} must be a number")
                continue
            if numbers[name] < 0:
                problems.append(f"--{name.replace('_', '-')} must not be negative")
        if problems:
            raise ConfigError("; ".join(problems))
        return cls(
            application_id=args.application_id,
            key_path=Path(args.public_key),
            host=args.host,
            certs=Path(args.certs),
            status_webhook_url=args.status_webhook_url or None,
            inbound_webhook_url=args.inbound_webhook_url or None,
            signature_secret=args.signature_secret or None,
            api_key=args.api_key,
            number=args.number.lstrip("+"),
            quiet=args.quiet,
            **numbers,
        )


_NUMBERS = {
    "port": int,
    "latency_ms": int,
    "hang_seconds": float,
    "webhook_delay_ms": int,
}


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    env = environ.get
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description="Local emulator of the Vonage Messages API (SMS)."
    )
    parser.add_argument("--host", default=env("EMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", default=env("EMULATOR_PORT", "0"), help="0 picks a free port")
    parser.add_argument("--certs", default=env("EMULATOR_CERTS", str(DEFAULT_CERTS)))
    parser.add_argument("--application-id", default=env("VONAGE_APPLICATION_ID"))
    parser.add_argument(
        "--public-key",
        default=env("EMULATOR_KEY_PATH"),
        help="PEM file: the application's public key or its private key",
    )
    parser.add_argument("--latency-ms", default=env("EMULATOR_LATENCY_MS", "0"))
    parser.add_argument("--hang-seconds", default=env("EMULATOR_HANG_SECONDS", "30"))
    parser.add_argument("--status-webhook-url", default=env("STATUS_WEBHOOK_URL"))
    parser.add_argument("--inbound-webhook-url", default=env("INBOUND_WEBHOOK_URL"))
    parser.add_argument("--signature-secret", default=env("VONAGE_SIGNATURE_SECRET"))
    parser.add_argument("--api-key", default=env("EMULATOR_API_KEY", "abcd1234"))
    parser.add_argument("--webhook-delay-ms", default=env("EMULATOR_WEBHOOK_DELAY_MS", "200"))
    parser.add_argument("--number", default=env("EMULATOR_NUMBER", "447700900000"))
    parser.add_argument(
        "--quiet",
        action="store_true",
        default=env("EMULATOR_QUIET", "") not in ("", "0", "false"),
        help="log only problems, not one line per request (for benchmarks)",
    )
    return parser
