"""Headers every response carries: this is a JSON API, never a page to render or frame."""

from flask import Flask, Response

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def init_security_headers(app: Flask) -> None:
    """Add SECURITY_HEADERS to every answer, problems included."""
    app.after_request(_add_security_headers)


def _add_security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
