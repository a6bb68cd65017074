"""Check real responses against app/openapi.json, the service's hand-written contract.

Tests call `check_response` with what the app answered and the Flask route template that
matched (`request.url_rule.rule`); it returns what does not conform, an empty list when all
does. Schemas are validated with jsonschema (Draft 2020-12, the dialect of OpenAPI 3.1) and a
`referencing` registry holding the whole document, so that every `$ref` into it resolves.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_PATH = Path(__file__).resolve().parents[1] / "app" / "openapi.json"
DOCUMENT_URI = "urn:sms-service:openapi.json"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_FLASK_PARAMETER = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")


@functools.cache
def load_document() -> dict[str, Any]:
    """The OpenAPI document, parsed once (callers must not change it)."""
    return json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))


@functools.cache
def _registry() -> Registry:
    resource = Resource(contents=load_document(), specification=DRAFT202012)
    return Registry().with_resource(DOCUMENT_URI, resource)


def openapi_path(rule: str) -> str:
    """Turn a Flask rule ("/messages/<message_uuid>", "/a/<int:b>") into an OpenAPI path."""
    return _FLASK_PARAMETER.sub(r"{\1}", rule)


def document_operations() -> set[tuple[str, str]]:
    """Every (path, METHOD) the document describes."""
    return {
        (path, method.upper())
        for path, item in load_document()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def media_type(content_type: str) -> str:
    """The media type without parameters, lower-cased: "Text/Plain; version=1" -> "text/plain"."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(mimetype: str) -> bool:
    """True for application/json and any +json type (application/problem+json)."""
    return mimetype == "application/json" or mimetype.endswith("+json")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _resolve(node: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    """Follow local `$ref`s of a non-schema object; return it with its JSON pointer."""
    seen = set()
    while "$ref" in node:
        target = node["$ref"]
        if not target.startswith("#/") or target in seen:
            raise ValueError(f"unsupported or circular $ref {target!r} at {pointer}")
        seen.add(target)
        pointer = target[1:]
        node = load_document()
        for token in pointer.split("/")[1:]:
            node = node[token.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def find_operation(method: str, route: str) -> tuple[dict[str, Any], str] | None:
    """The operation for a Flask rule or OpenAPI path and a method, with its JSON pointer."""
    path = openapi_path(route)
    item = load_document()["paths"].get(path)
    if item is None:
        return None
    item, pointer = _resolve(item, "/paths/" + _escape(path))
    operation = item.get(method.lower())
    if operation is None:
        return None
    return operation, f"{pointer}/{method.lower()}"


def find_response(
    operation: dict[str, Any], operation_pointer: str, status: int
) -> tuple[dict[str, Any], str] | None:
    """The response an operation declares for `status`: exact, then "4XX"-style, then default."""
    responses = operation.get("responses", {})
    for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
        if key in responses:
            return _resolve(responses[key], f"{operation_pointer}/responses/{_escape(key)}")
    return None


def schema_errors(schema_pointer: str, instance: object) -> list[str]:
    """Validate `instance` against the schema at a JSON pointer of the document."""
    validator = Draft202012Validator(
        {"$ref": f"{DOCUMENT_URI}#{schema_pointer}"}, registry=_registry()
    )
    return [
        f"{error.message} (at {'/'.join(map(str, error.absolute_path)) or 'the root'})"
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]


def check_response(
    method: str,
    route: str,
    status: int,
    content_type: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
) -> list[str]:
    """What in this response does not conform to the document; an empty list when it does.

    `route` is the Flask rule that matched (`request.url_rule.rule`) or an OpenAPI path.
    The response is found by exact status, then a "4XX"-style range, then `default`; the
    media type must be declared (compared without parameters); a JSON body (application/json
    or +json) must match the declared schema; other bodies are not parsed. When `headers` is
    given, every header the response declares as required must be present.
    """
    where = f"{method.upper()} {openapi_path(route)} {status}"
    found = find_operation(method, route)
    if found is None:
        return [f"{where}: the document has no such operation"]
    response = find_response(*found, status)
    if response is None:
        return [f"{where}: the operation declares no response for this status (nor default)"]
    declared, pointer = response
    problems = []
    if headers is not None:
        present = {name.lower() for name in dict(headers)}
        for name, header in declared.get("headers", {}).items():
            header, _ = _resolve(header, f"{pointer}/headers/{_escape(name)}")
            if header.get("required") and name.lower() not in present:
                problems.append(f"{where}: required header {name} is missing")
    content = declared.get("content", {})
    if not content:
        if body:
            problems.append(f"{where}: a body was sent but the response declares none")
        return problems
    mimetype = media_type(content_type)
    by_type = {media_type(name): name for name in content}
    if mimetype not in by_type:
        declared_types = ", ".join(sorted(by_type))
        return [*problems, f"{where}: media type {mimetype!r} is not one of {declared_types}"]
    media = content[by_type[mimetype]]
    if not is_json(mimetype) or "schema" not in media:
        return problems
    try:
        instance = json.loads(body)
    except ValueError as exc:
        return [*problems, f"{where}: the body is not JSON ({exc})"]
    schema_pointer = f"{pointer}/content/{_escape(by_type[mimetype])}/schema"
    errors = schema_errors(schema_pointer, instance)
    if _problem_status_differs(mimetype, instance, status):
        errors.append(f"the body's status {instance.get('status')!r} is not {status}")
    return problems + [f"{where}: {error}" for error in errors]


def _problem_status_differs(mimetype: str, instance: object, status: int) -> bool:
    return (
        mimetype == "application/problem+json"
        and isinstance(instance, dict)
        and instance.get("status") != status
    )


def check_problem(status: int, content_type: str, body: bytes) -> list[str]:
    """Check an answer to a path no route matched (404, 405...) against the Problem schema."""
    where = f"unmatched route {status}"
    if media_type(content_type) != "application/problem+json":
        return [f"{where}: media type {media_type(content_type)!r} is not a problem"]
    try:
        instance = json.loads(body)
    except ValueError as exc:
        return [f"{where}: the body is not JSON ({exc})"]
    errors = schema_errors("/components/schemas/Problem", instance)
    if _problem_status_differs("application/problem+json", instance, status):
        errors.append(f"the body's status {instance.get('status')!r} is not {status}")
    return [f"{where}: {error}" for error in errors]
