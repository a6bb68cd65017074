"""The SMS service: POST /send-sms through the Vonage Messages API."""

from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.exceptions import NotFound
from werkzeug.middleware.proxy_fix import ProxyFix

from .routes import health, messages, openapi, optouts, scrape, send_sms, webhooks
from .settings import Settings, read_environment
from .store import init_store
from .vonage.gateway import init_gateway
from .web.app_settings import init_settings
from .web.body import MAX_BODY_BYTES
from .web.bulkhead import init_bulkhead
from .web.problems import init_error_handlers, log_unhandled
from .web.rate_limits import init_rate_limits
from .web.request_log import configure_logging, init_request_log
from .web.security_headers import init_security_headers

logger = logging.getLogger("sms_service")


def create_app(settings: Settings | None = None) -> Flask:
    """Build a wired application; fail at once if the environment is incomplete."""
    settings = settings or Settings.from_environ(read_environment())
    configure_logging(settings.log_level)
    if settings.webhook_allow_unsigned:
        logger.warning("WEBHOOK_ALLOW_UNSIGNED is set: webhooks are accepted without a signature")
    app = Flask(__name__)
    app.log_exception = log_unhandled  # Flask's own would log the raw path and the message
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.url_map.merge_slashes = False  # "/a//b" is a 404 problem, not an HTML redirect
    if settings.trusted_proxies:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)
    # Each piece attaches itself; each extension is reached through its module's accessor.
    init_settings(app, settings)  # current_settings()
    init_request_log(app)  # first: every request, refused or not, is logged
    app.before_request(_refuse_empty_path_segments)  # after the log's start: it is logged
    init_security_headers(app)
    init_store(app, settings)  # get_store()
    init_rate_limits(app, settings)  # get_rate_limits(), get_admission(): over the store
    init_gateway(app, settings)  # get_gateway()
    init_bulkhead(app, settings)  # get_bulkhead()
    init_error_handlers(app)
    blueprints = (
        health.bp,
        send_sms.bp,
        messages.bp,
        optouts.bp,
        webhooks.bp,
        scrape.bp,
        openapi.bp,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app


def _refuse_empty_path_segments() -> None:
    """404 for a path with an empty segment. werkzeug's router drops a path's leading
    slashes, so `//send-sms` (as gunicorn passes it in PATH_INFO) would reach /send-sms."""
    if "//" in request.environ.get("PATH_INFO", ""):
        request.url_rule = None  # logged and counted as unmatched, not as the route
        raise NotFound()
