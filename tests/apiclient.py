"""Calls the real `lambda_handler` of the function that template.yaml routes a request to, with a
minimal API Gateway REST proxy event, the way the tests of Powertools' own examples do."""

from __future__ import annotations

import importlib
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local import template
from local.server import LambdaContext, compile_routes

BASE = "/genesys/1/cs"
ROUTES = compile_routes(template.api_routes())


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


def event_for(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              raw_body: str | None = None) -> tuple[dict[str, Any], str]:
    """(event, handler) for a request; `path` is relative to the base path and may carry a query."""
    parts = urlsplit(path)
    full_path = BASE + parts.path
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for route in ROUTES:
        match = route.pattern.match(full_path)
        if match:
            break
    else:
        raise LookupError(f"template.yaml routes nothing to {full_path}")
    text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    all_headers = {"Host": "api.test", "Content-Type": "application/json", **(headers or {})}
    event = {
        "resource": route.api.path,
        "path": full_path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": {name: match.group(name) for name in route.names} or None,
        "requestContext": {"requestId": str(uuid.uuid4()), "path": "/Prod" + full_path, "stage": "Prod",
                           "httpMethod": method, "resourcePath": route.api.path},
        "body": text,
        "isBase64Encoded": False,
    }
    return event, route.api.handler


def invoke(event: dict[str, Any], handler: str) -> Reply:
    module_name, attribute = handler.rsplit(".", 1)
    result = getattr(importlib.import_module(module_name), attribute)(event, LambdaContext(module_name))
    headers = {k: v for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(values)
    return Reply(result["statusCode"], headers, result.get("body") or "")


class Api:
    """Test client: `api.post("/services/start", {...})` -> Reply."""

    def __init__(self, headers: dict[str, str] | None = None):
        self.headers = headers or {}

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                raw_body: str | None = None) -> Reply:
        event, handler = event_for(method, path, body, {**self.headers, **(headers or {})}, raw_body)
        return invoke(event, handler)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.request("DELETE", path, **kw)

    def start(self, **body: Any) -> str:
        """Start a service and return its id (asserting the 201)."""
        if "customer_id" not in body and "contact_key" not in body:
            body["customer_id"] = "c-1"
        reply = self.post("/services/start", body)
        assert reply.status == 201, reply.text
        return reply.json["service_id"]
