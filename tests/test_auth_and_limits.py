"""API keys, the per-key and per-recipient limits, and the brake on key guessing."""

import time

import pytest

from app.store.limit_storage import BoundedMemoryStorage
from app.web.rate_limits import get_rate_limits
from tests.conftest import AUTH, AUTH_B, SECRET_A, UUID, VALID_BODY, VONAGE_SMS_URL

WRONG = {"X-API-Key": "w" * 24}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": ""},
        {"X-API-Key": SECRET_A + "x"},
        {"X-API-Key": SECRET_A[:-1]},
        {"X-API-Key": "ünïcode-ключ"},
        {"Authorization": f"Bearer {SECRET_A}"},
    ],
)
def test_missing_or_wrong_key_is_a_401(client, headers):
    """Vonage is not called (the closed network would fail the test)."""
    response = client.post("/send-sms", json=VALID_BODY, headers=headers)

    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json["type"].endswith("/unauthorized")
    assert "WWW-Authenticate" in response.headers


def test_auth_comes_before_validation(client):
    response = client.post("/send-sms", json={"bad": "body"})
    assert response.status_code == 401


def test_content_type_and_size_come_before_auth(client):
    response = client.post("/send-sms", data="to=1", content_type="text/plain")
    assert response.status_code == 415
    response = client.post("/send-sms", data="x" * 17000, content_type="application/json")
    assert response.status_code == 413


def test_each_key_is_recognised(client, vonage):
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 200
    assert client.post("/send-sms", json=VALID_BODY, headers=AUTH_B).status_code == 200


def test_per_key_limit_with_retry_after(make_app, settings, vonage):
    """The third request of a key limited to 2 per minute is a 429; another key is unaffected."""
    app = make_app(settings, rate_limit="2 per minute", recipient_rate_limit="100 per minute")
    client = app.test_client()
    for _ in range(3):
        vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)

    first = client.post("/send-sms", json=VALID_BODY, headers=AUTH)
    assert (first.headers["RateLimit-Limit"], first.headers["RateLimit-Remaining"]) == ("2", "1")
    assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 200
    refused = client.post("/send-sms", json=VALID_BODY, headers=AUTH)

    assert refused.status_code == 429
    assert refused.json["type"].endswith("/rate-limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert client.post("/send-sms", json=VALID_BODY, headers=AUTH_B).status_code == 200


def test_per_key_limit_counts_invalid_requests(make_app, settings):
    """Validation comes after the key's limit, so junk cannot be sent unlimited."""
    client = make_app(settings, rate_limit="1 per minute").test_client()
    assert client.post("/send-sms", json={}, headers=AUTH).status_code == 400
    assert client.post("/send-sms", json={}, headers=AUTH).status_code == 429


def test_several_limits(make_app, settings):
    client = make_app(settings, rate_limit="100 per minute;1 per second").test_client()
    assert client.post("/send-sms", json={}, headers=AUTH).status_code == 400
    assert client.post("/send-sms", json={}, headers=AUTH).status_code == 429


def test_per_recipient_limit_across_keys(make_app, settings, vonage):
    app = make_app(settings, recipient_rate_limit="2 per minute")
    client = app.test_client()
    for _ in range(3):
        vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)

    assert client.post("/send-sms", json=VALID_BODY, headers=AUTH).status_code == 200
    assert client.post("/send-sms", json=VALID_BODY, headers=AUTH_B).status_code == 200
    refused = client.post("/send-sms", json=VALID_BODY, headers=AUTH)

    assert refused.status_code == 429
    assert refused.json["type"].endswith("/recipient-rate-limited")
    assert int(refused.headers["Retry-After"]) >= 1
    other = {**VALID_BODY, "to": "+442071838750"}
    assert client.post("/send-sms", json=other, headers=AUTH).status_code == 200


def test_recipient_limit_is_checked_after_validation(make_app, settings):
    """Invalid requests do not use up a recipient's allowance."""
    client = make_app(settings, recipient_rate_limit="1 per minute").test_client()
    for _ in range(3):
        response = client.post("/send-sms", json={**VALID_BODY, "ttl": 1}, headers=AUTH)
        assert response.status_code == 400


