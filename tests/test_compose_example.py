"""compose.example.yaml can start (no Docker engine here, so it is parsed and checked): the key
is mounted where the environment says, Redis is wired in, no secret is written inline, and the
image gets every file it needs."""

import fnmatch
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.example.yaml").read_text())
SMS = COMPOSE["services"]["sms"]
SECRET_VARIABLES = ("API_KEYS", "VONAGE_PRIVATE_KEY", "VONAGE_SIGNATURE_SECRET", "METRICS_TOKEN")


def test_the_key_path_in_the_environment_is_mounted():
    """VONAGE_APPLICATION_PRIVATE_KEY_PATH names a file a secret or a volume puts there."""
    path = SMS["environment"]["VONAGE_APPLICATION_PRIVATE_KEY_PATH"]
    mounted = {f"/run/secrets/{name}" for name in SMS.get("secrets", [])}
    mounted |= {volume.split(":")[1] for volume in SMS.get("volumes", [])}
    assert path in mounted
    for name in SMS.get("secrets", []):
        assert (ROOT / COMPOSE["secrets"][name]["file"]).name == "private.key"


def test_redis_url_points_at_the_redis_service():
    url = SMS["environment"]["REDIS_URL"]
    assert re.fullmatch(r"redis://redis:6379/\d+", url)
    assert "redis" in COMPOSE["services"]
    assert "redis" in SMS["depends_on"]


def test_no_secret_is_inline():
    """Secrets come from .env or secret files, never from the compose file itself."""
    assert SMS["env_file"] == ".env"
    assert not set(SECRET_VARIABLES) & set(SMS["environment"])
    assert ".env" in set((ROOT / ".dockerignore").read_text().split())


def test_both_services_have_a_health_check():
    for service in COMPOSE["services"].values():
        assert service["healthcheck"]["test"]
    assert "/health" in " ".join(SMS["healthcheck"]["test"])


def test_the_stop_grace_period_outlasts_gunicorns_graceful_timeout(base_settings):
    period = SMS["stop_grace_period"]
    assert period.endswith("s")
    graceful = base_settings.request_deadline_s  # gunicorn.conf.py's, with the defaults
    assert int(period[:-1]) > graceful


def test_dockerignore_keeps_what_the_image_copies():
    """Every file or folder the Dockerfile copies reaches the build context."""
    ignored = [p for p in (ROOT / ".dockerignore").read_text().split() if not p.startswith("#")]
    copied = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            copied += [w.rstrip("/") for w in line.split()[1:-1] if not w.startswith("--")]
    assert copied
    for path in copied:
        assert (ROOT / path).exists(), path
        excluded = [p for p in ignored if not p.startswith("!") and fnmatch.fnmatch(path, p)]
        assert not excluded, f"{path} is excluded by {excluded}"
