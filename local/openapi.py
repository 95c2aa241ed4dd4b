"""The OpenAPI document, generated from the code of every function.

`python -m local.openapi --write` regenerates docs/openapi.json; tests/contract fails when the
committed document and the code disagree."""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from lib.api.params import IDEMPOTENCY_KEY_PATTERN, TENANT_HEADER_PATTERN
from lib.api.resolver import BASE_PATH, make_app
from local.template import ROOT

HANDLER_MODULES = ("handlers.services", "handlers.states", "handlers.tasks", "handlers.maintenance")
DOCUMENT = ROOT / "docs" / "openapi.json"
HEADER_PATTERNS = {"ContactCenterId": TENANT_HEADER_PATTERN, "GroupId": TENANT_HEADER_PATTERN,
                   "Idempotency-Key": IDEMPOTENCY_KEY_PATTERN}


def generate() -> dict:
    """The OpenAPI document of all routes of all functions."""
    app = make_app(*[importlib.import_module(name).routes for name in HANDLER_MODULES])
    schema = app.get_openapi_json_schema(
        title="Context Services API",
        version="1.0.0",
        summary="Genesys Context Services REST API on AWS Lambda",
        description="Services, states and tasks of customer journeys. See the project README.",
        servers=[{"url": BASE_PATH}],
    )
    return _contract_only(json.loads(schema))


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
                                            "content": {"application/json": {"schema": {"type": "object"}}}}
            elif operation_id.endswith("_extension"):
                # These routes read their body themselves: any JSON value, not only an object.
                operation["requestBody"] = {"required": True, "description": "The key's new value: any JSON value",
                                            "content": {"application/json": {"schema": {}}}}
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
