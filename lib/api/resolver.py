"""HTTP glue shared by every function: the resolver with its error mapping, tenancy headers,
paging links and the `lambda_handler` wrapper. The only place where errors become responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from lib.errors import ApiError, MethodNotAllowed, NotFound, ValidationError
from lib.models import ErrorOut
from lib.observability import logger
from lib.store import ACTIVE, COMPLETED

BASE_PATH = "/genesys/1/cs"
# (status filter, path suffix, label) of the all / active / completed list routes.
LIST_STATUSES = ((None, "", "all"), (ACTIVE, "/active", "active"), (COMPLETED, "/completed", "completed"))
JSON = "application/json"

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "ValidationException"},
    404: {"description": "NotFoundException"},
    405: {"description": "MethodNotAllowedException"},
    409: {"description": "ConflictException"},
    413: {"description": "PayloadTooLargeException"},
    500: {"description": "InternalException"},
}


def error_response(status: int, exception: str, message: str) -> Response:
    return Response(status_code=status, content_type=JSON,
                    body=json.dumps({"message": message, "exception": exception}))


def json_response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Response:
    """A JSON reply with an explicit status (204 replies carry no body)."""
    if status == 204:
        return Response(status_code=204, content_type=None, body="", headers=headers)
    return Response(status_code=status, content_type=JSON, headers=headers,
                    body=json.dumps(body, separators=(",", ":"), ensure_ascii=False))


def responses(success: int, description: str, model: Any = None, errors: tuple[int, ...] = (400, 404)) -> dict:
    """OpenAPI `responses` of a route: its real success code and the error codes it can answer."""
    ok: dict[str, Any] = {"description": description}
    if model is not None:
        ok["content"] = {JSON: {"model": model}}
    documented: dict[int | str, dict[str, Any]] = {success: ok}
    for status in sorted(set(errors) | {500}):
        documented[status] = {"description": ERROR_RESPONSES[status]["description"],
                              "content": {JSON: {"model": ErrorOut}}}
    return documented


# ---------------------------------------------------------------- paging links


def next_link(event: Any, page_token: str) -> str:
    """Full URL of the next page: this request's URL with `page_token` replaced."""
    headers = event.headers
    host = headers.get("Host") or "localhost"
    proto = headers.get("X-Forwarded-Proto") or "https"
    request_context = event.get("requestContext") or {}
    path = request_context.get("path") or event.path
    params = {k: v for k, v in (event.query_string_parameters or {}).items() if k != "page_token"}
    params["page_token"] = page_token
    return f"{proto}://{host}{path}?{urlencode(params)}"


def create_once(router: Any, headers: Any, operation: str, work: Callable[[], dict[str, Any]]) -> Response:
    """Run a creating request at most once per Idempotency-Key (lib.idempotency). `work` returns
    {"status", "body", "headers"}; the same description is replayed for a repeat."""
    if headers.idempotency_key is None:
        reply = work()
    else:
        from lib.store import idempotency  # imported on the first request that uses it, not at cold start

        reply = idempotency.once(headers.key, operation, headers.idempotency_key, router.current_event.json_body,
                                 work, router.lambda_context)
    return json_response(reply["status"], reply.get("body"), reply.get("headers"))


def list_response(app: Any, views: list[dict[str, Any]], token: str | None) -> Response:
    headers = {"Link": f'<{next_link(app.current_event, token)}>; rel="next"'} if token else None
    return json_response(200, views, headers)


# ---------------------------------------------------------------- resolver and entry point


def _message(error: RequestValidationError) -> str:
    parts = []
    for detail in error.errors():
        location = [str(p) for p in detail.get("loc", ()) if p not in ("body", "query", "path", "header")]
        message = detail.get("msg", "invalid value").removeprefix("Value error, ")
        if detail.get("type") == "json_invalid":
            location = []
            message = "request body is not valid JSON"
        elif detail.get("type") == "model_attributes_type":
            message = "request body must be a JSON object"
        parts.append(f"{'.'.join(location) or 'body'}: {message}")
    return "; ".join(parts) or "invalid request"


class ContractResolver(APIGatewayRestResolver):
    """Powertools' REST resolver, with one rule added: a path that names a fixed route (such as
    `/services/start`) is that route, so another method on it is a 405 rather than a match of a
    parameterised sibling (`GET /services/{service_id}` with id "start")."""

    def _resolve(self):
        method = self.current_event.http_method.upper()
        path = self._remove_prefix(self.current_event.path)
        fixed = [route for route in self._static_routes if route.rule.match(path)]
        if fixed and all(route.method != method for route in fixed):
            return self._handle_not_found(method=method, path=path)
        return super()._resolve()


def json_body(event: Any) -> Any:
    """The request body as any JSON value (for routes whose body is not an object)."""
    try:
        return json.loads(event.decoded_body or "")
    except ValueError:
        raise ValidationError("body: request body is not valid JSON") from None


def make_app(*routers: Router) -> APIGatewayRestResolver:
    """The resolver of one function: validation on, every error mapped to the contract's shape."""
    app = ContractResolver(enable_validation=True, strip_prefixes=[BASE_PATH])
    for router in routers:
        app.include_router(router)

    @app.exception_handler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error.status, error.exception, error.message)

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response:
        return error_response(400, "ValidationException", _message(error))

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        event = app.current_event
        path = app._remove_prefix(event.path)  # noqa: SLF001 - the resolver's own prefix rule
        if event.path.startswith(BASE_PATH + "/") and any(
            route.rule.match(path) for route in app._static_routes + app._dynamic_routes  # noqa: SLF001
        ):
            error: ApiError = MethodNotAllowed(f"method {event.http_method} is not allowed on {event.path}")
        else:
            error = NotFound(f"no route {event.http_method} {event.path}")
        return error_response(error.status, error.exception, error.message)

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unexpected error")
        request_id = (app.current_event.get("requestContext") or {}).get("requestId", "unknown")
        return error_response(500, "InternalException", f"internal error, request id {request_id}")

    return app
