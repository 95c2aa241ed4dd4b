"""docs/openapi.json as Swagger UI reads it (issue 22): every example is one the API accepts, every
parameter Swagger UI must fill has an example (the demo's ids for the path ids), integer bounds are
exact integers, operations are grouped by function, descriptions survive Markdown. The browser test
(tests/browser/test_swagger_examples.py) executes the examples; these checks say which one is wrong."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import TypeAdapter

from lib import models
from local import demo, openapi

DOCUMENT = openapi.generate()
OPERATIONS = [(path, method, op) for path, ops in DOCUMENT["paths"].items() for method, op in ops.items()]


def _resolve(schema: dict) -> dict:
    if "$ref" in schema:
        return DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:  # an optional body: the model or null
        return _resolve(next(s for s in schema["anyOf"] if s.get("type") != "null"))
    return schema


def _body_example(operation: dict):
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    examples = _resolve(schema).get("examples")
    return schema, (examples[0] if examples else None)


@pytest.mark.parametrize("path,method,operation", [o for o in OPERATIONS if "requestBody" in o[2]],
                         ids=lambda value: value["operationId"] if isinstance(value, dict) else "")
def test_every_request_body_has_an_example_its_model_accepts(path, method, operation):
    schema, example = _body_example(operation)
    assert example is not None, f"{operation['operationId']}: no example body (Swagger UI would send \"string\")"
    ref = schema.get("$ref") or next((s.get("$ref") for s in schema.get("anyOf", []) if "$ref" in s), None)
    if ref:  # the route's pydantic model must accept it as it is
        TypeAdapter(getattr(models, ref.rsplit("/", 1)[-1])).validate_python(example)
    elif operation["operationId"].startswith("merge_"):
        assert isinstance(example, dict), "a merge patch is an object"
    json.dumps(example, allow_nan=False)


def test_the_purge_example_names_a_purge_operation():
    example = DOCUMENT["components"]["schemas"]["PurgeRequest"]["examples"][0]
    from lib.store.windows import PURGE_OPERATIONS

    assert example["operation"] in PURGE_OPERATIONS


def test_every_parameter_swagger_must_fill_has_an_example():
    """Required parameters and the tenant header have an example in the committed document, or are
    path ids the local server fills in from its demo data (local.demo)."""
    filled = demo.fill(DOCUMENT, demo.Demo("1", "2", "3", "4", "5", "job"))
    missing = []
    for path, ops in filled["paths"].items():
        for method, operation in ops.items():
            for parameter in operation.get("parameters", []):
                wanted = parameter.get("required") or parameter["name"] == "ContactCenterId"
                if wanted and "example" not in parameter:
                    missing.append(f"{method.upper()} {path}: {parameter['in']} {parameter['name']}")
    assert not missing, missing
    committed_ids = {p["name"] for _, _, op in OPERATIONS for p in op.get("parameters", [])
                     if p["in"] == "path" and "example" not in p}
    assert committed_ids == {"service_id", "job_id"}, "only server-assigned ids are left to the local server"


def test_operations_that_consume_their_target_get_their_own():
    seeded = demo.Demo("journey", "end", "delete", "associate", "transition", "job")
    assert seeded.path_examples("get_service")["service_id"] == "journey"
    own = {name: seeded.path_examples(name)["service_id"]
           for name in ("end_service", "delete_service", "associate_service", "transition_state")}
    assert len(set(own.values()) | {"journey"}) == 5, own
    assert seeded.path_examples("end_state")["state_id"] != "1", "state 1 stays active for start_task's example"
    assert seeded.path_examples("end_task")["task_id"] != "1"


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_integer_bounds_are_exact_integers():
    text = openapi.render()
    assert not re.search(r"\d[eE][+-]?\d", text), "a number written as a float"
    bounds = [node[key] for node in _walk(json.loads(text)) for key in openapi.BOUNDS if key in node]
    assert bounds and all(type(value) is int for value in bounds)
    assert 2**63 - 1 in bounds and -(2**63) in bounds


def test_operations_are_grouped_by_the_function_that_serves_them():
    assert [tag["name"] for tag in DOCUMENT["tags"]] == ["services", "states", "tasks", "maintenance"]
    import importlib

    for module, tag in openapi.HANDLER_MODULES.items():
        for method, route in importlib.import_module(module).routes.table:
            path = re.sub(r"<(\w+)>", r"{\1}", route)
            assert DOCUMENT["paths"][path][method.lower()]["tags"] == [tag], (method, path)


def test_descriptions_keep_their_asterisks_out_of_markdown_emphasis():
    """Swagger UI renders descriptions as Markdown: a `*` outside a code span is emphasis, eaten."""
    for node in _walk(DOCUMENT):
        description = node.get("description")
        if isinstance(description, str):
            outside_code = re.sub(r"`[^`]*`", "", description)
            assert "*" not in outside_code, description


def test_the_demo_is_off_with_local_demo_0_or_auth_on(monkeypatch):
    monkeypatch.delenv("AUTH", raising=False)
    monkeypatch.delenv("LOCAL_DEMO", raising=False)
    assert demo.enabled()
    monkeypatch.setenv("LOCAL_DEMO", "0")
    assert not demo.enabled()
    monkeypatch.setenv("LOCAL_DEMO", "1")
    monkeypatch.setenv("AUTH", "on")
    assert not demo.enabled()

    class Gateway:  # no routes, no functions: seeding it would fail loudly
        pass

    gateway = Gateway()
    assert demo.served_document(gateway, DOCUMENT) is DOCUMENT and gateway.demo is None
