"""Start the emulator: ``python -m emulator --help``."""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence

from emulator.auth import JwtVerifier, KeyFileError, load_public_key
from emulator.config import Config, ConfigError
from emulator.server import EmulatorServer, Services
from emulator.store import Store
from emulator.tls import ensure_certificates, server_context
from emulator.webhooks import Signer, WebhookSender

log = logging.getLogger("emulator")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """Serve until SIGTERM or SIGINT; print one ready line on stdout once listening."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # first, so an early stop is clean too
        signal.signal(signum, lambda *_: stop.set())
    logging.basicConfig(stream=sys.stderr, format="emulator: %(message)s", level=logging.INFO)
    try:
        config = Config.from_args(argv, environ)
        verifier = JwtVerifier(load_public_key(config.key_path.read_bytes()), config.application_id)
    except (ConfigError, KeyFileError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    if config.quiet:
        log.setLevel(logging.WARNING)
    paths = ensure_certificates(config.certs)
    store = Store()
    signer = Signer(config.signature_secret, config.api_key, config.application_id)
    sender = WebhookSender(signer, store)
    services = Services(config, verifier, store, sender, stopping=threading.Event())
    try:
        server = EmulatorServer(services, server_context(paths))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        log.error(
            "cannot start: port %s is already in use; set EMULATOR_PORT or --port to another"
            " port (0 picks a free one)",
            config.port,
        )
        return 2
    sender.start()
    threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True).start()
    if (config.status_webhook_url or config.inbound_webhook_url) and not config.signature_secret:
        log.warning("no VONAGE_SIGNATURE_SECRET: webhooks go out unsigned")
    log.warning("trust %s (REQUESTS_CA_BUNDLE) to reach it", paths.ca)
    host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"emulator listening on https://{host}:{server.server_port}", flush=True)
    stop.wait()
    services.stopping.set()
    server.shutdown()
    server.server_close()
    sender.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
