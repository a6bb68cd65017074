"""Delivery receipts reach the record, each key reads only its own messages, STOP is honoured."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from app.store import get_store
from app.store.contract import StorageUnavailable
from tests.conftest import AUTH, AUTH_B, UUID, VALID_BODY, VONAGE_SMS_URL
from tests.webhook_signing import SIGNATURE_SECRET, inbound_body, sign, signed_post, status_body


@pytest.fixture
def app(make_app, settings):
    return make_app(settings, signature_secrets=(SIGNATURE_SECRET,))


def send(client, headers=AUTH, **body):
    return client.post("/send-sms", json={**VALID_BODY, **body}, headers=headers)


def test_a_send_is_recorded_and_readable_by_its_key(client, accept):
    send(client, client_ref="order-9")

    response = client.get(f"/messages/{UUID}", headers=AUTH)

    assert response.status_code == 200
    record = response.json
    assert record["message_uuid"] == UUID
    assert (record["status"], record["to"], record["from"]) == (
        "accepted",
        "+14155550100",
        "+447700900000",
    )
    assert (record["encoding"], record["segments"], record["client_ref"]) == ("GSM-7", 1, "order-9")
    assert record["created_at"].endswith("Z")
    assert record["api_key"] == "alpha"  # the key's name (issue 11 item 19), never its secret


def later(seconds: int) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


def test_receipts_update_the_record(client, accept):
    send(client)
    signed_post(client, "/webhooks/status", status_body(UUID, "submitted", later(1)))
    response = signed_post(
        client,
        "/webhooks/status",
        status_body(UUID, "delivered", later(3), usage={"currency": "EUR", "price": "0.0333"}),
    )
    assert response.status_code == 200

    record = client.get(f"/messages/{UUID}", headers=AUTH).json
    assert record["status"] == "delivered"
    assert record["price"] == "0.0333"
    assert [h["status"] for h in record["history"]] == ["accepted", "submitted", "delivered"]


def test_another_key_gets_404_never_403(client, accept):
    send(client)
    response = client.get(f"/messages/{UUID}", headers=AUTH_B)
    assert response.status_code == 404
    assert response.json["type"].endswith("/not-found")
    unknown = client.get("/messages/00000000-0000-4000-8000-000000000000", headers=AUTH)
    assert unknown.status_code == 404
    assert response.json["detail"] == unknown.json["detail"]  # indistinguishable


def test_every_404_has_one_title(client):
    """An unknown message and an unknown route are both "Not found", not "Not Found" too."""
    unknown_message = client.get("/messages/00000000-0000-4000-8000-000000000000", headers=AUTH)
    unknown_route = client.get("/no-such-route", headers=AUTH)

    assert unknown_message.status_code == unknown_route.status_code == 404
    assert unknown_message.json["title"] == unknown_route.json["title"] == "Not found"


def test_message_lookup_needs_a_key(client):
    assert client.get(f"/messages/{UUID}").status_code == 401


def test_unknown_message_receipt_is_kept_but_readable_by_nobody(app, client):
    assert (
        signed_post(
            client, "/webhooks/status", status_body("dddd", "delivered", "2026-01-01T10:00:03Z")
        ).status_code
        == 200
    )
    assert get_store(app).get_message("dddd")["status"] == "delivered"
    assert client.get("/messages/dddd", headers=AUTH).status_code == 404


def test_error_title_as_a_number_or_a_string(client, accept):
    send(client)
    for title in (1250, "1250"):
        body = status_body(
            UUID,
            "rejected",
            "2026-01-01T10:00:03Z",
            error={
                "type": "https://developer.vonage.com/api-errors/messages#1250",
                "title": title,
                "detail": "Unroutable",
            },
        )
        assert signed_post(client, "/webhooks/status", body).status_code == 200
    record = client.get(f"/messages/{UUID}", headers=AUTH).json
    assert record["error"] == {"code": "1250", "reason": "Unroutable"}


def test_unknown_fields_and_other_channel_statuses_are_taken(client, accept):
    send(client)
    body = status_body(UUID, "read", "2026-01-01T10:00:03Z", workflow={"id": "x"})
    assert signed_post(client, "/webhooks/status", body).status_code == 200
    assert client.get(f"/messages/{UUID}", headers=AUTH).json["status"] == "accepted"


@pytest.mark.parametrize("body", [{"status": "delivered"}, ["not", "an", "object"]])
def test_malformed_receipts_are_a_400(client, body):
    assert signed_post(client, "/webhooks/status", body).status_code == 400


@pytest.mark.parametrize("status", [["delivered"], {"a": 1}, 7, None, "accepted"])
def test_odd_status_values_are_taken_and_ignored(app, client, status):
    """Found by fuzzing: a list as `status` crashed the lookup (500)."""
    body = status_body(UUID, "delivered", "2026-01-01T10:00:03Z")
    body["status"] = status
    assert signed_post(client, "/webhooks/status", body).status_code == 200
    assert get_store(app).get_message(UUID) is None


@pytest.mark.parametrize(
    "word", ["STOP", "stop", "  Stop  ", "STOPALL", "UNSUBSCRIBE", "cancel", "END", "quit"]
)
def test_stop_words_opt_out_and_sends_are_refused(client, word):
    response = signed_post(client, "/webhooks/inbound", inbound_body("14155550100", word))
    assert response.status_code == 200

    refused = send(client)  # the closed network would fail the test if Vonage were called

    assert refused.status_code == 422
    assert refused.json["type"].endswith("/recipient-opted-out")


@pytest.mark.parametrize("word", ["START", "unstop", "Yes"])
def test_start_words_opt_back_in(client, accept, word):
    signed_post(client, "/webhooks/inbound", inbound_body("14155550100", "STOP"))
    signed_post(client, "/webhooks/inbound", inbound_body("14155550100", word))
    assert send(client).status_code == 200


@pytest.mark.parametrize("text", ["Please stop", "STOP IT", "stopp", ""])
def test_other_texts_change_nothing(client, accept, text):
    assert (
        signed_post(client, "/webhooks/inbound", inbound_body("14155550100", text)).status_code
        == 200
    )
    assert send(client).status_code == 200


@pytest.mark.parametrize(
    "sender",
    [
        "\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0660\u0660",  # Arabic-Indic
        "\u06f1\u06f4\u06f1\u06f5\u06f5\u06f5\u06f5\u06f0\u06f1\u06f0\u06f0",  # Persian
        "\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff10\uff11\uff10\uff10",  # fullwidth
        "+\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0660\u0660",
        "0014155550100",  # an international 00 prefix: Vonage writes neither + nor 00
        "VONAGE",  # an alphanumeric sender ID
    ],
)
def test_only_ascii_e164_senders_can_opt_out(app, client, accept, capsys, sender):
    """Issue 11, item 11: digits of other scripts or a 00 prefix made junk opt-out entries that
    never match a real number. The webhook is acknowledged; no keyword acts."""
    response = signed_post(client, "/webhooks/inbound", inbound_body(sender, "STOP"))

    assert response.status_code == 200
    assert '"action": "none"' in capsys.readouterr().out
    assert get_store(app)._opt_outs == {}  # no junk entry
    assert send(client).status_code == 200


@pytest.mark.parametrize("sender", ["14155550100", "+14155550100"])
def test_ascii_e164_senders_opt_out_normalised(client, sender):
    signed_post(client, "/webhooks/inbound", inbound_body(sender, "STOP"))
    assert client.get("/opt-outs/+14155550100", headers=AUTH).json["opted_out"] is True


def test_inbound_is_logged_masked_without_text(client, capsys):
    signed_post(client, "/webhooks/inbound", inbound_body("14155550100", "my secret reply"))
    out = capsys.readouterr().out
    assert "my secret reply" not in out
    assert "14155550100" not in out
    assert '"from": "*********00"' in out


def signed(body: dict) -> tuple[bytes, dict]:
    """A body and headers signed once, to be sent again as an eavesdropper would."""
    raw = json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {sign(raw)}", "Content-Type": "application/json"}
    return raw, headers


def test_a_replayed_stop_changes_nothing(client, accept, capsys):
    """Issue 11, item 10: a STOP replayed after the recipient's START (within the token's
    max age) is acknowledged, so that Vonage stops retrying, and does not opt them out."""
    stop, stop_headers = signed(inbound_body("14155550100", "STOP"))
    assert client.post("/webhooks/inbound", data=stop, headers=stop_headers).status_code == 200
    signed_post(client, "/webhooks/inbound", inbound_body("14155550100", "START"))

    replay = client.post("/webhooks/inbound", data=stop, headers=stop_headers)

    assert replay.status_code == 200 and replay.json == {"received": True}
    assert client.get("/opt-outs/+14155550100", headers=AUTH).json["opted_out"] is False
    assert send(client).status_code == 200
    assert "webhook replay ignored" in capsys.readouterr().out


def test_a_replayed_status_webhook_is_acknowledged_and_not_applied(app, client, capsys):
    raw, headers = signed(status_body(UUID, "delivered", "2026-01-01T10:00:03Z"))
    assert client.post("/webhooks/status", data=raw, headers=headers).status_code == 200
    assert '"event": "status webhook"' in capsys.readouterr().out

    replay = client.post("/webhooks/status", data=raw, headers=headers)

    assert replay.status_code == 200
    out = capsys.readouterr().out
    assert "webhook replay ignored" in out and '"event": "status webhook"' not in out


def test_a_webhook_that_failed_is_applied_when_retried_with_its_token(app, client, monkeypatch):
    """A token is forgotten when its webhook fails (here: storage out of reach), so that
    Vonage's retry of it is not taken for a replay."""
    store = get_store(app)
    apply_status = store.apply_status

    def unavailable(event):
        monkeypatch.setattr(store, "apply_status", apply_status)
        raise StorageUnavailable()

    monkeypatch.setattr(store, "apply_status", unavailable)
    raw, headers = signed(status_body(UUID, "delivered", "2026-01-01T10:00:03Z"))
    assert client.post("/webhooks/status", data=raw, headers=headers).status_code == 503

    assert client.post("/webhooks/status", data=raw, headers=headers).status_code == 200
    assert store.get_message(UUID)["status"] == "delivered"


