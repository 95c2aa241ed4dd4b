"""The one HTTP -> API Gateway adapter: turns an HTTP request into the REST API (v1) Lambda proxy
event that API Gateway would send, and a proxy integration result back into HTTP. Used by the local
run (local/server.py) and by the tests (tests/apiclient.py), so both hand the handlers the same
events. Never deployed.

What API Gateway does, and so what this does (recorded REST API proxy events, for example in
LocalStack's AWS-validated snapshots of `test_lambda_aws_proxy_integration`):

* Routing is on the raw path: a percent-encoded `/` (`%2F`) stays inside one path segment, fixed
  path segments win over `{parameters}`, and a trailing slash is ignored.
* `path` is the raw path as the client sent it, still percent-encoded (`/customers/C%23123/services`
  arrives as is), and `requestContext.path` is the same with the stage in front (`/Prod/...`) when
  the API is called on its execute-api URL. The local server plays a custom domain with no base
  path, where `requestContext.path` carries no stage.
* `pathParameters` are taken from that raw path and are not decoded either (AWS's own recording
  shows `test%2Balias@...` in both `path` and `pathParameters`). A handler that wants `C#123` from
  `/customers/C%23123/services` must percent-decode the parameter itself.
* The query string is decoded as a form would be (`%2B` -> `+`, `+` -> space); a parameter given
  more than once keeps every value, in order, in `multiValueQueryStringParameters`, and its last
  value in `queryStringParameters`. Headers likewise (`multiValueHeaders` / `headers`).
* A body that is valid UTF-8 is passed as text, anything else base64-encoded with
  `isBase64Encoded: true`.
* Identity: with AUTH=on (the local access mode) a request header `X-CS-Principal: <name>` stands
  for SigV4 credentials and becomes what IAM authorization puts in `requestContext.identity`
  (`userArn` arn:aws:iam::000000000000:user/<name>, `caller`, `accessKey` "LOCAL"); without the
  header, or with AUTH unset, the identity is anonymous (`userArn` null). The header itself is
  consumed here and never reaches the function.
* With AUTH=sigv4 (and AUTH=cognito) the local server verifies a real SigV4 signature first
  (local.signatures) and passes the signer's principal ARN here (`signed`), with AUTH=cognito also
  the Cognito identity fields of temporary credentials; X-CS-Principal is then ignored.
* `X-Forwarded-For` (the client's address appended), `X-Forwarded-Port` and `X-Forwarded-Proto` are
  the gateway's: a client's own values for them are replaced.
"""

from __future__ import annotations

import base64
import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from local import template

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"
PRINCIPAL_HEADER = "X-CS-Principal"
PRINCIPAL_ACCOUNT = "000000000000"


# ---------------------------------------------------------------- routes


@dataclass(frozen=True)
class Route:
    api: template.ApiRoute
    pattern: re.Pattern
    names: tuple[str, ...]
    specificity: tuple[int, ...]


def compile_routes(routes: Iterable[template.ApiRoute]) -> list[Route]:
    """Routes ordered as API Gateway picks them: fixed path segments win over `{parameters}`."""
    compiled = []
    for api in routes:
        names: list[str] = []
        parts = []
        segments = api.path.strip("/").split("/")
        for segment in segments:
            match = re.fullmatch(r"\{(\w+)(\+?)\}", segment)
            if match:
                names.append(match.group(1))
                parts.append(f"(?P<{match.group(1)}>.+)" if match.group(2) else f"(?P<{match.group(1)}>[^/]+)")
            else:
                parts.append(re.escape(segment))
        pattern = re.compile("^/" + "/".join(parts) + "/?$")
        specificity = tuple(0 if seg.startswith("{") else 1 for seg in segments)
        compiled.append(Route(api, pattern, tuple(names), specificity))
    return sorted(compiled, key=lambda r: r.specificity, reverse=True)


def find_route(routes: list[Route], method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for (method, raw path) and its path parameters (raw, as API Gateway gives them),
    or None: API Gateway's "Missing Authentication Token" (a 404 in this API's gateway responses)."""
    for route in routes:
        match = route.pattern.match(raw_path)
        if match and route.api.method in ("ANY", method.upper()):
            return route, {name: match.group(name) for name in route.names}
    return None


# ---------------------------------------------------------------- requests and events


@dataclass
class HttpRequest:
    """An HTTP request as it reaches API Gateway: the raw (percent-encoded) path and query string."""

    method: str
    raw_path: str
    query_string: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    scheme: str = "https"
    port: int = 443

    @classmethod
    def from_target(cls, method: str, target: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                    **kw: Any) -> HttpRequest:
        """From a request target as written on the request line: `/path?query` (a `#fragment` is
        never sent by clients and is dropped)."""
        target = target.split("#", 1)[0]
        raw_path, _, query = target.partition("?")
        return cls(method.upper(), raw_path or "/", query, list(headers), body, **kw)


def _identity(principal: str | None, request: HttpRequest, user_agent: str | None,
              signed: tuple[str, str] | tuple[str, str, dict[str, str]] | None = None) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "cognitoIdentityPoolId": None, "accountId": None, "cognitoIdentityId": None, "caller": None,
        "sourceIp": request.source_ip, "principalOrgId": None, "accessKey": None,
        "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None, "userArn": None,
        "userAgent": user_agent, "user": None,
    }
    if signed:  # AUTH=sigv4: a verified signature's (principal ARN, access key), as IAM authorization gives them
        arn, access_key, *more = signed
        identity.update(accountId=arn.split(":")[4] or None, caller=arn.rsplit("/", 1)[-1], user=arn.rsplit("/", 1)[-1],
                        accessKey=access_key, userArn=arn)
        if more:  # AUTH=cognito: the Cognito identity the temporary credentials were issued to
            identity.update(more[0])
    elif principal:
        identity.update(
            accountId=PRINCIPAL_ACCOUNT,
            caller=principal,
            user=principal,
            accessKey="LOCAL",
            userArn=f"arn:aws:iam::{PRINCIPAL_ACCOUNT}:user/{principal}",
        )
    return identity


def auth_mode() -> bool:
    """The local access mode: AUTH=on makes X-CS-Principal the caller's identity (the values
    lib.settings takes for enforcing access: on, 1, true, yes)."""
    return os.environ.get("AUTH", "").strip().lower() in ("1", "on", "true", "yes")


def sigv4_mode() -> bool:
    """The local SigV4-verifying modes: AUTH=sigv4 (local.signatures) makes a verified signature the
    caller; AUTH=cognito too, with a local stand-in for the viewer's Cognito sign-in (local.cognito)."""
    return os.environ.get("AUTH", "").strip().lower() in ("sigv4", "cognito")


