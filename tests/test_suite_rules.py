"""The suite's own rule: outside the `slow` mark, nothing starts a process."""

import subprocess

import pytest


def test_a_test_outside_the_slow_mark_cannot_start_a_process():
    with pytest.raises(AssertionError, match="mark it slow"):
        subprocess.run(["true"], check=False)  # noqa: S607 - it must not start


def test_every_test_that_uses_redis_server_is_slow(request):
    users = [item for item in request.session.items if "redis_server" in item.fixturenames]
    assert all(item.get_closest_marker("slow") for item in users)
