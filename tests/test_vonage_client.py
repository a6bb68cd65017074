"""The one Vonage client: key parsed once, JWT reused and renewed, connections reused,
and a POST never re-sent by the transport."""

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest

from app.vonage.auth import RENEW_AFTER_S, TOKEN_LIFETIME_S, CachedJwtAuth
from app.vonage.gateway import get_gateway
from app.vonage.transport import VonageTransport
from tests.conftest import APPLICATION_ID, AUTH, UUID, VALID_BODY, VONAGE_SMS_URL
from tests.raw_https import (
    RawHttpsServer,
    answer_202,
    answer_half_a_body,
    break_tls_then_close,
    close_without_answer,
)
from tools.stack import free_port

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def count_pem_loads(monkeypatch):
    """Count every PEM parse PyJWT does while signing."""
    calls = []
    original = jwt.algorithms.load_pem_private_key

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(jwt.algorithms, "load_pem_private_key", counting)
    return calls


def test_the_sdk_as_documented_parses_the_key_per_request(count_pem_loads, private_key_pem):
    """The cost we avoid, shown with the SDK's own Auth: the counter works."""
    from vonage import Auth

    naive = Auth(application_id=APPLICATION_ID, private_key=private_key_pem)
    for _ in range(3):
        naive.create_jwt_auth_string()
    assert len(count_pem_loads) == 3


def test_many_sends_parse_the_key_never_and_sign_once(client, vonage, count_pem_loads):
    for _ in range(5):
        vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    for _ in range(5):
        assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 200

    tokens = {call.request.headers["Authorization"] for call in vonage.calls}
    assert len(tokens) == 1
    assert count_pem_loads == []


def test_token_is_a_valid_application_jwt(base_settings):
    auth = CachedJwtAuth(APPLICATION_ID, base_settings.vonage_private_key)
    token = auth.create_jwt_auth_string().removeprefix(b"Bearer ")

    claims = jwt.decode(token, base_settings.vonage_private_key.public_key(), algorithms=["RS256"])

    assert claims["application_id"] == APPLICATION_ID
    assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME_S
    assert claims["jti"]


def test_token_is_renewed_before_it_expires(base_settings):
    clock = FakeClock()
    auth = CachedJwtAuth(APPLICATION_ID, base_settings.vonage_private_key, clock)
    first = auth.generate_application_jwt()

    clock.now += RENEW_AFTER_S - 1
    assert auth.generate_application_jwt() == first

    clock.now += 1
    second = auth.generate_application_jwt()
    assert second != first
    claims = jwt.decode(second, options={"verify_signature": False})
    assert claims["iat"] == int(clock.now)
    # Renewed with a third of its life left: never sent expired.
    assert claims["iat"] + TOKEN_LIFETIME_S - clock.now > 4 * 60


def test_renew_forces_a_new_token(base_settings):
    auth = CachedJwtAuth(APPLICATION_ID, base_settings.vonage_private_key, FakeClock())
    first = auth.generate_application_jwt()
    auth.renew()
    assert auth.generate_application_jwt() != first


def test_threads_share_one_token(base_settings):
    auth = CachedJwtAuth(APPLICATION_ID, base_settings.vonage_private_key)
    tokens = []
    threads = [
        threading.Thread(target=lambda: tokens.append(auth.create_jwt_auth_string()))
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1


@pytest.fixture
def raw_server(tmp_path, monkeypatch, vonage):
    """Start a RawHttpsServer trusted through REQUESTS_CA_BUNDLE; let requests reach it."""
    servers = []

    def start(behaviour):
        server = RawHttpsServer(tmp_path / "certs", behaviour)
        servers.append(server)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.paths.ca))
        vonage.add_passthru(f"https://{server.host}")
        return server

    yield start
    for server in servers:
        server.stop()


def real_app(make_app, settings, host, **changes):
    return make_app(settings, vonage_api_host=host, **changes).test_client()