def build_event(request: HttpRequest, route: Route, path_parameters: dict[str, str], *, stage: str = "local",
                stage_in_path: bool = False, auth: bool | None = None,
                signed: tuple[str, str] | tuple[str, str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The REST API Lambda proxy event for `request` routed to `route` (see the module doc); `signed`
    is the (principal ARN, access key[, Cognito identity fields]) of a verified SigV4 signature
    (AUTH=sigv4, AUTH=cognito)."""
    auth = auth_mode() if auth is None else auth
    try:
        body, encoded = (request.body.decode("utf-8"), False) if request.body else (None, False)
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(request.body).decode("ascii"), True
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    principal = None
    for key, value in request.headers:
        if key.lower() == PRINCIPAL_HEADER.lower():
            principal = value.strip() or None
            continue
        headers[key] = value
        multi_headers.setdefault(key, []).append(value)
    # The gateway's own forwarding headers replace whatever the client sent under those names.
    client_for = [v for k, values in multi_headers.items() if k.lower() == "x-forwarded-for" for v in values]
    for key in [k for k in headers if k.lower() in ("x-forwarded-proto", "x-forwarded-port", "x-forwarded-for")]:
        del headers[key], multi_headers[key]
    forwarded = {"X-Forwarded-For": ", ".join([*client_for, request.source_ip]),
                 "X-Forwarded-Port": str(request.port), "X-Forwarded-Proto": request.scheme}
    headers.update(forwarded)
    multi_headers.update({k: [v] for k, v in forwarded.items()})
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.query_string, keep_blank_values=True):
        query[key] = value
        multi_query.setdefault(key, []).append(value)
    user_agent = next((v for k, v in headers.items() if k.lower() == "user-agent"), None)
    now = time.time()
    return {
        "resource": route.api.path,
        "path": request.raw_path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": "local",
            "resourceId": "local",
            "resourcePath": route.api.path,
            "httpMethod": request.method,
            "path": (f"/{stage}" if stage_in_path else "") + request.raw_path,
            "stage": stage,
            "domainName": next((v for k, v in headers.items() if k.lower() == "host"), "localhost"),
            "protocol": request.protocol,
            "requestId": str(uuid.uuid4()),
            "extendedRequestId": str(uuid.uuid4()),
            "requestTime": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now * 1000),
            "identity": _identity(principal if auth else None, request, user_agent, signed),
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


# ---------------------------------------------------------------- results


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class MalformedResult(Exception):
    """The function's result is not a proxy integration result: API Gateway answers 502."""


def to_response(result: Any) -> HttpResponse:
    """API Gateway's translation of a proxy integration result into HTTP: `headers`, then
    `multiValueHeaders` (which win for the names they carry); a base64 body when `isBase64Encoded`."""
    if not isinstance(result, dict):
        raise MalformedResult(f"result is a {type(result).__name__}, not an object")
    try:
        status = int(result.get("statusCode", 200))
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise MalformedResult(str(error)) from None
    merged: dict[str, list[str]] = {}
    for key, value in (result.get("headers") or {}).items():
        merged[key] = [_header_value(value)]
    for key, values in (result.get("multiValueHeaders") or {}).items():
        merged[key] = [_header_value(v) for v in (values if isinstance(values, list) else [values])]
    return HttpResponse(status, [(k, v) for k, values in merged.items() for v in values], data)


def _header_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def gateway_error(status: int, request_id: str | None = None) -> HttpResponse:
    """A gateway 5xx in the shape template.yaml's DEFAULT_5XX gives it."""
    body = ('{"message": "internal error, request id %s", "exception": "InternalException"}'
            % (request_id or uuid.uuid4()))
    return HttpResponse(status, [("Content-Type", "application/json")], body.encode())


def not_found() -> HttpResponse:
    """API Gateway's MISSING_AUTHENTICATION_TOKEN response, as template.yaml reshapes it."""
    return HttpResponse(404, [("Content-Type", "application/json")],
                        b'{"message": "no such route", "exception": "NotFoundException"}')


# ---------------------------------------------------------------- context


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
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))
