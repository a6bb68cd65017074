"""End to end: the service under gunicorn, the real SDK, real TLS, and the Vonage emulator."""

import concurrent.futures
import json
import socket

import pytest

from emulator.magic import number_for
from tests.e2e.raw_http import chunked, exchange, log_lines, sized

pytestmark = pytest.mark.slow


def test_a_send_reaches_the_emulator_exactly_once(stack):
    response = stack.send({"to": "+14155550100", "text": "Hello über TLS 😀", "client_ref": "e2e"})

    assert response.status_code == 200, response.text
    messages = stack.messages()
    assert len(messages) == 1
    message = messages[0]
    assert message["message_uuid"] == response.json()["message_uuid"]
    assert (message["to"], message["from"], message["text"]) == (
        "14155550100",
        "447700900000",
        "Hello über TLS 😀",
    )
    assert message["client_ref"] == "e2e"
    assert message["segments"] == response.json()["segments"] == 1
    assert message["encoding"] == response.json()["encoding"] == "UCS-2"


@pytest.mark.parametrize(
    ("outcome", "status", "slug", "attempts"),
    [
        ("non-whitelisted", 422, "recipient-rejected", 1),
        ("invalid-recipient", 422, "recipient-rejected", 1),
        ("low-balance", 502, "upstream-account-error", 1),
        ("bad-credentials", 502, "upstream-account-error", 2),  # retried once with a new token
        ("throttled-always", 503, "upstream-unavailable", 3),
        ("internal-error", 502, "upstream-error", 1),
        ("service-unavailable", 503, "upstream-unavailable", 3),
        ("hang", 504, "upstream-timeout", 1),
        ("drop", 504, "upstream-timeout", 1),
    ],
)
def test_each_magic_number_maps_to_the_error_table(stack, outcome, status, slug, attempts):
    number = number_for(outcome)

    response = stack.send({"to": "+" + number, "text": "magic"})

    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + slug)
    assert stack.stats()["attempts"].get(number) == attempts
    assert stack.messages() == []


def test_throttled_once_is_retried_and_sent_exactly_once(stack):
    number = number_for("throttled-once")

    response = stack.send({"to": "+" + number, "text": "try again"})

    assert response.status_code == 200
    assert stack.stats()["attempts"][number] == 2
    assert [m["to"] for m in stack.messages()] == [number]


def test_hung_upstream_answers_504_within_the_timeout(stack):
    response = stack.send({"to": "+" + number_for("hang"), "text": "slow"})

    assert response.status_code == 504
    assert "may or may not" in response.json()["detail"]
    assert response.elapsed.total_seconds() < 3  # VONAGE_TIMEOUT is 1 s


@pytest.mark.parametrize(
    ("body", "api_key", "status"),
    [
        ({"to": "+14155550100", "text": ""}, None, 400),
        ({"to": "not a number", "text": "hi"}, None, 400),
        ({"to": "+14155550100", "text": "hi", "message": "hi"}, None, 400),
        ({"to": "+14155550100", "text": "hi"}, "wrong-key-wrong-key-wrong-key", 401),
        ({"to": "+14155550100", "text": "hi"}, "", 401),
    ],
)
def test_invalid_input_and_refused_auth_never_reach_the_emulator(stack, body, api_key, status):
    before = stack.stats()["requests"]
    assert stack.send(body, api_key=api_key).status_code == status
    assert stack.stats()["requests"] == before


def test_concurrent_burst_past_the_key_limit(start_stack):
    """32 requests at once against a limit of 5: exactly 5 are sent."""
    stack = start_stack(RATE_LIMIT="5 per minute", RECIPIENT_RATE_LIMIT="1000 per minute")
    stack.reset()

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        statuses = list(
            pool.map(
                lambda n: stack.send({"to": "+14155550100", "text": f"n{n}"}).status_code, range(32)
            )
        )

    assert statuses.count(200) == 5
    assert statuses.count(429) == 27
    assert len(stack.messages()) == 5
    stack.close()


def test_one_connection_to_vonage_serves_many_sends(start_stack):
    """What the speed depends on: the TLS connection to Vonage is kept and reused."""
    stack = start_stack(RATE_LIMIT="1000 per minute", RECIPIENT_RATE_LIMIT="1000 per minute")
    stack.reset()

    for n in range(20):
        assert stack.send({"to": "+14155550100", "text": f"keep-alive {n}"}).status_code == 200

    stats = stack.stats()
    assert (stats["accepted"], stats["connections"]) == (20, 1)
    stack.close()


@pytest.mark.parametrize(
    ("raw_request", "status"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"BREW /health HTCPCP/1.0\r\n\r\n", 400),
        (
            b"GET /health HTTP/1.1\r\n"
            + b"".join(b"X-%d: 1\r\n" % n for n in range(120))
            + b"\r\n",
            431,
        ),
    ],
)
def test_requests_gunicorn_refuses_are_problems_too(stack, raw_request, status):
    """Hostile HTTP never reaches Flask, and still gets a problem+json answer."""
    host, port = stack.service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(raw_request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % status), head
    assert b"Content-Type: application/problem+json" in head
    assert b"X-Content-Type-Options: nosniff" in head
    problem = json.loads(body)
    assert problem["status"] == status and problem["success"] is False
    assert b"aaaa" not in body and b"BREW" not in body  # gunicorn's message quotes the request


