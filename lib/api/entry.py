"""The Lambda entry point of every function. For an API Gateway request, in this order and before
the resolver parses anything: who may call (lib.api.access: 401 / 403), then the body checks (UTF-8,
size); then the resolver; then one log line and the request's metrics (lib.observability). Other
events (SQS, EventBridge schedules) go to the function's `background` handler.

Settings are read when this module is imported: a deployed function with a missing or unsafe
security setting fails its init with an error naming the variable (lib.settings), and never serves.

SnapStart: the snapshot is taken after init and the `before_snapshot` hook, so everything static
(settings, resolver, the DynamoDB and Secrets Manager clients) is in it; after a restore, cached
grants and paging keys are dropped (the snapshot may be older than a revocation or a rotation) and
the random generator is re-seeded (ids already draw from `secrets`, but botocore's retry jitter
uses `random`). Nothing time- or randomness-dependent is captured at init.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from lib import paging_keys
from lib.api import access
from lib.api.framework_imports import imports_done
from lib.api.resolver import JSON, internal_error, proxy_error
from lib.api.telemetry import emit_metrics, error_name, is_replay, log_request, request_metrics
from lib.errors import ApiError, PayloadTooLarge, ValidationError
from lib.observability import logger, metrics, tracer
from lib.settings import settings
from lib.store import secrets

settings()  # fail closed at init (ConfigurationError), not at the first request
paging_keys.read_secrets_with(secrets.read_versions)  # the shared ground's paging keys, read by the store


def _resolve(app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The body checks made before anything parses the body, then the resolver."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded") and body:
        # API Gateway base64-encodes bodies it does not take for text; JSON is UTF-8 text (§1).
        try:
            body = base64.b64decode(body).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return proxy_error(ValidationError("body: request body is not UTF-8 JSON"))
        event = {**event, "body": body, "isBase64Encoded": False}
    size = len(body.encode("utf-8"))
    if size > settings().max_body_bytes:
        return proxy_error(PayloadTooLarge(f"request body is {size} bytes; the limit is {settings().max_body_bytes}"))
    if body and not _json_declared(event):
        # JSON in (§1): a body is parsed as JSON whatever Content-Type the client sent (curl -d
        # sends form encoding), rather than answering with an error the contract does not name.
        headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
        headers["Content-Type"] = JSON
        event = {**event, "headers": headers, "multiValueHeaders": {
            **{k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"},
            "Content-Type": [JSON]}}
    return app.resolve(event, context)


def _json_declared(event: dict[str, Any]) -> bool:
    """The request says `Content-Type: application/json` already, once and in the header's usual
    spelling, in both header maps: what _resolve would write is what it holds (no copy needed)."""
    headers, multi = event.get("headers") or {}, event.get("multiValueHeaders") or {}
    if headers.get("Content-Type") != JSON or multi.get("Content-Type") != [JSON]:
        return False
    return bool(sum(key.lower() == "content-type" for key in headers) == 1
                and sum(key.lower() == "content-type" for key in multi) == 1)


def handle_request(app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One API Gateway request: access decision first (nothing is read or written for a refused
    request but the caller's grant, usually cached), then the resolver; then its log line and metrics."""
    started = time.perf_counter()
    principal = access.caller(event)
    try:
        access.authorize(event, principal)
        result = _resolve(app, event, context)
    except ApiError as refused:  # 401 / 403 from the access check
        result = proxy_error(refused)
    except Exception:  # e.g. the grant lookup failed: the contract's 500, not a crash
        logger.exception("request failed before the resolver")
        result = proxy_error(internal_error(event))
    error, replay = error_name(result), is_replay(result)
    log_request(event, result, (time.perf_counter() - started) * 1000, principal, error, replay)
    emit_metrics(request_metrics(str(event.get("httpMethod") or ""), str(event.get("resource") or ""), result,
                                 replay), error)
    # No X-Ray annotation of the status: API Gateway's own segment of the same trace records it
    # (`http.status` in a filter expression), at no cost to the function.
    return result


def handler_for(app: APIGatewayRestResolver,
                background: Callable[[dict[str, Any], Any], Any] | None = None) -> Callable[[dict[str, Any], Any], Any]:
    """`lambda_handler` of a function: API Gateway requests through :func:`handle_request`, other
    events (SQS messages, schedules) to `background`; request id in every log line, metrics
    flushed (with the ColdStart metric), traced where tracing is on (responses are not recorded
    in traces: they hold customer data)."""

    def route(event: dict[str, Any], context: Any) -> Any:
        if isinstance(event, dict) and "httpMethod" in event:
            return handle_request(app, event, context)
        if background is None:
            raise ValueError("this function only handles API Gateway requests")
        return background(event, context)

    logged = logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)(route)
    # Powertools prints the ColdStart document even when metrics are disabled: ask for it only when on.
    counted = metrics.log_metrics(logged, capture_cold_start_metric=True)
    uncounted = metrics.log_metrics(logged)

    def lambda_handler(event: dict[str, Any], context: Any) -> Any:
        return (uncounted if is_metrics_disabled() else counted)(event, context)

    if tracer is not None:  # the trace's handler subsegment is "## lambda_handler"
        lambda_handler = tracer.capture_lambda_handler(lambda_handler, capture_response=False)
    imports_done()  # the function is built: the collector, paused by handlers/__init__.py, resumes
    return lambda_handler


# ---------------------------------------------------------------- SnapStart runtime hooks


def before_snapshot() -> None:
    """Run once before Lambda takes the snapshot: what the first request would otherwise build
    (the DynamoDB and Secrets Manager clients with their API models, the grant source) is in the
    snapshot instead. The paging keys themselves are not fetched: a restore drops them anyway."""
    from lib.store import table

    table.client()
    access.grants()
    if settings().page_token_secret_arn:
        secrets.client()


def after_restore() -> None:
    """Run in each environment restored from a snapshot: state that must differ between restored
    environments, or that may be stale, is renewed."""
    access.reset()
    paging_keys.forget_cached_keys()
    random.seed()


def _register_snapstart_hooks() -> None:
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot  # Lambda runtimes only
    except ImportError:
        return
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)


_register_snapstart_hooks()