def test_unsigned_inbound_is_not_applied(client, accept):
    client.post("/webhooks/inbound", json=inbound_body("14155550100", "STOP"))
    assert send(client).status_code == 200


def test_opt_out_api(client):
    number = "+14155550100"
    assert client.get(f"/opt-outs/{number}", headers=AUTH).json == {
        "number": number,
        "opted_out": False,
        "since": None,
        "source": None,
    }

    added = client.put(f"/opt-outs/{number}", headers=AUTH)
    assert added.status_code == 200 and added.json["opted_out"] is True
    assert added.json["source"] == "api"
    since = added.json["since"]
    assert client.put("/opt-outs/14155550100", headers=AUTH_B).json["since"] == since
    assert client.get(f"/opt-outs/{number}", headers=AUTH_B).json["since"] == since
    assert send(client).status_code == 422

    removed = client.delete(f"/opt-outs/{number}", headers=AUTH)
    assert removed.json == {"number": number, "opted_out": False, "since": None, "source": None}
    assert client.get(f"/opt-outs/{number}", headers=AUTH).json["opted_out"] is False


def audit_lines(out: str) -> list[dict]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == "opt-out audit"]


def test_an_sms_stop_is_not_lifted_by_an_api_key(client, capsys):
    """Issue 11, item 9: only the recipient's START lifts their STOP; a key gets a 409 and
    the next send is still refused."""
    signed_post(client, "/webhooks/inbound", inbound_body("14155550100", "STOP"))
    assert client.get("/opt-outs/+14155550100", headers=AUTH).json["source"] == "sms"

    refused = client.delete("/opt-outs/+14155550100", headers=AUTH)

    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"
    assert refused.json["type"].endswith("/opted-out-by-recipient")
    assert "START" in refused.json["detail"]
    assert client.get("/opt-outs/+14155550100", headers=AUTH).json["opted_out"] is True
    assert send(client).json["type"].endswith("/recipient-opted-out")
    assert [
        (a["action"], a["outcome"], a["by"], a["api_key"])
        for a in audit_lines(capsys.readouterr().out)
    ] == [("opt-out", "listed", "sms", None), ("opt-in", "refused", "api", "alpha")]