@pytest.mark.parametrize(
    "behaviour",
    [
        close_without_answer,  # the SDK would re-send on RemoteDisconnected
        break_tls_then_close,  # a TLS error after the request left is not a failed handshake
    ],
)
def test_a_connection_lost_after_the_request_is_sent_once(
    raw_server, make_app, settings, behaviour
):
    """The answer is lost after the request left: 504, and nothing is sent again."""
    server = raw_server(behaviour)
    client = real_app(make_app, settings, server.host)

    response = client.post("/send-sms", json=VALID_BODY, headers=AUTH)

    assert response.status_code == 504
    assert response.json["type"].endswith("/upstream-timeout")
    # It says what happened: the connection closed, not that a timeout passed.
    assert "connection to Vonage closed" in response.json["detail"]
    assert "within" not in response.json["detail"]
    time.sleep(0.2)  # would any re-send arrive late?
    assert len(server.requests) == 1


def test_hung_upstream_times_out_and_is_sent_once(raw_server, make_app, settings):
    release = threading.Event()
    server = raw_server(lambda conn, request: release.wait(5))
    client = real_app(make_app, settings, server.host, vonage_timeout_s=1)

    started = time.monotonic()
    response = client.post("/send-sms", json=VALID_BODY, headers=AUTH)
    elapsed = time.monotonic() - started
    release.set()

    assert response.status_code == 504
    assert "did not answer within 1 s" in response.json["detail"]
    assert 1 <= elapsed < 3
    assert len(server.requests) == 1


def test_answer_lost_in_the_body_is_sent_once(raw_server, make_app, settings):
    """Headers came, the body stopped: Vonage has the SMS, so 504 and no second try."""
    release = threading.Event()
    server = raw_server(answer_half_a_body(release))
    client = real_app(make_app, settings, server.host, vonage_timeout_s=1)

    response = client.post("/send-sms", json=VALID_BODY, headers=AUTH)
    release.set()

    assert response.status_code == 504
    assert "did not answer within 1 s" in response.json["detail"]  # the body stalled
    assert len(server.requests) == 1


def test_failed_tls_handshake_is_retried_then_503(
    tmp_path, monkeypatch, make_app, settings, vonage
):
    """An untrusted certificate stops the handshake: nothing was sent, so retrying is safe."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    server = RawHttpsServer(tmp_path / "certs", answer_202)  # its CA is trusted by nobody
    vonage.add_passthru(f"https://{server.host}")
    try:
        app = make_app(settings, vonage_api_host=server.host)
        response = app.test_client().post("/send-sms", json=VALID_BODY, headers=AUTH)
    finally:
        server.stop()

    assert response.status_code == 503
    assert response.json["type"].endswith("/upstream-unavailable")
    assert len(app.extensions["sleeps"]) == 2
    assert (server.connections, server.requests) == (3, [])


def test_unreachable_proxy_is_retried_then_503(monkeypatch, make_app, settings, vonage):
    """The proxy refused the connection: nothing reached Vonage, so retrying is safe."""
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    vonage.add_passthru(VONAGE_SMS_URL)
    app = make_app(settings)

    response = app.test_client().post("/send-sms", json=VALID_BODY, headers=AUTH)

    assert response.status_code == 503
    assert len(app.extensions["sleeps"]) == 2


def test_connection_refused_is_retried_then_503(make_app, settings, vonage):
    host = f"127.0.0.1:{free_port()}"
    vonage.add_passthru(f"https://{host}")
    app = make_app(settings, vonage_api_host=host)

    response = app.test_client().post("/send-sms", json=VALID_BODY, headers=AUTH)

    assert response.status_code == 503
    assert response.json["type"].endswith("/upstream-unavailable")
    assert len(app.extensions["sleeps"]) == 2  # three attempts


def test_connection_is_reused_across_sends(raw_server, make_app, settings):
    server = raw_server(answer_202)
    client = real_app(make_app, settings, server.host)

    for _ in range(5):
        assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 200

    assert len(server.requests) == 5
    assert server.connections == 1


def test_pool_keeps_a_connection_per_send_in_flight(raw_server, settings):
    """Pool size follows VONAGE_MAX_IN_FLIGHT: 12 concurrent sends, twice, open 12 connections
    (urllib3's default of 10 would drop two after the first round and open two more)."""

    def slow_202(conn, request):
        time.sleep(0.3)  # every send of a round is in flight at once
        answer_202(conn, request)

    server = raw_server(slow_202)
    transport = VonageTransport(
        dataclasses.replace(settings, vonage_api_host=server.host, vonage_max_in_flight=12)
    )
    with ThreadPoolExecutor(12) as pool:
        for _ in range(2):
            answers = list(pool.map(lambda _: transport.post(b"{}").status_code, range(12)))
            assert answers == [202] * 12

    assert server.connections == 12


def test_each_request_gets_its_own_headers_and_no_cookie(app, client, vonage):
    """Headers are built per call, and a cookie Vonage sets is neither kept nor sent back
    (a jar would be state shared by every thread)."""
    sticky = {"Set-Cookie": "AWSALB=sticky; Path=/"}
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202, headers=sticky)
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)

    for _ in range(2):
        assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 200

    for call in vonage.calls:
        headers = call.request.headers
        assert headers["Authorization"].startswith(b"Bearer ")
        assert headers["Content-Type"] == headers["Accept"] == "application/json"
        assert headers["User-Agent"].startswith("sms-service/")
        assert "Cookie" not in headers
    assert len(get_gateway(app).transport.session.cookies) == 0


