"""Calls the real `lambda_handler` of the function that template.yaml routes a request to, with the
event API Gateway would send: built by local.events, the same adapter `make run` uses, from a
method, a path with its query and headers, as called on the stage's execute-api URL (`/Prod`)."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import Any

from local import template
from local.events import HttpRequest, LambdaContext, build_event, compile_routes, find_route, to_response
from tests.verbs import Verbs

BASE = "/genesys/1/cs"
STAGE = "Prod"
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
              raw_body: str | bytes | None = None) -> tuple[dict[str, Any], str]:
    """(event, handler) for a request; `path` is relative to the base path, as a client writes it on
    the request line (percent-encoded where it needs to be), and may carry a query."""
    if raw_body is not None:
        data = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
    else:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
    all_headers = {"Host": "api.test", "Content-Type": "application/json", **(headers or {})}
    request = HttpRequest.from_target(method, BASE + path, all_headers.items(), data)
    found = find_route(ROUTES, request.method, request.raw_path)
    if found is None:
        raise LookupError(f"template.yaml routes nothing to {request.raw_path}")
    route, params = found
    return build_event(request, route, params, stage=STAGE, stage_in_path=True), route.api.handler


def invoke(event: dict[str, Any], handler: str) -> Reply:
    module_name, attribute = handler.rsplit(".", 1)
    result = getattr(importlib.import_module(module_name), attribute)(event, LambdaContext(module_name))
    response = to_response(result)
    headers: dict[str, str] = {}
    for key, value in response.headers:
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Reply(response.status, headers, response.body.decode("utf-8"))


class Api(Verbs):
    """Test client: `api.post("/services/start", {...})` -> Reply."""

    def __init__(self, headers: dict[str, str] | None = None):
        self.headers = headers or {}

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                raw_body: str | bytes | None = None) -> Reply:
        event, handler = event_for(method, path, body, {**self.headers, **(headers or {})}, raw_body)
        return invoke(event, handler)

    def start(self, **body: Any) -> str:
        """Start a service and return its id (asserting the 201)."""
        if "customer_id" not in body and "contact_key" not in body:
            body["customer_id"] = "c-1"
        reply = self.post("/services/start", body)
        assert reply.status == 201, reply.text
        return reply.json["service_id"]
