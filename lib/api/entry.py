"""The Lambda entry point of every function: the body checks made before anything parses it, log
correlation, metrics and tracing around the resolver."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths

from lib.api.resolver import JSON, error_response
from lib.errors import ApiError, PayloadTooLarge, ValidationError
from lib.observability import logger, metrics, tracer
from lib.settings import settings


def _reply(error: ApiError) -> dict[str, Any]:
    """A proxy-integration reply for an error found before the resolver runs."""
    reply = error_response(error.status, error.exception, error.message)
    return {"statusCode": reply.status_code, "headers": {"Content-Type": JSON}, "body": reply.body,
            "isBase64Encoded": False}


def handler_for(app: APIGatewayRestResolver) -> Callable[[dict, Any], dict]:
    """`lambda_handler` of a function: correlation id in logs, metrics flushed, body size checked
    before anything parses it, tracing where enabled."""

    def handle(event: dict, context: Any) -> dict:
        body = event.get("body") or ""
        if event.get("isBase64Encoded") and body:
            # API Gateway base64-encodes bodies it does not take for text; JSON is UTF-8 text (§1).
            try:
                body = base64.b64decode(body).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return _reply(ValidationError("body: request body is not UTF-8 JSON"))
            event = {**event, "body": body, "isBase64Encoded": False}
        size = len(body.encode("utf-8"))
        if size > settings().max_body_bytes:
            return _reply(PayloadTooLarge(f"request body is {size} bytes; the limit is {settings().max_body_bytes}"))
        if body:
            # JSON in (§1): a body is parsed as JSON whatever Content-Type the client sent (curl -d
            # sends form encoding), rather than answering with an error the contract does not name.
            headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
            headers["Content-Type"] = JSON
            event = {**event, "headers": headers, "multiValueHeaders": {
                **{k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"},
                "Content-Type": [JSON]}}
        return app.resolve(event, context)

    handle = logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)(handle)
    handle = metrics.log_metrics(handle)
    if tracer is not None:
        handle = tracer.capture_lambda_handler(handle)
    return handle
