"""app/openapi.json: a valid OpenAPI 3.1 document that covers every route the app has."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate
from werkzeug.exceptions import HTTPException

from tests.conftest import AUTH, UUID, VALID_BODY
from tests.openapi_conformance import (
    DOCUMENT_PATH,
    check_problem,
    check_response,
    document_operations,
    load_document,
    openapi_path,
)

IGNORED_METHODS = {"HEAD", "OPTIONS"}
PROBLEM_JSON = "application/problem+json"
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}
GOOD_SEND = {
    "success": True,
    "message_uuid": UUID,
    "to": "+14155550100",
    "from": "+447700900000",
    "encoding": "GSM-7",
    "segments": 1,
    "characters": 20,
}
PROBLEM = {
    "type": "https://sms-service.example/problems/unauthorized",
    "title": "Unauthorized",
    "status": 401,
    "detail": "Send a valid API key in the X-API-Key header.",
    "request_id": "abc",
    "success": False,
}


def app_operations(app) -> set[tuple[str, str]]:
    """Every (OpenAPI path, METHOD) the Flask app routes, without HEAD, OPTIONS and static."""
    return {
        (openapi_path(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method not in IGNORED_METHODS
    }


def describe(operations: set[tuple[str, str]]) -> str:
    return ", ".join(f"{method} {path}" for path, method in sorted(operations))


def test_document_is_valid_openapi_3_1():
    document = load_document()
    validate(document)  # raises with the first problem found
    assert document["openapi"].startswith("3.1.")


def test_document_is_pretty_printed_with_two_spaces_and_a_final_newline():
    text = DOCUMENT_PATH.read_text(encoding="utf-8")
    parsed = json.loads(text)
    assert text in {
        json.dumps(parsed, indent=2, ensure_ascii=False) + "\n",
        json.dumps(parsed, indent=2, ensure_ascii=True) + "\n",
    }, "app/openapi.json must be json.dumps(..., indent=2) plus one final newline"


def test_every_route_of_the_app_is_documented(app):
    undocumented = app_operations(app) - document_operations()
    assert not undocumented, f"routes missing from app/openapi.json: {describe(undocumented)}"


def test_every_documented_route_exists_in_the_app(app):
    missing = document_operations() - app_operations(app)
    assert not missing, (
        f"documented in app/openapi.json but not routed by the app: {describe(missing)}"
    )


def test_operation_ids_are_unique_and_every_operation_has_a_default_problem():
    operations = [
        (path, method, operation)
        for path, item in load_document()["paths"].items()
        for method, operation in item.items()
    ]
    ids = [operation["operationId"] for _, _, operation in operations]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations:
        assert "default" in operation["responses"], f"{method.upper()} {path} has no default"


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ("/send-sms", "/send-sms"),
        ("/messages/<message_uuid>", "/messages/{message_uuid}"),
        ("/opt-outs/<string:number>", "/opt-outs/{number}"),
        ("/a/<int:b>/<path:c>", "/a/{b}/{c}"),
        ("/messages/{message_uuid}", "/messages/{message_uuid}"),
    ],
)
def test_flask_rules_become_openapi_paths(rule, path):
    assert openapi_path(rule) == path


def test_check_response_accepts_a_conforming_body():
    body = json.dumps({**GOOD_SEND, "client_ref": "order-42"}).encode()
    assert check_response("POST", "/send-sms", 200, "application/json", body) == []


def test_check_response_rejects_a_wrong_type():
    body = json.dumps({**GOOD_SEND, "segments": "two"}).encode()
    problems = check_response("POST", "/send-sms", 200, "application/json", body)
    assert len(problems) == 1
    assert "'two' is not of type 'integer'" in problems[0]
    assert "segments" in problems[0]


def test_check_response_rejects_a_missing_field_and_an_undeclared_media_type():
    body = json.dumps({k: v for k, v in GOOD_SEND.items() if k != "to"}).encode()
    assert check_response("POST", "/send-sms", 200, "application/json", body)
    assert check_response("POST", "/send-sms", 200, "text/html", b"<p>hi</p>")


def test_check_response_matches_media_types_without_parameters():
    body = json.dumps(GOOD_SEND).encode()
    assert check_response("POST", "/send-sms", 200, "application/json; charset=utf-8", body) == []
    text = b"# HELP x y\n"
    for content_type in (
        "text/plain; version=0.0.4; charset=utf-8",
        "text/plain; version=1.0.0; charset=utf-8",
    ):
        assert check_response("GET", "/metrics", 200, content_type, text) == []


def test_check_response_validates_problems_and_falls_back_to_default():
    problem = json.dumps(PROBLEM).encode()
    assert check_response("GET", "/messages/<message_uuid>", 401, PROBLEM_JSON, problem) == []
    not_allowed = json.dumps({**PROBLEM, "status": 405}).encode()
    assert check_response("GET", "/health", 405, PROBLEM_JSON, not_allowed) == []
    # the body's status must be the response's
    assert check_response("GET", "/health", 418, PROBLEM_JSON, problem)
    incomplete = json.dumps({k: v for k, v in PROBLEM.items() if k != "request_id"}).encode()
    assert check_response("POST", "/send-sms", 401, PROBLEM_JSON, incomplete)
    assert check_problem(401, PROBLEM_JSON, problem) == []
    assert check_problem(401, PROBLEM_JSON, incomplete)


def test_check_response_names_unknown_operations_and_missing_required_headers():
    assert check_response("GET", "/nowhere", 200, "application/json", b"{}")
    assert check_response("PATCH", "/send-sms", 200, "application/json", b"{}")
    body = json.dumps(GOOD_SEND).encode()
    missing = check_response("POST", "/send-sms", 200, "application/json", body, headers={})
    assert missing == ["POST /send-sms 200: required header X-Request-ID is missing"]
    present = {"X-Request-ID": "abc"}
    assert check_response("POST", "/send-sms", 200, "application/json", body, headers=present) == []


def conforms(app, client, method: str, path: str, **kwargs) -> list[str]:
    """Make a request and check the answer against the document."""
    response = client.open(path, method=method, **kwargs)
    try:
        rule, _ = app.url_map.bind("localhost").match(path, method=method, return_rule=True)
    except HTTPException:  # no route: Flask's 404 or 405, a problem all the same
        return check_problem(response.status_code, response.content_type or "", response.data)
    return check_response(
        method,
        rule.rule,
        response.status_code,
        response.content_type or "",
        response.data,
        headers=response.headers,
    )


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/health", {}),
        ("GET", "/metrics", {}),
        ("POST", "/send-sms", {"json": VALID_BODY}),
        ("POST", "/send-sms", {"data": "to=1", "headers": AUTH}),
        ("POST", "/send-sms", {"json": {"to": "12", "message": "hi"}, "headers": AUTH}),
        (
            "POST",
            "/send-sms",
            {"data": b"{", "headers": JSON_AUTH},
        ),
        ("GET", f"/messages/{UUID}", {"headers": AUTH}),
        ("GET", "/opt-outs/+14155550100", {"headers": AUTH}),
        ("PUT", "/opt-outs/14155550100", {"headers": AUTH}),
        ("DELETE", "/opt-outs/+14155550100", {"headers": AUTH}),
        ("GET", "/opt-outs/123", {"headers": AUTH}),
        ("POST", "/webhooks/status", {"json": {"message_uuid": UUID, "status": "delivered"}}),
        ("POST", "/webhooks/inbound", {"json": {"from": "14155550100", "text": "STOP"}}),
        ("POST", "/health", {}),
    ],
)
def test_real_answers_conform(app, client, method, path, kwargs):
    assert conforms(app, client, method, path, **kwargs) == []


def test_a_sent_message_and_its_record_conform(app, client, accept):
    assert conforms(app, client, "POST", "/send-sms", json=VALID_BODY, headers=AUTH) == []
    assert conforms(app, client, "GET", f"/messages/{UUID}", headers=AUTH) == []


def test_the_document_is_served_as_it_is(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.data == DOCUMENT_PATH.read_bytes()
