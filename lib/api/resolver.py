"""HTTP glue shared by every function: the routes of a function, the resolver with its one error
mapping, replies, paging links and idempotent creates. The only place where errors become responses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote, urlencode

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lib import clock
from lib.api.bodies import strict_loads
from lib.errors import ApiError, MethodNotAllowed, NotFound, ValidationError
from lib.models import ErrorOut
from lib.observability import logger, metrics
from lib.rules.conversation import Page, compact_json
from lib.status import Status
from lib.store.idempotency import Claim, Replay, StoredReply

BASE_PATH = "/genesys/1/cs"
# (status filter, path suffix, label) of the all / active / completed list routes.
LIST_STATUSES = ((None, "", "all"), (Status.ACTIVE, "/active", "active"), (Status.COMPLETED, "/completed", "completed"))
JSON = "application/json"
REPLAY_HEADER = "X-Idempotent-Replay"

ERROR_RESPONSES: dict[int, str] = {
    400: "ValidationException", 404: "NotFoundException", 405: "MethodNotAllowedException",
    409: "ConflictException", 413: "PayloadTooLargeException", 500: "InternalException",
}


def error_response(status: int, exception: str, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, headers=headers,
                    body=json.dumps({"message": message, "exception": exception}, ensure_ascii=False))


def json_response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Response[Any]:
    """A JSON reply with an explicit status (204 replies carry no body and no content type)."""
    if status == 204:
        return Response(status_code=204, content_type=None, body="", headers=headers)
    text = body.json if isinstance(body, Page) else compact_json(body)
    return Response(status_code=status, content_type=JSON, headers=headers, body=text)


def responses(success: int, description: str, model: Any = None, errors: tuple[int, ...] = (400, 404)) -> dict[int, Any]:
    """OpenAPI `responses` of a route: its real success code and the error codes it can answer."""
    ok: dict[str, Any] = {"description": description}
    if model is not None:
        ok["content"] = {JSON: {"model": model}}
    documented: dict[int, dict[str, Any]] = {success: ok}
    for status in sorted(set(errors) | {500}):
        documented[status] = {"description": ERROR_RESPONSES[status], "content": {JSON: {"model": ErrorOut}}}
    return documented


# ---------------------------------------------------------------- routes


@dataclass
class Routes:
    """The routes of one function: a Powertools router, and the same routes as (method, template)
    kept here, so that the resolver can answer 405 with `Allow` as API Gateway picks resources
    (literal segments first) without reading Powertools' private route tables."""

    router: APIGatewayRouter = field(default_factory=APIGatewayRouter)
    table: list[tuple[str, str]] = field(default_factory=list)

    def route(self, method: str, path: str, **kwargs: Any) -> Callable[..., Any]:
        self.table.append((method, path))
        register: Callable[..., Any] = getattr(self.router, method.lower())(path, **kwargs)
        return register

    def get(self, path: str, **kwargs: Any) -> Callable[..., Any]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[..., Any]:
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[..., Any]:
        return self.route("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[..., Any]:
        return self.route("DELETE", path, **kwargs)

    @property
    def current_event(self) -> Any:
        return self.router.current_event


def _segments(template: str) -> tuple[str | None, ...]:
    """A route template's segments: literal text, or None for a `<parameter>`."""
    return tuple(None if part.startswith("<") else part for part in template.strip("/").split("/"))


class Resources:
    """The resources of a function as API Gateway picks among them: the route templates grouped by
    their number of segments, each with its methods and its rank (literal segments beat parameters,
    segment by segment from the left). Built once per function, not per request."""

    def __init__(self, table: list[tuple[str, str]]):
        grouped: dict[tuple[str | None, ...], set[str]] = {}
        for method, template in table:
            grouped.setdefault(_segments(template), set()).add(method)
        self.by_length: dict[int, list[tuple[tuple[str | None, ...], tuple[int, ...], list[str]]]] = {}
        for segments, methods in grouped.items():
            rank = tuple(1 if s is not None else 0 for s in segments)
            self.by_length.setdefault(len(segments), []).append((segments, rank, sorted(methods)))

    def allowed(self, path: str) -> tuple[list[str], bool]:
        """(methods of the resource API Gateway would pick for `path`, whether any resource matches)."""
        parts = path.strip("/").split("/")
        best: tuple[int, ...] | None = None
        methods: set[str] = set()
        for segments, rank, allowed in self.by_length.get(len(parts), ()):
            if any(s is not None and s != p for s, p in zip(segments, parts)):
                continue
            if best is None or rank > best:
                best, methods = rank, set(allowed)
            elif rank == best:
                methods.update(allowed)
        return sorted(methods), best is not None


# ---------------------------------------------------------------- paths, links


def routing_path(event: dict[str, Any]) -> str:
    """The path to route on: the resource template filled with the path parameters, each in one
    canonical percent-encoding (`C%23123`, and `C#123` if a gateway ever passed it decoded), so every
    value a client can address matches the route patterns. A REST API passes path parameters as the
    client encoded them; route parameters are decoded once, by lib.api.params.Decoded."""
    resource, params = event.get("resource"), event.get("pathParameters") or {}
    if not resource or "{" not in resource or not params:
        return event.get("path") or "/"
    parts = []
    for text, name, greedy in _template(resource):
        value = params.get(name) if name else None
        if value is None:
            parts.append(text)
        elif _UNRESERVED.fullmatch(value):  # ids, mostly: the canonical encoding is the value itself
            parts.append(value)
        else:
            parts.append(quote(unquote(value), safe="/" if greedy else ""))
    return "".join(parts)


# Characters quote() never encodes and unquote() never decodes: a value of only these is its own
# canonical encoding.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


@lru_cache(maxsize=256)
def _template(resource: str) -> tuple[tuple[str, str | None, bool], ...]:
    """A resource template's pieces: (text as written, parameter name or None, greedy `{name+}`)."""
    pieces: list[tuple[str, str | None, bool]] = []
    last = 0
    for match in re.finditer(r"\{(\w+)(\+?)\}", resource):
        if match.start() > last:
            pieces.append((resource[last:match.start()], None, False))
        pieces.append((match.group(0), match.group(1), bool(match.group(2))))
        last = match.end()
    if last < len(resource):
        pieces.append((resource[last:], None, False))
    return tuple(pieces)


def public_path(event: Any, path: str) -> str:
    """`path` (under the base path) as the client reaches it: with the stage or mapping prefix the
    request came through (requestContext.path), e.g. `/Prod/genesys/1/cs/...` on execute-api."""
    called = (event.get("requestContext") or {}).get("path") or ""
    prefix = called[:called.find(BASE_PATH)] if BASE_PATH in called else ""
    return f"{prefix}{BASE_PATH}{path}"


def next_link(event: Any, page_token: str) -> str:
    """`Link` of the next page: the path and query as the client called them, `page_token` replaced
    (§5): a path, no scheme or host, so nothing of the request's Host is reflected."""
    query = [(name, value) for name, values in (event.get("multiValueQueryStringParameters") or {}).items()
             if name != "page_token" for value in values]
    query.append(("page_token", page_token))
    path = public_path(event, event.path[len(BASE_PATH):] if event.path.startswith(BASE_PATH) else event.path)
    return f"<{quote(path, safe='/%')}?{urlencode(query)}>; rel=\"next\""


def list_response(routes: Routes, views: list[dict[str, Any]], token: str | None) -> Response[Any]:
    headers = {"Link": next_link(routes.current_event, token)} if token else None
    return json_response(200, views, headers)


def json_body(event: Any) -> Any:
    """The request body as any JSON value (extension PUTs), parsed strictly."""
    return strict_loads(event.decoded_body or "")


# ---------------------------------------------------------------- creating, once


Created = Callable[[Any], tuple[int, Any, str]]  # result -> (status, body, path the Location names)


def create_once(routes: Routes, headers: Any, operation: str, created: Created,
                work: Callable[[Claim | None], Any]) -> Response[Any]:
    """Run a creating request; with an Idempotency-Key, at most once (lib.store.idempotency): its
    record is written in the transaction that creates, and a repeat gets the stored reply.
    `created` describes the reply: its status, body and the path its Location names."""
    event = routes.current_event

    def reply(result: Any) -> StoredReply:
        status, body, path = created(result)
        return StoredReply(status, body, {"Location": public_path(event, path)})

    claim = None
    if headers.idempotency_key is not None:
        claim = Claim(headers.key, operation, headers.idempotency_key, event.json_body, clock.now_ms(), reply)
    try:
        answer = reply(work(claim))
    except Replay as replay:
        metrics.add_metric(name="IdempotentReplays", unit="Count", value=1)
        answer = StoredReply(replay.reply.status, replay.reply.body, {**replay.reply.headers, REPLAY_HEADER: "true"})
    return json_response(answer.status, answer.body, answer.headers)


# ---------------------------------------------------------------- validation messages


_PATTERN_WORDS = {
    r"^[A-Za-z0-9._-]{1,64}$": "1-64 characters of A-Z a-z 0-9 . _ -",
    r"^[\x21-\x7e]{1,128}$": "1-128 visible ASCII characters, no spaces",
    r"^[1-9][0-9]{0,18}$": "a positive integer, written in digits",
}
_INTERNAL_LOC = {"body", "query", "path", "header", "headers", "params", "function-after", "function-before",
                 "function-wrap", "function-plain", "constrained-int", "constrained-str", "int", "str", "bool",
                 "list[str]", "lax-or-strict", "lax", "strict", "json-or-python[json=...,python=...]"}


def _field(loc: tuple[Any, ...]) -> str:
    """The field as the client sent it: route parameter model names, union branches and validator
    wrappers dropped, list positions shown as [n]."""
    parts: list[str] = []
    for part in loc:
        text = str(part)
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif text in _INTERNAL_LOC or text.startswith(("function-", "constrained-", "json-or-python")) \
                or text.endswith("[str]") or "[" in text:
            continue
        else:
            parts.append(("." if parts else "") + text)
    return "".join(parts).lstrip(".") or "body"


# pydantic error types whose words do not depend on the error's context.
_FIXED_WORDS = {
    "json_invalid": "request body is not valid JSON",
    "model_attributes_type": "must be a JSON object",
    "extra_forbidden": "is not a field of this request",
    "missing": "is required",
    "int_type": "must be an integer", "int_parsing": "must be an integer", "int_from_float": "must be an integer",
    "string_type": "must be a string",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
}


def _words(detail: dict[str, Any]) -> str:
    kind = detail.get("type", "")
    message = str(detail.get("msg", "invalid value")).removeprefix("Value error, ")
    context = detail.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        pattern = context.get("pattern", "")
        return "must be " + _PATTERN_WORDS.get(pattern, "in the documented format")
    if kind in _FIXED_WORDS:
        return _FIXED_WORDS[kind]
    if kind == "literal_error":
        return f"must be one of {context.get('expected', '')}".replace("'", "")
    bounds = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
              "greater_than": ("more than", "gt"), "less_than": ("less than", "lt")}
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {context.get(key)}"
    if kind in ("string_too_long", "string_too_short"):
        limit = context.get("max_length", context.get("min_length"))
        return f"must be {'at most' if kind == 'string_too_long' else 'at least'} {limit} characters"
    if kind in ("too_long", "too_short"):
        limit = context.get("max_length", context.get("min_length"))
        return f"must hold {'at most' if kind == 'too_long' else 'at least'} {limit} items"
    return message[:1].lower() + message[1:]