def send_sms_head(stack, content_type: str = "application/json") -> bytes:
    """A POST /send-sms request's head, up to its framing headers."""
    return b"POST /send-sms HTTP/1.1\r\nHost: sms\r\nX-API-Key: %s\r\nContent-Type: %s\r\n" % (
        stack.credentials.api_key.encode(),
        content_type.encode(),
    )


def padded_send(size: int) -> bytes:
    """A valid send of exactly `size` bytes: JSON allows whitespace after the value."""
    body = json.dumps({"to": "+14155550100", "text": "sixteen kibibytes"}).encode()
    return body + b" " * (size - len(body))


@pytest.mark.parametrize("framing", [sized, chunked])
@pytest.mark.parametrize(("size", "status"), [(16384, 200), (16385, 413)])
def test_the_body_limit_is_exactly_16_kib_under_gunicorn(stack, framing, size, status):
    """16,384 bytes are read and sent; 16,385 are a 413 naming the limit, sized or chunked."""
    answer = exchange(stack.service, send_sms_head(stack) + framing(padded_send(size)))

    assert answer.status == status, answer.body
    if status == 413:
        assert answer.problem["type"].endswith("/payload-too-large")
        assert answer.problem["detail"] == "The body must be at most 16384 bytes (16 KiB)."
    assert len(stack.messages()) == (1 if status == 200 else 0)


@pytest.mark.parametrize(
    "body",
    [b"not-hex\r\n", b"5\r\nhelloXX", b"5;a=\x01\r\nhello\r\n0\r\n\r\n"],
    ids=["chunk-size", "chunk-terminator", "chunk-extension"],
)
def test_a_malformed_chunked_body_is_a_400_not_a_crash(stack, body):
    """Without a key, as anyone could send it: a 400 problem naming the body, one answer
    and the connection closed, and nothing at ERROR (which pages) in the log."""
    start = len(stack.service.log())
    head = b"POST /send-sms HTTP/1.1\r\nHost: sms\r\nContent-Type: application/json\r\n"

    answer = exchange(stack.service, head + b"Transfer-Encoding: chunked\r\n\r\n" + body, True)

    assert answer.status == 400, answer.body
    assert answer.problem["type"].endswith("/validation-error")
    assert [error["field"] for error in answer.problem["errors"]] == ["body"]
    assert answer.after == b""
    lines = [json.loads(line) for line in log_lines(stack.service, start)]
    assert [line["status"] for line in lines if line["event"] == "request"] == [400]
    assert [line for line in lines if line["level"] == "ERROR" or "stack" in line] == []


def test_a_malformed_body_nobody_read_is_not_answered_twice(stack):
    """Refused before its body is read (415), the request is answered once; gunicorn then
    meets the malformed body on its way to the next request and closes the connection."""
    raw = send_sms_head(stack, "text/plain") + b"Transfer-Encoding: chunked\r\n\r\nnot-hex\r\n"

    answer = exchange(stack.service, raw, until_closed=True)

    assert answer.status == 415
    assert answer.after == b""


def test_gunicorn_logs_a_refusal_as_one_json_line_naming_only_the_error(stack):
    """gunicorn's messages quote the request: a header with its secret (the colon missing),
    a request line, method, header name or chunk size with a phone number. Each refusal is
    logged as the app logs, one JSON line with the error's class, and quotes none of it."""
    secret = stack.credentials.api_key.encode()
    refused = [
        b"GET /health HTTP/1.1\r\nHost: sms\r\nX-API-Key " + secret + b"\r\n\r\n",
        b"GET /opt-outs/+14155550171\x01 HTTP/1.1\r\nHost: sms\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: sms\r\nX-14155550172\x01: 1\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: sms\r\nX-14155550173 : 1\r\n\r\n",
    ]
    start = len(stack.service.log())
    for raw in refused:
        answer = exchange(stack.service, raw, until_closed=True)
        assert answer.status == 400, answer.head
        assert answer.problem["status"] == 400
    unread = b"POST /health HTTP/1.1\r\nHost: sms\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert exchange(stack.service, unread + b"+14155550174\r\n", until_closed=True).status == 405

    logged = "\n".join(log_lines(stack.service, start))
    for forbidden in (secret.decode(), "14155550171", "14155550172", "14155550173", "14155550174"):
        assert forbidden not in logged
    lines = [json.loads(line) for line in log_lines(stack.service, start)]
    gunicorn = [
        (line["level"], line["error"]) for line in lines if line["logger"] == "gunicorn.error"
    ]
    assert gunicorn == [
        ("WARNING", "InvalidHeader"),
        ("WARNING", "InvalidRequestLine"),
        ("WARNING", "InvalidHeaderName"),
        ("WARNING", "InvalidHeaderName"),
        ("INFO", "InvalidChunkSize"),
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "//send-sms"), ("GET", "///health"), ("POST", "/%2Fsend-sms"), ("GET", "/health//")],
)
def test_a_path_with_an_empty_segment_is_a_404(stack, method, path):
    """werkzeug's router drops leading slashes; the service does not: `//send-sms` with a
    good key and body is a 404 problem, and nothing is sent."""
    body = json.dumps({"to": "+14155550100", "text": "slashes"}).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: sms\r\nContent-Type: application/json\r\n"
    key = b"X-API-Key: %s\r\n" % stack.credentials.api_key.encode()

    answer = exchange(stack.service, head.encode() + key + sized(body))

    assert answer.status == 404, answer.head
    assert answer.problem["type"].endswith("/not-found")
    assert stack.messages() == []
