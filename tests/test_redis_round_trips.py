"""How many times one POST /send-sms waits on Redis: 2 for a send, 1 for a refusal.

Every round trip is one packet written to Redis and waited for, so the count is taken
where redis-py writes: each call to a connection's send_packed_command (a command, an
EVALSHA, or a whole MULTI/EXEC pipeline). Both clients count, the limiter's and the
store's. A first send warms up what happens once per process (connecting, loading the
scripts), so only the steady state is measured.
"""

import contextlib

import pytest
import redis.connection

from tests.conftest import AUTH, AUTH_B, VALID_BODY, VONAGE_SMS_URL

UUIDS = [f"d8f86df1-dec6-442f-870a-2241be27d7{n:02d}" for n in range(10)]


@contextlib.contextmanager
def counting_round_trips(monkeypatch):
    """Record the first word of every packet written to Redis while the block runs."""
    sent: list[str] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def send_packed_command(self, command, check_health=True):
        sent.append(_first_word(command))
        return original(self, command, check_health)

    with monkeypatch.context() as patch:
        patch.setattr(
            redis.connection.AbstractConnection, "send_packed_command", send_packed_command
        )
        yield sent


def _first_word(command) -> str:
    """The name of the (first) command in a packed RESP request: *N, $len, NAME, ..."""
    packed = command if isinstance(command, bytes | str) else b"".join(command)
    packed = packed.encode() if isinstance(packed, str) else packed
    return packed.split(b"\r\n")[2].decode().upper()


@pytest.fixture(params=["60 per minute", "10 per second;100 per minute;1000 per hour"])
def redis_client(request, make_app, settings, redis_url):
    """The service on Redis, with one limit per key (the default) or several."""
    app = make_app(
        settings,
        redis_url=redis_url,
        rate_limit=request.param,
        recipient_rate_limit="100 per minute",
    )
    return app.test_client()


def send(client, body=None, headers=AUTH, ip="127.0.0.1"):
    return client.post(
        "/send-sms", json=body or VALID_BODY, headers=headers, environ_base={"REMOTE_ADDR": ip}
    )


def accept(vonage, *uuids):
    """Vonage accepts one SMS per uuid, in order (new uuids: an existing record is merged)."""
    for uuid in uuids:
        vonage.post(VONAGE_SMS_URL, json={"message_uuid": uuid}, status=202)


def test_a_send_waits_on_redis_twice(redis_client, vonage, monkeypatch):
    """Admission (brake, key, limits, opt-out) in one round trip, the record in another."""
    accept(vonage, *UUIDS[:2])
    assert send(redis_client).status_code == 200  # warm-up: connections and scripts

    with counting_round_trips(monkeypatch) as sent:
        response = send(redis_client)

    assert response.status_code == 200
    assert "RateLimit-Remaining" in response.headers
    assert sent == ["EVALSHA", "MULTI"]


def test_a_send_with_an_idempotency_key_waits_three_times(redis_client, vonage, monkeypatch):
    """Admission also takes the key; the record is saved; the answer is kept."""
    accept(vonage, *UUIDS[:2])
    warm = send(redis_client, headers={**AUTH, "Idempotency-Key": "warm-up"})
    assert warm.status_code == 200

    with counting_round_trips(monkeypatch) as sent:
        response = send(redis_client, headers={**AUTH, "Idempotency-Key": "order-1"})

    assert response.status_code == 200
    assert sent == ["EVALSHA", "MULTI", "EVALSHA"]


ATTACKER, WRONG_KEY = "203.0.113.9", {"X-API-Key": "w" * 24}


def _spend_failed_keys(client, vonage):
    for _ in range(10):
        assert send(client, headers=WRONG_KEY, ip=ATTACKER).status_code == 401


def _spend_the_key_limit(client, vonage):
    assert send(client, body={"to": "+1"}).status_code == 400  # an invalid body counts too


def _opt_out(client, vonage):
    assert client.put(f"/opt-outs/{VALID_BODY['to']}", headers=AUTH).status_code == 200


def _send_from_the_other_key(client, vonage):
    accept(vonage, UUIDS[0])
    assert send(client, headers=AUTH_B).status_code == 200


def _send_once(client, vonage):
    accept(vonage, UUIDS[0])
    assert send(client, headers={**AUTH, "Idempotency-Key": "order-1"}).status_code == 200


@pytest.mark.parametrize(
    ("setup", "headers", "body", "status"),
    [
        pytest.param(_spend_failed_keys, AUTH, None, 429, id="failed-key brake"),
        pytest.param(None, WRONG_KEY, None, 401, id="wrong key"),
        pytest.param(None, {**AUTH, "Idempotency-Key": ""}, None, 400, id="malformed header"),
        pytest.param(_send_once, {**AUTH, "Idempotency-Key": "order-1"}, None, 200, id="replay"),
        pytest.param(_spend_the_key_limit, AUTH, None, 429, id="key limit"),
        pytest.param(None, AUTH, {"to": "+1"}, 400, id="invalid body"),
        pytest.param(_opt_out, AUTH, None, 422, id="opted out"),
        pytest.param(_send_from_the_other_key, AUTH, None, 429, id="recipient limit"),
    ],
)
def test_a_refusal_waits_on_redis_once(
    make_app, settings, redis_url, vonage, monkeypatch, setup, headers, body, status
):
    """Every refusal, and a replay, is answered from the admission's one round trip."""
    client = make_app(
        settings,
        redis_url=redis_url,
        rate_limit="1 per minute",
        recipient_rate_limit="1 per minute",
    ).test_client()
    send(client, headers=WRONG_KEY, ip="192.0.2.1")  # warm-up: connect, load the script
    if setup:
        setup(client, vonage)

    with counting_round_trips(monkeypatch) as sent:
        response = send(client, body=body, headers=headers, ip=ATTACKER)

    assert response.status_code == status
    assert sent == ["EVALSHA"]


def test_the_segment_budget_adds_no_round_trip(make_app, settings, redis_url, vonage, monkeypatch):
    """The budget is tested and spent inside the admission's script: a send still waits on
    Redis twice, and a refusal for its budget once (nothing else is counted or saved)."""
    client = make_app(settings, redis_url=redis_url, segment_budget="12 per day").test_client()
    six_segments = {**VALID_BODY, "text": "a" * (153 * 5 + 1)}
    accept(vonage, *UUIDS[:2])
    assert send(client, body=six_segments).status_code == 200  # warm-up

    with counting_round_trips(monkeypatch) as sent:
        response = send(client, body=six_segments)
    assert (response.status_code, response.headers["RateLimit-Remaining"]) == (200, "0")
    assert sent == ["EVALSHA", "MULTI"]

    with counting_round_trips(monkeypatch) as sent:
        refused = send(client)
    assert refused.status_code == 429
    assert refused.json["type"].endswith("/budget-exhausted")
    assert sent == ["EVALSHA"]
