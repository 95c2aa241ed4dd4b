"""The OpenAPI document, generated from the code of every function.

`python -m local.openapi --write` (`make openapi`) regenerates docs/openapi.json; a test fails when
the committed document and the code disagree. Besides what Powertools documents, it groups the
operations by function (tags), keeps integer bounds exact, and gives every parameter the example
Swagger UI pre-fills: the parameter models' own (lib.api.params), the demo tenant's names
(local.demo); the local server adds the demo's ids when it serves the document."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import sys
from typing import Any

from pydantic import BaseModel

from lib import models
from lib.api import params
from lib.api.params import IDEMPOTENCY_KEY_PATTERN, TENANT_HEADER_PATTERN
from lib.api.resolver import BASE_PATH, make_app
from local import demo
from local.template import ROOT

# Each function's routes are one resource group, a tag of the document (Swagger UI groups by tag).
HANDLER_MODULES = {"handlers.services": "services", "handlers.states": "states", "handlers.tasks": "tasks",
                   "handlers.maintenance": "maintenance"}
TAGS = [
    {"name": "services", "description": "A service is one customer need, across days and channels: start, read, "
                                        "end, associate with a customer, expiration, attached data, composite start, "
                                        "a customer's and a contact key's services"},
    {"name": "states", "description": "The steps of a service: start, transition, end, read, list, attached data"},
    {"name": "tasks", "description": "The actions of a service, on their own or in a state: start, end, read, list, "
                                     "attached data"},
    {"name": "maintenance", "description": "Export stream, export files, purge, and the jobs that carry big ones "
                                           "past one request"},
]
DESCRIPTION = """Services, states and tasks of customer journeys: the Genesys Context Services REST API \
(`/genesys/1/cs`) on AWS Lambda. The reference for users is docs/API.md in the repository.

Headers `ContactCenterId` (tenant) and `GroupId` (business unit) scope every request; absent, the \
default tenant. Errors are `{"message", "exception"}`.

On the local server (`make run`) the examples work as they are: they use the tenant `demo` \
(`ContactCenterId: demo`), which the server fills with demo data when this page first loads, and \
its ids. The default tenant and every other stay untouched."""
DOCUMENT = ROOT / "docs" / "openapi.json"
HEADER_PATTERNS = {"ContactCenterId": TENANT_HEADER_PATTERN, "GroupId": TENANT_HEADER_PATTERN,
                   "Idempotency-Key": IDEMPOTENCY_KEY_PATTERN}
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def generate() -> dict:
    """The OpenAPI document of all routes of all functions."""
    modules = {name: importlib.import_module(name) for name in HANDLER_MODULES}
    app = make_app(*[module.routes for module in modules.values()])
    schema = app.get_openapi_json_schema(
        title="Context Services API",
        version="1.0.0",
        summary="Genesys Context Services REST API on AWS Lambda",
        description=DESCRIPTION,
        servers=[{"url": BASE_PATH}],
    )
    document = _contract_only(json.loads(schema))
    _exact_bounds(document, _declared_bounds())
    _examples(document, {**_parameter_model_examples(), **demo.PARAMETER_EXAMPLES})
    document["tags"] = TAGS
    for name, module in modules.items():
        for method, path in module.routes.table:
            operation = document["paths"][re.sub(r"<(\w+)>", r"{\1}", path)][method.lower()]
            operation["tags"] = [HANDLER_MODULES[name]]
    return document


def _models(*modules: Any) -> list[type[BaseModel]]:
    return [value for module in modules for value in vars(module).values()
            if inspect.isclass(value) and issubclass(value, BaseModel) and value.__module__ == module.__name__]


def _walk(node: Any):
    """Every JSON object inside `node`."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _declared_bounds() -> dict[float, int]:
    """The integer bounds the models declare, by the float Powertools turns them into (its schema
    model types bounds as floats: 2**63 - 1 would be written 9.223372036854776e+18)."""
    found: dict[float, int] = {}
    for model in _models(models, params):
        for node in _walk(model.model_json_schema(by_alias=True)):
            for key in BOUNDS:
                value = node.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    if found.setdefault(float(value), value) != value:
                        raise ValueError(f"bounds {value} and {found[float(value)]} are the same float")
    return found


