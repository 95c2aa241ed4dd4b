"""The no-Docker local run (`make run`): an embedded DynamoDB and the API, in one process.

* Embedded DynamoDB: moto's server, made faithful by local.embedded_dynamodb (every call atomic),
  on a free loopback port. Skipped when AWS_ENDPOINT_URL_DYNAMODB points at a DynamoDB already.
* The table is created from template.yaml (keys, indexes, TTL) unless it exists.
* The API: every `Api` event of template.yaml becomes a route; a request is turned into the API
  Gateway REST proxy event `sam local start-api` would send and handed to the function's
  `lambda_handler`. Each function keeps a pool of independently loaded copies of its handler
  module, like Lambda execution environments: a copy serves one request at a time (Powertools'
  resolver holds per-request state), while different requests run in parallel.
* `/swagger`: Swagger UI from the swagger-ui-bundle package (no CDN) over docs/openapi.json.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import logging
import mimetypes
import os
import queue
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local import embedded_dynamodb, template

LOCAL_REGION = "us-east-1"
POOL_SIZE = 8
log = logging.getLogger("local-run")


# ---------------------------------------------------------------- table


def ensure_table(table_name: str) -> None:
    """Create the template's table on the configured endpoint unless it exists."""
    from lib.store.table import reset_client

    client = reset_client()  # the endpoint was chosen after lib.store may have been imported
    if table_name not in client.list_tables().get("TableNames", []):
        template.create_table(client, table_name)


# ---------------------------------------------------------------- routes and events


@dataclass
class Route:
    api: template.ApiRoute
    pattern: re.Pattern
    names: list[str]
    specificity: tuple[int, ...]


def compile_routes(routes: list[template.ApiRoute]) -> list[Route]:
    """Routes ordered as API Gateway picks them: fixed path segments win over `{parameters}`."""
    compiled = []
    for api in routes:
        names: list[str] = []
        parts = []
        for segment in api.path.strip("/").split("/"):
            match = re.fullmatch(r"\{(\w+)(\+?)\}", segment)
            if match:
                names.append(match.group(1))
                parts.append(f"(?P<{match.group(1)}>.+)" if match.group(2) else f"(?P<{match.group(1)}>[^/]+)")
            else:
                parts.append(re.escape(segment))
        pattern = re.compile("^/" + "/".join(parts) + "/?$")
        specificity = tuple(0 if seg.startswith("{") else 1 for seg in api.path.strip("/").split("/"))
        compiled.append(Route(api, pattern, names, specificity))
    return sorted(compiled, key=lambda r: r.specificity, reverse=True)


def build_event(request: Request, route: Route, match: re.Match) -> dict[str, Any]:
    """The API Gateway REST proxy event for `request` (the shape `sam local start-api` sends)."""
    raw = request.get_data()
    try:
        body, encoded = (raw.decode("utf-8"), False) if raw else (None, False)
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(raw).decode(), True
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for key, value in request.headers.items():
        headers[key] = value
        multi_headers.setdefault(key, []).append(value)
    headers.setdefault("X-Forwarded-Proto", "http")
    multi_headers.setdefault("X-Forwarded-Proto", ["http"])
    query = {key: values[-1] for key, values in request.args.lists()}
    multi_query = {key: values for key, values in request.args.lists()}
    path_params = {name: match.group(name) for name in route.names}
    now = time.time()
    return {
        "resource": route.api.path,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "resourcePath": route.api.path,
            "httpMethod": request.method,
            "path": request.path,
            "stage": "local",
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": request.remote_addr, "userAgent": request.headers.get("User-Agent")},
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def to_response(result: dict[str, Any]) -> Response:
    """API Gateway's translation of a proxy integration result into HTTP."""
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    response = Response(data, status=int(result.get("statusCode", 500)))
    response.headers.pop("Content-Type", None)
    for key, value in (result.get("headers") or {}).items():
        response.headers[key] = str(value)
    for key, values in (result.get("multiValueHeaders") or {}).items():
        response.headers.pop(key, None)
        for value in values:
            response.headers.add(key, str(value))
    return response


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that Powertools reads."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 512
    timeout_ms: int = 29_000
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))


