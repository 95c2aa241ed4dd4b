"""What every API request leaves behind: its one log line and the business metrics derived from its
operation (method + route template) and its reply, so that no route has to remember to count itself.
Never a path, query, body, customer id or attached data: routes appear as templates."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from aws_lambda_powertools.logging.formatter import RESERVED_LOG_ATTRS, LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from lib.api.resolver import BASE_PATH, REPLAY_HEADER
from lib.observability import logger, metrics

# ---------------------------------------------------------------- business metrics

# (method, route under the base path, success status) -> metrics counted once per request.
_COUNTED: dict[tuple[str, str, int], tuple[str, ...]] = {
    ("POST", "/services/start", 201): ("ServicesStarted",),
    ("POST", "/services/{service_id}/end", 204): ("ServicesCompleted",),
    ("DELETE", "/services/{service_id}", 204): ("ServicesDeleted",),
    ("POST", "/services/{service_id}/states/start", 201): ("StatesStarted",),
    ("POST", "/services/{service_id}/states/transition", 201): ("StatesCompleted", "StatesStarted"),
    ("POST", "/services/{service_id}/states/{state_id}/end", 204): ("StatesCompleted",),
    ("POST", "/services/{service_id}/tasks/start", 201): ("TasksStarted",),
    ("POST", "/services/{service_id}/tasks/{task_id}/end", 204): ("TasksCompleted",),
}
# Composite start: each element says what it created.
_COMPOSITE_CREATED = (("service_created", "ServicesStarted"), ("state_created", "StatesStarted"),
                      ("task_created", "TasksStarted"))


def is_replay(result: dict[str, Any]) -> bool:
    """The reply is the replay of an earlier one (Idempotency-Key): the creating code says so with
    `X-Idempotent-Replay: true` (in `headers` or, as Powertools' REST resolver writes them,
    `multiValueHeaders`)."""
    for key, value in (result.get("headers") or {}).items():
        if key.lower() == _REPLAY and str(value).lower() == "true":
            return True
    for key, values in (result.get("multiValueHeaders") or {}).items():
        if key.lower() == _REPLAY and any(str(value).lower() == "true" for value in values or ()):
            return True
    return False


_REPLAY = REPLAY_HEADER.lower()


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def request_metrics(method: str, resource: str, result: dict[str, Any], replay: bool | None = None) -> dict[str, int]:
    """What a request changed, as metric name -> count: services / states / tasks started and
    completed, services deleted or purged. A replay changed nothing and counts nothing here (the
    creating code, lib/api/resolver.create_once, counts it as IdempotentReplays); errors are
    counted by :func:`error_name`'s metric instead. `replay`: :func:`is_replay` of the result, when
    known already."""
    status = int(result.get("statusCode") or 0)
    if is_replay(result) if replay is None else replay:
        return {}
    route = resource.removeprefix(BASE_PATH)
    counts: dict[str, int] = {}
    for name in _COUNTED.get((method.upper(), route, status), ()):
        counts[name] = counts.get(name, 0) + 1
    if method.upper() == "POST" and route == "/services_composite/start" and status == 200:
        body = _json(result.get("body")) or {}
        for element in body.get("services", []) if isinstance(body, dict) else []:
            for flag, name in _COMPOSITE_CREATED:
                if isinstance(element, dict) and element.get(flag) is True:
                    counts[name] = counts.get(name, 0) + 1
    if method.upper() == "POST" and route == "/maintenance/purge" and status == 200:
        body = _json(result.get("body"))
        if isinstance(body, dict) and isinstance(body.get("purged"), int) and body["purged"] > 0:
            counts["ServicesPurged"] = body["purged"]
    return counts


def error_name(result: dict[str, Any]) -> str | None:
    """The contract's exception name of an error reply (None for a success)."""
    if int(result.get("statusCode") or 0) < 400:
        return None
    body = _json(result.get("body"))
    name = body.get("exception") if isinstance(body, dict) else None
    return name if isinstance(name, str) and name.isidentifier() else "Unknown"


def emit_metrics(counts: dict[str, int], error: str | None) -> None:
    """Add a request's business metrics to this invocation's EMF document; an error is its own
    EMF document with the exception name as a dimension (Errors by exception)."""
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if error is not None:
        document = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
        document.add_dimension(name="exception", value=error)
        document.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
        document.flush_metrics()  # printed now (unless POWERTOOLS_METRICS_DISABLED), like the invocation's own


# ---------------------------------------------------------------- the request log line


_UNKNOWN: Any = object()


def log_request(event: dict[str, Any], result: dict[str, Any], latency_ms: float, principal: str | None,
                error: str | None = _UNKNOWN, replay: bool | None = None) -> None:
    """The one log line of an API request (INFO; WARNING for 5xx). `error`, `replay`: what
    :func:`error_name` and :func:`is_replay` say of the result, when known already."""
    context = event.get("requestContext") or {}
    tenant, group = _tenancy(event.get("headers") or {})
    status = int(result.get("statusCode") or 0)
    fields = {
        "method": event.get("httpMethod"),
        "route": event.get("resource") or context.get("resourcePath"),
        "status": status,
        "latency_ms": round(latency_ms, 1),
        "request_id": context.get("requestId"),
        # Tenancy headers are not validated yet when a request is refused early: bounded here.
        "tenant": str(tenant or "")[:80],
        "group": str(group or "")[:80],
        "principal": principal,
    }
    if error is _UNKNOWN:
        error = error_name(result)
    if error is not None:
        fields["exception"] = error
    if is_replay(result) if replay is None else replay:
        fields["idempotent_replay"] = True
    if status >= 500:
        logger.warning("request", extra=fields)
    elif not _write_info(fields):
        logger.info("request", extra=fields)


