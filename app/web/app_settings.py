"""The running app's settings, as the routes and the web layer read them per request.

create_app attaches the Settings it was built with (init_settings); current_settings reaches
them, typed. What is wired at start-up (the store, the gateway, the limits, the bulkhead)
is handed the settings by create_app instead: app.vonage and app.store sit below this
layer (the import-linter contracts in pyproject.toml).
"""

from __future__ import annotations

from flask import Flask, current_app

from ..settings import Settings

_EXTENSION = "settings"  # the settings' key in app.extensions


def init_settings(app: Flask, settings: Settings) -> None:
    """Attach the app's settings (current_settings reaches them)."""
    app.extensions[_EXTENSION] = settings


def current_settings() -> Settings:
    """The settings of the app handling the current request."""
    return current_app.extensions[_EXTENSION]
