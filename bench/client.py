"""The benchmark's own way to call a function: the API Gateway event local.events builds for a request
(the adapter `make run` and the tests share), the handler template.yaml routes it to, the proxy
result turned back into a reply. bench/ imports nothing from tests/ (a benchmark anyone can rerun
needs no test tree); this is the part of the tests' client it needs, and no more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

BASE = "/genesys/1/cs"
STAGE = "Prod"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


@lru_cache(maxsize=1)
def _routes() -> list[Any]:
    from local import template
    from local.events import compile_routes

    return compile_routes(template.api_routes())


def event_for(method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """(event, handler) for a request; `path` is relative to the base path (percent-encoded where it
    needs to be) and may carry a query; called as on the stage's execute-api URL."""
    from local.events import HttpRequest, build_event, find_route

    data = b"" if body is None else json.dumps(body).encode("utf-8")
    all_headers = {"Host": "api.test", "Content-Type": "application/json", **(headers or {})}
    request = HttpRequest.from_target(method, BASE + path, all_headers.items(), data)
    found = find_route(_routes(), request.method, request.raw_path)
    if found is None:
        raise LookupError(f"template.yaml routes nothing to {request.raw_path}")
    route, params = found
    return build_event(request, route, params, stage=STAGE, stage_in_path=True), route.api.handler


def to_reply(result: Any) -> Reply:
    """A proxy integration result as the client would see it (repeated headers joined)."""
    from local.events import to_response

    response = to_response(result)
    headers: dict[str, str] = {}
    for key, value in response.headers:
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Reply(response.status, headers, response.body.decode("utf-8"))


def context(function: str) -> Any:
    """The Lambda context object the local run passes."""
    from local.events import LambdaContext

    return LambdaContext(function)


class Verbs:
    """get / post / put / delete over `request(method, path, body=None, headers=None)`."""

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        raise NotImplementedError

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)