def _exact_bounds(document: dict, declared: dict[float, int]) -> None:
    for node in _walk(document):
        for key in BOUNDS:
            value = node.get(key)
            if isinstance(value, float):
                if value not in declared:
                    raise ValueError(f"{key} {value}: no model declares it as an integer")
                node[key] = declared[value]


def _parameter_model_examples() -> dict[tuple[str, str], Any]:
    """The first example of each field of the query models, by ("query", name): Powertools leaves
    them out of the document, and Swagger UI pre-fills a parameter from its `example`."""
    found: dict[tuple[str, str], Any] = {}
    for model in _models(params):
        for name, field in model.model_json_schema(by_alias=True).get("properties", {}).items():
            if field.get("examples"):
                if found.setdefault(("query", name), field["examples"][0]) != field["examples"][0]:
                    raise ValueError(f"parameter {name} has two examples")
    return found


# Path parameters the handlers declare as plain text (lib.api.params.PathText), described by name.
PATH_DESCRIPTIONS = {"customer_id": "Customer id (1-256 characters, no `/`, percent-encoded as any path segment)",
                     "contact_key": "Contact key of anonymous services (1-256 characters, no `/`)",
                     "ext_name": "Attached-data key (1-128 characters)",
                     "job_id": "Maintenance job id (from the 202 answer's `job_id` or `Location`)"}


def _examples(document: dict, examples: dict[tuple[str, str], Any]) -> None:
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if (parameter["in"], parameter["name"]) in examples:
                    parameter["example"] = examples[(parameter["in"], parameter["name"])]
                if parameter["in"] == "path" and parameter["name"] in PATH_DESCRIPTIONS:
                    parameter.setdefault("description", PATH_DESCRIPTIONS[parameter["name"]])


# The extension routes' bodies (read by hand, so documented here): the demo's `preferences` key.
EXTENSION_EXAMPLE = {"language": "en", "contact_hours": "09:00-17:00"}
MERGE_EXAMPLE = {"language": "fr", "contact_hours": None}
ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
LINK = {"description": "Path and query of the next page (`<...>; rel=\"next\"`), when more results exist",
        "schema": {"type": "string"}}
ALLOW = {"description": "The methods the path accepts", "schema": {"type": "string"}}


def _contract_only(document: dict) -> dict:
    """Make the document tell what the API does (issue 7): drop what Powertools documents but this
    API never answers (its 422: every validation error is the contract's 400 here), and add what it
    cannot see: bodies read by hand, the `Link` header of lists, the 405 with `Allow` every path can
    answer, no content on 204; then drop the schemas nothing refers to (header and query models,
    which are documented as parameters)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for parameter in operation.get("parameters", []):
                # Powertools drops the constraints of header models from the document; restore them.
                if parameter["in"] == "header" and parameter["name"] in HEADER_PATTERNS:
                    parameter["schema"] = {"type": "string", "pattern": HEADER_PATTERNS[parameter["name"]]}
            operation_id = operation.get("operationId", "")
            if operation_id.startswith("merge_"):
                operation["requestBody"] = {"required": True, "description": "A JSON Merge Patch (RFC 7386)",
                                            "content": {"application/json": {"schema": {
                                                "type": "object", "examples": [MERGE_EXAMPLE]}}}}
            elif operation_id.endswith("_extension"):
                # These routes read their body themselves: any JSON value, not only an object.
                operation["requestBody"] = {"required": True, "description": "The key's new value: any JSON value",
                                            "content": {"application/json": {"schema": {
                                                "examples": [EXTENSION_EXAMPLE]}}}}
            if "204" in responses:
                responses["204"].pop("content", None)
            if operation_id.startswith("list_"):
                responses["200"]["headers"] = {"Link": LINK}
            responses["405"] = {"description": "MethodNotAllowedException: the path exists with other methods",
                                "headers": {"Allow": ALLOW}, "content": ERROR}
    schemas = document.get("components", {}).get("schemas", {})
    while True:
        text = json.dumps([document["paths"], {k: v for k, v in schemas.items()}])
        unused = [name for name in schemas if text.count(f"#/components/schemas/{name}\"") == 0]
        if not unused:
            break
        for name in unused:
            schemas.pop(name)
    return document


def render() -> str:
    return json.dumps(generate(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="write docs/openapi.json")
    args = parser.parse_args()
    text = render()
    if args.write:
        DOCUMENT.parent.mkdir(exist_ok=True)
        DOCUMENT.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
