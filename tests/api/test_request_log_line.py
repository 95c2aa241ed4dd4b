"""The request log line is written without the logging module's record (lib.api.telemetry), and is
the line Powertools' formatter writes: the same keys in the same order, the same values."""

from __future__ import annotations

import copy
import io
import json
import logging

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from lib.api import telemetry
from lib.observability import logger
from tests.support import event_for, invoke

VARYING = ("timestamp", "location", "latency_ms", "cold_start", "function_request_id")  # differ per invocation


@pytest.fixture
def lines(table):
    """The request lines the logger writes (INFO)."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    previous_level, previous_stream = logger.log_level, handler.stream
    logger.setLevel("INFO")
    handler.setStream(buffer)

    def read() -> list[dict]:
        found = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
        buffer.seek(0)
        buffer.truncate()
        return [line for line in found if line.get("message") == "request"]

    yield read
    handler.setStream(previous_stream)
    logger.setLevel(previous_level)


def request(path: str = "/services/123", method: str = "GET", body=None) -> tuple[dict, str]:
    event, handler = event_for(method, path, body, {"ContactCenterId": "acme", "GroupId": "sales"})
    event["requestContext"]["identity"] = {"userArn": "arn:aws:iam::123456789012:role/caller"}
    invoke(copy.deepcopy(event), handler)
    return event, handler


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/services/123", None),  # 404: with an exception name
    ("POST", "/services/start", {"customer_id": "c"}),  # 201
    ("GET", "/customers/c/services", None),  # 200
])
def test_the_line_is_the_one_powertools_writes(lines, monkeypatch, method, path, body):
    logger.append_keys(invocation_key="kept")  # keys appended for the invocation appear too, in place
    try:
        event, handler = request(path, method, body)
        (fast,) = lines()
        monkeypatch.setattr(telemetry, "_write_info", lambda fields: False)  # the logging module's way
        invoke(event, handler)  # the same request again (the same ids)
        (slow,) = lines()
    finally:
        logger.remove_keys(["invocation_key"])
    assert list(fast) == list(slow)
    assert {k: v for k, v in fast.items() if k not in VARYING} == {k: v for k, v in slow.items() if k not in VARYING}
    assert fast["invocation_key"] == "kept" and fast["level"] == "INFO" and fast["tenant"] == "acme"
    assert fast["location"].startswith("log_request:") and fast["timestamp"][:4].isdigit()


def test_below_the_level_nothing_is_written(lines):
    logger.setLevel("WARNING")
    request()
    assert lines() == []


def test_another_formatter_is_used_as_configured(lines, monkeypatch):
    class Tagged(LambdaPowertoolsFormatter):
        def format(self, record):
            return json.dumps({"message": record.getMessage(), "tagged": True, "status": record.status})

    handler = logger.registered_handler
    previous = handler.formatter
    handler.setFormatter(Tagged())
    try:
        request()
        (line,) = lines()
    finally:
        handler.setFormatter(previous)
    assert line["tagged"] is True and line["status"] == 404


def test_a_filter_is_honoured(lines):
    class Drop(logging.Filter):
        def filter(self, record):
            return False

    drop = Drop()
    logger.addFilter(drop)
    try:
        request()
    finally:
        logger.removeFilter(drop)
    assert lines() == []


def test_the_time_is_the_one_powertools_formats():
    """The line's timestamp is formatted once per second (the milliseconds put in): it is what the
    formatter's formatTime gives, within a second and across seconds; another time format is left to
    formatTime itself."""
    import random

    formatter = logger.registered_formatter
    start = 1_767_225_600.0
    moments = [start + ms / 1000 for ms in range(0, 1000, 7)] + [start + random.uniform(-3e8, 3e8) for _ in range(500)]
    for created in moments:
        assert telemetry._asctime(formatter, created) == formatter.formatTime(telemetry._Moment(created))
    custom = LambdaPowertoolsFormatter(datefmt="%H:%M:%S.%F")
    assert telemetry._asctime(custom, start + 0.25) == custom.formatTime(telemetry._Moment(start + 0.25))
