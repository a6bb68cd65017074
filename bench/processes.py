"""The benchmark's guard for its Redis configuration."""

from __future__ import annotations

import shutil

from tools.stack import ROOT


def redis_unavailable_reason() -> str | None:
    """Why the Redis configuration cannot run here, or None when it can."""
    if shutil.which("redis-server") is None:
        return "redis-server is not on PATH (Debian package redis-server)"
    if "REDIS_URL" not in (ROOT / "app" / "settings.py").read_text():
        return "the service does not read REDIS_URL yet (app/settings.py)"
    return None