GEVENT_SENDS = """
from gevent import monkey

monkey.patch_all()

import json, os, time
import gevent
from app.settings import Settings
from app.vonage.gateway import SmsGateway
from app.domain.sms_request import parse_send_sms
from app.vonage.transport import VonageTransport

settings = Settings.from_environ(json.loads(os.environ["TEST_SETTINGS"]))
gateway = SmsGateway(VonageTransport(settings), settings)
message = parse_send_sms({"to": "+14155550100", "text": "hi"}, settings)
started = time.monotonic()
jobs = [gevent.spawn(gateway.send, message) for _ in range(20)]
gevent.joinall(jobs, raise_error=True)
print(json.dumps({"uuids": [job.value for job in jobs], "elapsed": time.monotonic() - started}))
"""


@pytest.mark.slow  # gevent patches a child Python, not this one
def test_sends_run_side_by_side_under_gevent(raw_server, test_env):
    """Monkey-patched, 20 greenlets each wait 0.3 s for Vonage at the same time: nothing in
    the transport blocks the loop or keeps per-thread state."""
    pytest.importorskip("gevent", reason="gevent (for gunicorn's gevent worker) is not installed")

    def slow_202(conn, request):
        time.sleep(0.3)
        answer_202(conn, request)

    server = raw_server(slow_202)
    environment = {
        **os.environ,  # REQUESTS_CA_BUNDLE trusts the server
        "TEST_SETTINGS": json.dumps({**test_env, "VONAGE_API_HOST": server.host}),
    }
    result = subprocess.run(
        [sys.executable, "-c", GEVENT_SENDS],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["uuids"] == [UUID] * 20
    assert outcome["elapsed"] < 3  # one after another: 6 s
    assert (len(server.requests), server.connections) == (20, 20)


def test_environment_is_read_once_at_start(monkeypatch, base_settings):
    """CA bundle and proxies come from the environment at start-up, not on every request."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/our-ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = VonageTransport(base_settings).session

    assert session.trust_env is False
    assert session.verify == "/etc/ssl/our-ca.pem"
    assert session.proxies["https"] == "http://proxy.internal:3128"


def test_environment_changed_after_start_is_not_read(raw_server, monkeypatch, make_app, settings):
    """A proxy set after start-up (here one nobody listens on) is never used."""
    server = raw_server(answer_202)
    client = real_app(make_app, settings, server.host)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 200


def test_no_proxy_is_honoured(monkeypatch, base_settings):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "api.nexmo.com")
    session = VonageTransport(base_settings).session
    assert "https" not in session.proxies