class FunctionPool:
    """Independently loaded copies of one handler module (execution environments)."""

    def __init__(self, function: str, handler: str, size: int = POOL_SIZE):
        self.function = function
        self.module_path, self.attribute = handler.rsplit(".", 1)
        self.size = size
        self.idle: queue.Queue[ModuleType] = queue.Queue()
        self.created = 0
        self.lock = threading.Lock()

    def _load(self, index: int) -> ModuleType:
        source = template.ROOT / (self.module_path.replace(".", "/") + ".py")
        spec = importlib.util.spec_from_file_location(f"{self.module_path}__env{index}", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            grow = self.idle.empty() and self.created < self.size
            if grow:
                self.created += 1
                index = self.created
        module = self._load(index) if grow else self.idle.get()
        try:
            return getattr(module, self.attribute)(event, LambdaContext(self.function))
        finally:
            self.idle.put(module)


# ---------------------------------------------------------------- the API application


def _error(status: int, exception: str, message: str) -> Response:
    return Response(json.dumps({"message": message, "exception": exception}), status=status,
                    content_type="application/json")


SWAGGER_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Context Services API</title>
<link rel="stylesheet" href="/swagger/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/swagger/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/swagger/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>"""


class LocalApi:
    """WSGI application that plays API Gateway in front of the template's functions."""

    def __init__(self) -> None:
        self.routes = compile_routes(template.api_routes())
        self.pools: dict[str, FunctionPool] = {}
        for route in self.routes:
            self.pools.setdefault(route.api.function, FunctionPool(route.api.function, route.api.handler))

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        started = time.perf_counter()
        response = self.dispatch(request)
        log.info("%s %s %s %.1f ms", request.method, request.full_path.rstrip("?"), response.status_code,
                 (time.perf_counter() - started) * 1000)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if request.path == "/swagger" or request.path.startswith("/swagger/"):
            return self.swagger(request.path)
        for route in self.routes:
            match = route.pattern.match(request.path)
            if match and route.api.method in ("ANY", request.method):
                try:
                    result = self.pools[route.api.function].invoke(build_event(request, route, match))
                except Exception:  # noqa: BLE001 - what API Gateway answers when a function crashes
                    log.exception("function %s failed", route.api.function)
                    return _error(502, "InternalException", "Internal server error")
                return to_response(result)
        # API Gateway's MISSING_AUTHENTICATION_TOKEN response, as template.yaml reshapes it.
        return _error(404, "NotFoundException", "no such route")

    def swagger(self, path: str) -> Response:
        if path in ("/swagger", "/swagger/"):
            return Response(SWAGGER_HTML, content_type="text/html; charset=utf-8")
        if path == "/swagger/openapi.json":
            return Response((template.ROOT / "docs" / "openapi.json").read_bytes(), content_type="application/json")
        import swagger_ui_bundle

        name = path.removeprefix("/swagger/assets/")
        asset = Path(swagger_ui_bundle.swagger_ui_path) / name
        if "/" in name or not asset.is_file():
            return _error(404, "NotFoundException", "no such asset")
        return Response(asset.read_bytes(), content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")


# ---------------------------------------------------------------- entry point


def configure_environment() -> dict[str, str]:
    """Environment of the local functions: the template's plain values, local defaults for the
    rest, and whatever the user already exported (which wins)."""
    defaults = {
        **template.plain_environment(),
        "TABLE_NAME": "context-services-local",
        "PAGE_TOKEN_SECRET": "local-run-secret",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    if not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        # The embedded DynamoDB accepts any credentials; never pick up real ones by accident.
        os.environ["AWS_ACCESS_KEY_ID"] = "local"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "local"
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
    return defaults


def serve(host: str, port: int) -> None:
    """Start everything and serve until interrupted."""
    configure_environment()
    embedded = None
    if not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        embedded, endpoint = embedded_dynamodb.start(host)
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
        print(f"embedded DynamoDB (moto, serialised) on {endpoint}", flush=True)
    else:
        log.info("using DynamoDB at %s", os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
    ensure_table(os.environ["TABLE_NAME"])
    server = make_server(host, port, LocalApi(), threaded=True)
    print(f"Context Services API on http://{host}:{server.server_port}/genesys/1/cs  "
          f"(Swagger UI: http://{host}:{server.server_port}/swagger) - Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if embedded is not None:
            embedded.shutdown()
        print("stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Context Services API locally (no Docker).")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    for noisy in ("werkzeug", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
