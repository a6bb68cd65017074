"""`make demo`: the service against a local Vonage emulator, no account needed.

Creates throwaway credentials in .demo/ (git-ignored), starts the emulator and the
service wired together, prints what to paste, then follows the service's log until
Ctrl-C stops both.
"""

from __future__ import annotations

import signal
import sys
import time

from app.server.worker import port_in_use
from app.settings import ConfigError, Integer, Variable, declared, read_variables
from tools.stack import ROOT, ensure_credentials, wired_stack

EMULATOR_PORT = Variable(
    "EMULATOR_PORT",
    Integer(0, 65535),
    "port of the demo's emulator (0: a free one)",
    default="8443",
)


def main() -> int:
    try:  # PORT as the service reads it (its default, its bounds), with the emulator's
        port, emulator_port = read_variables((declared("PORT"), EMULATOR_PORT))
    except ConfigError as error:
        print(f"cannot start: {error}", file=sys.stderr)
        return 1
    for variable, value in (("PORT", port), ("EMULATOR_PORT", emulator_port)):
        if value and port_in_use("0.0.0.0", value):  # noqa: S104 - a probe, closed at once
            print(
                f"cannot start: port {value} is already in use; set {variable} to another"
                f" port, e.g. make demo {variable}={value + 1}",
                file=sys.stderr,
            )
            return 1
    credentials = ensure_credentials(ROOT / ".demo")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with wired_stack(
            credentials,
            port,
            emulator_port,
            {"EMULATOR_HANG_SECONDS": "15"},
            STATE_PATH=str(credentials.folder / STATE_FILE),
        ) as (emulator, service):
            print(_banner(credentials, emulator.url, service.url), flush=True)
            _follow(service)
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:  # a process did not start: say why
        print(exc, file=sys.stderr)
        return 1
    print("\nstopped the service and the emulator", flush=True)
    return 0


# Opt-outs, idempotency keys and records of the demo, kept from one `make demo` to the next
# (`make clean` removes .demo/ and them with it).
STATE_FILE = "state.db"

# The number the banner's STOP example opts out: never one the docs send to, or the
# README's first send would answer 422 after a newcomer followed the banner.
STOP_EXAMPLE = "+14155550199"


def _banner(credentials, emulator_url: str, service_url: str) -> str:
    relative_ca = credentials.ca.relative_to(ROOT)
    return f"""
SMS service demo: the service talks to a local Vonage emulator (nothing leaves this machine).

  service   {service_url}      (GET /health, POST /send-sms)
  inbox     {emulator_url}/     (your browser will warn: the CA is throwaway, {relative_ca})
  API key   {credentials.api_key}

Send an SMS:

  curl -s {service_url}/send-sms \\
    -H 'X-API-Key: {credentials.api_key}' -H 'Content-Type: application/json' \\
    -d '{{"to": "+14155550100", "text": "Hello from the demo"}}'

See what the "phone" received, then the delivery receipt (use the message_uuid you got):

  curl -s --cacert {relative_ca} {emulator_url}/_emulator/messages
  curl -s {service_url}/messages/MESSAGE_UUID -H 'X-API-Key: {credentials.api_key}'

A phone replies STOP (+14155550199 here, a number the docs' examples do not use); a send
to it is then refused (422 recipient-opted-out), until it replies START:

  curl -s --cacert {relative_ca} {emulator_url}/_emulator/inbound \
    -H 'Content-Type: application/json' -d '{{"from": "{STOP_EXAMPLE[1:]}", "text": "STOP"}}'
  curl -s {service_url}/send-sms \
    -H 'X-API-Key: {credentials.api_key}' -H 'Content-Type: application/json' \
    -d '{{"to": "{STOP_EXAMPLE}", "text": "Still there?"}}'

Magic numbers (e.g. +442079460903: low balance) trigger Vonage's failures: see docs/emulator.md.
Opt-outs, idempotency keys and records are kept in .demo/{STATE_FILE} across restarts.
Service log follows; Ctrl-C stops both.
"""


def _follow(service) -> None:
    """Print the service's log as it grows, until the service stops or Ctrl-C."""
    with open(service.log_path, errors="replace") as log:
        while service.popen.poll() is None:
            line = log.readline()
            if line:
                print(line, end="", flush=True)
            else:
                time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