def test_failed_authentication_is_limited_per_ip(client, vonage):
    """After 10 failures an IP is refused even with a right key; other IPs are not."""
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    for _ in range(10):
        response = client.post(
            "/send-sms", json=VALID_BODY, headers={"X-API-Key": "guess" * 6}, environ_base=attacker
        )
        assert response.status_code == 401

    blocked = client.post("/send-sms", json=VALID_BODY, headers=AUTH, environ_base=attacker)
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers

    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    other = client.post(
        "/send-sms", json=VALID_BODY, headers=AUTH, environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    assert other.status_code == 200


def test_a_braked_address_still_serves_a_key_that_succeeded_from_it(client, vonage):
    """One NAT, two callers: a neighbour's wrong keys brake the address, and the key already
    in use there keeps working on every route; a key new to the address, right or wrong, is
    refused alike (a guess is not confirmed)."""
    nat = "203.0.113.9"
    for _ in range(2):
        vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    assert send_from(client, nat, AUTH).status_code == 200
    for _ in range(10):
        assert send_from(client, nat, WRONG).status_code == 401

    assert send_from(client, nat, AUTH).status_code == 200
    assert read_from(client, nat, AUTH).status_code == 200
    for headers in (AUTH_B, WRONG):
        assert send_from(client, nat, headers).status_code == 429
        assert read_from(client, nat, headers).status_code == 429


def test_the_brake_counts_wrong_keys_on_the_other_routes(client):
    for _ in range(10):
        assert read_from(client, "203.0.113.9", WRONG).status_code == 401
    assert read_from(client, "203.0.113.9", AUTH).status_code == 429


def send_from(client, ip, headers):
    return client.post(
        "/send-sms", json=VALID_BODY, headers=headers, environ_base={"REMOTE_ADDR": ip}
    )


def read_from(client, ip, headers):
    return client.get(f"/messages/{UUID}", headers=headers, environ_base={"REMOTE_ADDR": ip})


def test_x_forwarded_for_is_ignored_without_trusted_proxies(client):
    """A client cannot dodge the IP brake by inventing X-Forwarded-For."""
    for n in range(11):
        response = client.post(
            "/send-sms",
            json=VALID_BODY,
            headers={"X-API-Key": "w" * 24, "X-Forwarded-For": f"10.0.0.{n}"},
        )
    assert response.status_code == 429


@pytest.mark.parametrize(
    "junk", ["junk-", "203.0.113.9:80", "1.2.3.4.", "fe80::1%eth", "x" * 7000, "2001:db8::1/"]
)
def test_a_forwarded_for_that_is_not_an_ip_counts_as_the_peer(make_app, settings, junk):
    """Behind TRUSTED_PROXIES, any string once became a limiter key of its own: now only an IP
    address is believed, else the peer's address is counted (and braked)."""
    app = make_app(settings, trusted_proxies=1)
    client = app.test_client()
    for n in range(11):
        forwarded = {**WRONG, "X-Forwarded-For": f"{junk}{n}"}
        response = client.post("/send-sms", json=VALID_BODY, headers=forwarded)
    assert response.status_code == 429
    assert all(junk not in key for key in limiter_storage(app).events)


def test_one_address_spelled_two_ways_is_one_client(make_app, settings):
    client = make_app(settings, trusted_proxies=1).test_client()
    for n in range(11):
        spelling = "2001:db8::1" if n % 2 else "2001:0DB8:0:0::0001"
        forwarded = {**WRONG, "X-Forwarded-For": spelling}
        response = client.post("/send-sms", json=VALID_BODY, headers=forwarded)
    assert response.status_code == 429


def test_idle_limiter_keys_are_forgotten(make_app, settings):
    """limits' memory storage kept every key it had seen, forever; now a key whose window has
    passed goes (as other keys are counted)."""
    app = make_app(settings, auth_failure_limit="10 per 1 second")
    client = app.test_client()
    for n in range(5):
        send_from(client, f"198.51.100.{n}", WRONG)
    time.sleep(1.1)

    send_from(client, "203.0.113.9", WRONG)

    assert [key.split("/")[2] for key in limiter_storage(app).events] == ["203.0.113.9"]


def test_the_limiter_keeps_a_bounded_number_of_keys(app, client):
    """Past its bound, the key counted least recently goes first."""
    limiter_storage(app).max_keys = 3
    for n in range(5):
        send_from(client, f"198.51.100.{n}", WRONG)

    kept = sorted(key.split("/")[2] for key in limiter_storage(app).events)
    assert kept == ["198.51.100.2", "198.51.100.3", "198.51.100.4"]


def test_the_least_recently_counted_key_goes_first_whatever_its_window():
    storage = BoundedMemoryStorage(max_keys=2)
    storage.acquire_entry("hourly-a", 10, 3600)
    storage.acquire_entry("per-second-b", 10, 1)
    storage.acquire_entry("hourly-a", 10, 3600)  # counted again: now the most recent
    storage.acquire_entry("hourly-c", 10, 3600)
    assert sorted(storage.events) == ["hourly-a", "hourly-c"]


def limiter_storage(app):
    return get_rate_limits(app).strategy.storage


def test_trusted_proxy_supplies_the_client_ip(make_app, settings):
    client = make_app(settings, trusted_proxies=1).test_client()
    for n in range(11):
        response = client.post(
            "/send-sms",
            json=VALID_BODY,
            headers={"X-API-Key": "w" * 24, "X-Forwarded-For": f"10.0.0.{n}"},
        )
    assert response.status_code == 401  # each forwarded client has its own allowance


def test_health_is_never_limited(make_app, settings):
    client = make_app(settings, rate_limit="1 per minute").test_client()
    for _ in range(30):
        assert client.get("/health").status_code == 200


def test_flask_limiters_request_hooks_are_not_installed(app):
    """Its storage and strategy are wired, its per-request hooks are not (they decide
    nothing here and cost a tenth of a send's CPU)."""
    limiter = get_rate_limits(app).limiter
    hooks = [
        *app.before_request_funcs.get(None, []),
        *app.after_request_funcs.get(None, []),
        *app.teardown_request_funcs.get(None, []),
    ]
    owners = {getattr(hook, "__self__", None) for hook in hooks}
    owners |= {hook.args[0] for hook in hooks if getattr(hook, "args", None)}
    assert limiter not in owners
    assert limiter.limiter is not None  # the moving-window strategy over its storage
