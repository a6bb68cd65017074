"""Vonage's published Messages API spec (../shared/vonage/messages-api.yml) as JSON Schemas."""

from __future__ import annotations

import copy
import functools

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.conftest import shared_file

SMS_REQUEST = "/paths/~1/post/requestBody/content/application~1json/schema/oneOf/0"


@functools.cache
def _load() -> dict:
    return yaml.safe_load(shared_file("messages-api.yml").read_text())


def load_spec() -> dict:
    """A fresh copy of the spec, free to patch."""
    return copy.deepcopy(_load())


def validator(spec: dict, pointer: str) -> jsonschema.Validator:
    """A validator for the schema at `pointer` (a JSON pointer into the spec)."""
    registry = Registry().with_resource("spec", Resource.from_contents(spec, DRAFT7))
    return jsonschema.Draft7Validator({"$ref": f"spec#{pointer}"}, registry=registry)


def component(name: str) -> str:
    return f"/components/schemas/{name}"


def example_of(spec: dict, name: str) -> dict:
    """Build the example body of an error schema from its properties' examples."""
    properties = spec["components"]["schemas"][name]["properties"]
    return {key: value["example"] for key, value in properties.items() if "example" in value}