def _tenancy(headers: dict[str, Any]) -> tuple[Any, Any]:
    """The ContactCenterId and GroupId headers: for each, the last one whatever its case."""
    tenant = group = None
    for key, value in headers.items():
        lower = key.lower()
        if lower == "contactcenterid":
            tenant = value
        elif lower == "groupid":
            group = value
    return tenant, group


class _Moment:
    """What Powertools' formatTime reads of a log record: when it was made."""

    __slots__ = ("created", "msecs")

    def __init__(self, created: float):
        self.created = created
        self.msecs = float(int((created - int(created)) * 1000))


_RESERVED = frozenset(RESERVED_LOG_ATTRS)  # record attributes a format key may name ("%(levelname)s")
# What a format key may read of the request line's record, the time apart ("asctime").
_RECORD = {"levelname": "INFO", "levelno": logging.INFO, "funcName": log_request.__name__,
           "lineno": log_request.__code__.co_firstlineno, "module": __name__.rsplit(".", 1)[-1], "name": logger.name}
# A format of the record's constant attributes ("%(levelname)s", "%(funcName)s:%(lineno)d") -> its text,
# rendered once.
_RENDERED: dict[str, str] = {}


_second: list[Any] = [None, "", ""]  # (the second and settings, its text before the milliseconds, after)


def _asctime(formatter: LambdaPowertoolsFormatter, created: float) -> str:
    """`formatter.formatTime` of a record made at `created`. With Powertools' default time format
    ("...%S,%F%z": no datefmt, no RFC 3339), the text around the milliseconds is the same for a whole
    second: it is formatted once per second (strftime costs most of the call), the milliseconds put
    in as formatTime puts them ("%03d")."""
    moment = _Moment(created)
    directive, default = formatter.custom_ms_time_directive, formatter.default_time_format
    if formatter.use_rfc3339_iso8601 or formatter.datefmt or default.count(directive) != 1 or "%" in directive[1:]:
        return formatter.formatTime(moment)
    before, after = default.split(directive)
    if before.endswith("%"):
        return formatter.formatTime(moment)
    key = (int(created), formatter.converter, default, directive)
    if _second[0] != key:
        stamp = formatter.converter(created)
        _second[:] = [key, time.strftime(before, stamp), time.strftime(after, stamp)]
    return f"{_second[1]}{int(moment.msecs):03d}{_second[2]}"


_encoders: dict[int, tuple[Any, Callable[[Any], str]]] = {}  # id(serializer) -> (serializer, encode)


def _serializer(formatter: LambdaPowertoolsFormatter) -> Callable[[Any], str]:
    """The formatter's serializer. Its default, json.dumps with fixed settings, makes a JSONEncoder at
    every call: the same encoder is made once instead (the line is the same)."""
    serializer = formatter.json_serializer
    known = _encoders.get(id(serializer))
    if known is not None and known[0] is serializer:
        return known[1]
    encode: Callable[[Any], str] = formatter.serialize
    if isinstance(serializer, partial) and serializer.func is json.dumps and not serializer.args \
            and set(serializer.keywords) <= {"default", "separators", "indent", "ensure_ascii", "sort_keys"}:
        encode = json.JSONEncoder(**serializer.keywords).encode
    _encoders[id(serializer)] = (serializer, encode)
    return encode


def _write_info(fields: dict[str, Any]) -> bool:
    """Write the INFO request line as Powertools' JSON formatter writes it (the same keys, values and
    order: its standard keys, the keys appended for the invocation, the fields, the X-Ray trace id),
    straight to the logger's stream, without a LogRecord: the logging module's record, caller lookup
    and formatter cost several times the line itself (tests/api/test_request_log_line.py compares the
    two). False (nothing written) when the logger is set up in a way this does not reproduce (another
    formatter or handler, filters, a format key it does not know): the caller then logs normally."""
    if not logger.isEnabledFor(logging.INFO):
        return True  # below the level: nothing to write, as logger.info would write nothing
    handler = logger.registered_handler  # (Powertools' registered_formatter is its formatter)
    formatter = handler.formatter if handler is not None else None
    if type(formatter) is not LambdaPowertoolsFormatter or type(handler) is not logging.StreamHandler \
            or handler.filters or logger.filters or handler.level > logging.INFO:
        return False
    asctime = _asctime(formatter, time.time())
    # The formatter's keys, then the thread's (a key in both: its place from the first, its value
    # from the second, as the formatter merges them); the values that are record formats rendered.
    line: dict[str, Any] = {**formatter.log_format, **formatter.thread_safe_get_current_keys()}
    try:
        for key in line.keys() & _RESERVED:
            value = line[key]
            if value and isinstance(value, str):
                text = _RENDERED.get(value)
                if text is None:  # the time, or a format not seen yet
                    text = value % {**_RECORD, "asctime": asctime}
                    if "asctime" not in value:
                        _RENDERED[value] = text
                line[key] = text
    except (KeyError, TypeError, ValueError):
        return False  # a format key this record does not hold
    line.update(fields)
    line["message"] = "request"
    if formatter.log_format.get("xray_trace_id", "") is not None:
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        line["xray_trace_id"] = trace.split(";")[0].replace("Root=", "") if trace else None
    text = _serializer(formatter)({key: value for key, value in line.items() if value is not None})
    handler.acquire()
    try:
        handler.stream.write(text + handler.terminator)
        handler.flush()
    finally:
        handler.release()
    return True