_TYPE_WORDS = {"must be an integer": "an integer", "must be a string": "a string"}


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One message naming each field as the client sent it and what is allowed (§2, issue 7)."""
    seen: dict[str, list[str]] = {}
    for detail in errors:
        words = seen.setdefault(_field(tuple(detail.get("loc", ()))), [])
        found = _words(detail)
        if found not in words:
            words.append(found)
    parts = []
    for name, words in seen.items():
        # A union (a business attribute: integer or string) reports one failure per branch.
        if len(words) > 1 and all(w in _TYPE_WORDS for w in words):
            parts.append(f"{name}: must be " + " or ".join(_TYPE_WORDS[w] for w in words))
        else:
            parts.append(f"{name}: {words[0]}")
    return "; ".join(parts) or "invalid request"


# ---------------------------------------------------------------- the resolver


class ContractResolver(APIGatewayRestResolver):
    """Powertools' REST resolver with validation, strict JSON bodies, and API Gateway's choice of
    resource: a path is routed on its decoded path parameters, and a path whose resource exists
    with other methods is a 405 with `Allow` (not a match of a parameterised sibling)."""

    def __init__(self, table: list[tuple[str, str]]):
        super().__init__(enable_validation=True, strip_prefixes=[BASE_PATH], json_body_deserializer=strict_loads)
        self.resources = Resources(table)

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        path = routing_path(event)
        if path != event.get("path"):
            event = {**event, "path": path}
        inner = path[len(BASE_PATH):] if path.startswith(BASE_PATH + "/") else None
        if inner is not None:
            methods, found = self.resources.allowed(inner)
            method = (event.get("httpMethod") or "").upper()
            if found and method not in methods:
                error = MethodNotAllowed(f"method {method} is not allowed on {event.get('path')}; "
                                         f"allowed: {', '.join(methods)}")
                return proxy_error(error, {"Allow": ", ".join(methods)})
        return super().resolve(event, context)


def proxy_error(error: ApiError, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A proxy-integration reply for an error found before the resolver runs."""
    return {"statusCode": error.status, "headers": {"Content-Type": JSON, **(headers or {})},
            "body": json.dumps({"message": error.message, "exception": error.exception}, ensure_ascii=False),
            "isBase64Encoded": False}


def internal_error(event: dict[str, Any]) -> ApiError:
    """The contract's 500: its message carries the request id, nothing else (§2)."""
    request_id = (event.get("requestContext") or {}).get("requestId", "unknown")
    return ApiError(f"internal error, request id {request_id}")


def make_app(*route_sets: Routes) -> APIGatewayRestResolver:
    """The resolver of one function: validation on, every error mapped to the contract's shape."""
    app = ContractResolver([entry for routes in route_sets for entry in routes.table])
    for routes in route_sets:
        app.include_router(routes.router)

    @app.exception_handler(ApiError)
    def _api_error(error: ApiError) -> Response[Any]:
        return error_response(error.status, error.exception, error.message)

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[Any]:
        return error_response(400, "ValidationException", validation_message(error.errors()))

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[Any]:
        event = app.current_event
        return error_response(404, "NotFoundException", f"no route {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def _unexpected(_error: Exception) -> Response[Any]:
        logger.exception("unexpected error")
        internal = internal_error(app.current_event.raw_event)
        return error_response(internal.status, internal.exception, internal.message)

    return app


__all__ = ["BASE_PATH", "LIST_STATUSES", "NotFound", "Routes", "ValidationError", "make_app"]
