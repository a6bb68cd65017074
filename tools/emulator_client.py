"""A client of the emulator's own endpoints: counters, messages, reset, inbound SMS, and
waiting for quiet. Used by the end-to-end tests and the benchmark."""

from __future__ import annotations

import time
from pathlib import Path

import requests


class EmulatorClient:
    """Read and reset the Vonage emulator's counters over its own TLS."""

    def __init__(self, url: str, ca: Path) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.verify = str(ca)
        self.http.trust_env = False  # REQUESTS_CA_BUNDLE in the shell would override verify

    def stats(self) -> dict:
        """GET /_emulator/stats: connections, requests, accepted, attempts per number."""
        answer = self.http.get(self.url + "/_emulator/stats", timeout=10)
        answer.raise_for_status()
        return answer.json()

    def messages(self) -> list[dict]:
        """GET /_emulator/messages: the newest 10 000 accepted messages, oldest first."""
        answer = self.http.get(self.url + "/_emulator/messages", timeout=30)
        answer.raise_for_status()
        return answer.json()

    def reset(self) -> None:
        """Forget messages and counters."""
        self.http.delete(self.url + "/_emulator/messages", timeout=10).raise_for_status()

    def inbound(self, sender: str, text: str) -> requests.Response:
        """POST /_emulator/inbound: have the emulator send a signed inbound-SMS webhook."""
        return self.http.post(
            self.url + "/_emulator/inbound", json={"from": sender, "text": text}, timeout=10
        )

    def wait_until_quiet(self, settle_s: float = 0.5, timeout_s: float = 60) -> dict:
        """Wait until no request has reached the emulator for `settle_s`; return the stats.

        A load generator stopped on a deadline leaves requests in flight; the service
        still finishes them, so counters are read only once they stop moving.
        """
        deadline = time.monotonic() + timeout_s
        last = self.stats()
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.stats()
            if now["requests"] != last["requests"]:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= settle_s:
                return now
        raise TimeoutError("the emulator kept receiving requests after the load stopped")

    def close(self) -> None:
        self.http.close()
