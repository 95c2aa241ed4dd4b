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

HANDLER_MODULES = ("handlers.services", "handlers.states", "handlers.tasks")
DOCUMENT = ROOT / "docs" / "openapi.json"
HEADER_PATTERNS = {"ContactCenterId": TENANT_HEADER_PATTERN, "GroupId": TENANT_HEADER_PATTERN,
                   "Idempotency-Key": IDEMPOTENCY_KEY_PATTERN}


def generate() -> dict:
    """The OpenAPI document of all routes of all functions."""
    routers = [importlib.import_module(name).router for name in HANDLER_MODULES]
    app = make_app(*routers)
    schema = app.get_openapi_json_schema(
        title="Context Services API",
        version="1.0.0",
        summary="Genesys Context Services REST API on AWS Lambda",
        description="Services, states and tasks of customer journeys. See the project README.",
        servers=[{"url": BASE_PATH}],
    )
    return _contract_only(json.loads(schema))


def _contract_only(document: dict) -> dict:
    """Drop what Powertools documents but this API never answers (its 422 validation reply: every
    validation error is the contract's 400 here), and add what it cannot see (bodies read by hand)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            for parameter in operation.get("parameters", []):
                # Powertools drops the constraints of header models from the document; restore them.
                if parameter["in"] == "header" and parameter["name"] in HEADER_PATTERNS:
                    parameter["schema"] = {"type": "string", "pattern": HEADER_PATTERNS[parameter["name"]]}
            if operation.get("operationId", "").endswith("_extension"):
                # These routes read their body themselves: any JSON value, not only an object.
                operation["requestBody"] = {"required": True, "description": "The key's new value: any JSON value",
                                            "content": {"application/json": {"schema": {}}}}
    schemas = document.get("components", {}).get("schemas", {})
    text = json.dumps(document["paths"])
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if f"#/components/schemas/{unused}" not in text:
            schemas.pop(unused, None)
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