def test_a_stop_after_a_keys_opt_out_makes_it_the_recipients(client):
    client.put("/opt-outs/+14155550100", headers=AUTH)
    signed_post(client, "/webhooks/inbound", inbound_body("14155550100", "STOP"))
    client.put("/opt-outs/+14155550100", headers=AUTH)  # a key never takes it back
    assert client.delete("/opt-outs/+14155550100", headers=AUTH).status_code == 409


def test_an_override_key_lifts_an_sms_stop_and_it_is_audited(make_app, settings, accept, capsys):
    app = make_app(
        settings, signature_secrets=(SIGNATURE_SECRET,), opt_out_override_keys=frozenset({"beta"})
    )
    client = app.test_client()
    signed_post(client, "/webhooks/inbound", inbound_body("14155550100", "STOP"))
    assert client.delete("/opt-outs/+14155550100", headers=AUTH).status_code == 409

    lifted = client.delete("/opt-outs/+14155550100", headers=AUTH_B)

    assert lifted.status_code == 200 and lifted.json["opted_out"] is False
    assert send(client).status_code == 200
    last = audit_lines(capsys.readouterr().out)[-1]
    assert last == {
        **last,
        "action": "opt-in",
        "outcome": "removed",
        "by": "api",
        "api_key": "beta",
        "number": "+1********00",
        "entry_source": "sms",
        "override": True,
    }


def test_every_api_change_is_audited_with_the_key_and_the_masked_number(client, capsys):
    client.put("/opt-outs/+14155550100", headers=AUTH)
    client.delete("/opt-outs/+14155550100", headers=AUTH_B)
    client.delete("/opt-outs/+14155550100", headers=AUTH_B)

    out = capsys.readouterr().out
    assert [(a["action"], a["outcome"], a["api_key"], a["number"]) for a in audit_lines(out)] == [
        ("opt-out", "listed", "alpha", "+1********00"),
        ("opt-in", "removed", "beta", "+1********00"),
        ("opt-in", "not-listed", "beta", "+1********00"),
    ]
    assert "4155550100" not in out


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_opt_out_api_needs_a_key_and_a_valid_number(client, method):
    assert getattr(client, method)("/opt-outs/+14155550100").status_code == 401
    bad = getattr(client, method)("/opt-outs/12345", headers=AUTH)
    assert bad.status_code == 400
    assert bad.json["errors"][0]["field"] == "number"


def test_opted_out_numbers_do_not_use_the_recipient_limit(make_app, settings, vonage):
    app = make_app(settings, recipient_rate_limit="1 per minute")
    client = app.test_client()
    client.put("/opt-outs/+14155550100", headers=AUTH)
    for _ in range(3):
        assert send(client).status_code == 422
    client.delete("/opt-outs/+14155550100", headers=AUTH)
    vonage.post(VONAGE_SMS_URL, json={"message_uuid": UUID}, status=202)
    assert send(client).status_code == 200
