"""gunicorn's own log, as the app's JSON lines on stdout, quoting no request.

gunicorn passes exceptions as arguments of its messages ("Ignored premature client
disconnection. %s"), and their text quotes the raw request: a header with its secret, a
request line or a chunk size with a phone number. Such an argument is logged by its class
only. The worker (app/server/worker.py) replaces gunicorn's handle_error, which writes that
text into the message itself.
"""

from __future__ import annotations

import logging

from gunicorn import glogging

from ..web.request_log import JsonFormatter, StdoutHandler


class ServerLog(glogging.Logger):
    """gunicorn's logger_class: its error log in the app's JSON lines, exceptions by class."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if cfg.errorlog == "-":  # stdout, beside the app's lines, rather than stderr
            for handler in list(self.error_log.handlers):
                if getattr(handler, "_gunicorn", False):
                    self.error_log.removeHandler(handler)
            stdout = StdoutHandler()
            stdout._gunicorn = True  # gunicorn's mark: its next setup replaces this handler
            self.error_log.addHandler(stdout)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())
        if not any(isinstance(known, ExceptionsByClass) for known in self.error_log.filters):
            self.error_log.addFilter(ExceptionsByClass())


class ExceptionsByClass(logging.Filter):
    """Replace each exception among a record's arguments by its class name."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                type(arg).__name__ if isinstance(arg, BaseException) else arg for arg in record.args
            )
        return True
