"""What a function prints per request, read back as CloudWatch would: the one JSON log line
(method, route, status, latency, request id, tenant, caller; never a path, customer id or attached
data), the EMF business metrics derived from operation and status, errors by exception, the
cold-start metric; and what a SnapStart restore forgets. (The metrics' rules on their own:
tests/unit/test_metrics_and_runtime_hooks.py; X-Ray subsegments inside Lambda: tests/http/test_xray_tracing.py.)"""

from __future__ import annotations

import io
import json

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from lib.observability import logger
from tests.support import event_for, invoke

SECRET_CUSTOMER = "cust-4711-secret"
SECRET_DATA = "4111-1111-1111-1111"


class Output:
    """stdout of handler calls (log lines and EMF documents), split into JSON records. Powertools'
    Logger keeps the stream it was given at import, so its handler is pointed at `logs`; EMF
    documents are printed, and pytest's capsys collects them."""

    def __init__(self, capsys) -> None:
        self.capsys = capsys
        self.buffer = io.StringIO()
        self.printed = ""

    @property
    def text(self) -> str:
        self.printed += self.capsys.readouterr().out
        return self.buffer.getvalue() + self.printed

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]

    def requests(self) -> list[dict]:
        return [r for r in self.records() if r.get("message") == "request"]

    def metrics(self) -> list[dict]:
        return [r for r in self.records() if "_aws" in r]

    def metric_total(self, name: str, **dimensions: str) -> float:
        total = 0.0
        for document in self.metrics():
            if name in document and all(document.get(k) == v for k, v in dimensions.items()):
                value = document[name]
                total += sum(value) if isinstance(value, list) else value
        return total


@pytest.fixture
def output(table, monkeypatch, capsys):
    """Metrics on, logs at INFO, both captured."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    captured = Output(capsys)
    handler = logger.registered_handler
    previous_level, previous_stream = logger.log_level, handler.stream
    logger.setLevel("INFO")
    handler.setStream(captured.buffer)
    yield captured
    handler.setStream(previous_stream)
    logger.setLevel(previous_level)


def call(method: str, path: str, body=None, headers=None):
    event, handler = event_for(method, path, body, {"ContactCenterId": "acme", **(headers or {})})
    return invoke(event, handler), event


def test_one_log_line_per_request_with_what_identifies_it(output):
    reply, event = call("POST", "/services/start", {"customer_id": SECRET_CUSTOMER, "service_type": "billing",
                                                     "card": SECRET_DATA})
    assert reply.status == 201
    (line,) = output.requests()
    assert line["level"] == "INFO"
    assert line["method"] == "POST" and line["route"] == "/genesys/1/cs/services/start" and line["status"] == 201
    assert line["request_id"] == event["requestContext"]["requestId"] == line["correlation_id"]
    assert line["tenant"] == "acme" and line["group"] == "" and isinstance(line["latency_ms"], float)
    assert "exception" not in line


def test_customer_ids_paths_and_attached_data_are_never_logged(output):
    service_id = call("POST", "/services/start", {"customer_id": SECRET_CUSTOMER, "card": SECRET_DATA})[0].json["service_id"]
    call("GET", f"/customers/{SECRET_CUSTOMER}/services?extensions=*")
    call("POST", f"/customers/{SECRET_CUSTOMER}/services/{service_id}", {"card": SECRET_DATA})
    call("GET", f"/customers/{SECRET_CUSTOMER}/services/nope")  # an error naming the path
    assert len(output.requests()) == 4
    assert SECRET_CUSTOMER not in output.text and SECRET_DATA not in output.text
    routes = {line["route"] for line in output.requests()}
    assert "/genesys/1/cs/customers/{customer_id}/services" in routes


def test_errors_are_logged_and_counted_by_exception(output):
    reply, _ = call("GET", "/services/123")
    assert reply.status == 404
    (line,) = output.requests()
    assert line["status"] == 404 and line["exception"] == "NotFoundException"
    call("POST", "/services/start", {"service_type": "no owner"})
    assert output.metric_total("Errors", exception="NotFoundException") == 1
    assert output.metric_total("Errors", exception="ValidationException") == 1
    errors = [d for d in output.metrics() if "Errors" in d]
    assert errors[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["exception", "service"]]


def test_business_metrics_follow_what_changed(output):
    service_id = call("POST", "/services/start", {"customer_id": "c-1"})[0].json["service_id"]
    assert call("POST", f"/services/{service_id}/states/start", {"state_type": "a"})[0].status == 201
    assert call("POST", f"/services/{service_id}/states/transition",
                {"from": {"state_id": 1}, "to": {"state_type": "b"}})[0].status == 201
    assert call("POST", f"/services/{service_id}/tasks/start", {"task_type": "t"})[0].status == 201
    assert call("POST", f"/services/{service_id}/tasks/1/end", {})[0].status == 204
    assert call("POST", f"/services/{service_id}/states/2/end", {})[0].status == 204
    assert call("POST", f"/services/{service_id}/end", {})[0].status == 204
    composite = {"services": [{"service": {"customer_id": "c-2", "service_type": "x"}, "state": {"state_type": "s"},
                               "task": {"task_type": "t"}}]}
    assert call("POST", "/services_composite/start", composite)[0].status == 200
    assert call("POST", "/services_composite/start", composite)[0].status == 200  # reuses all three
    assert call("DELETE", f"/services/{service_id}")[0].status == 204
    assert call("POST", f"/services/{service_id}/end", {})[0].status == 404  # no change, no count
    totals = {name: output.metric_total(name) for name in (
        "ServicesStarted", "ServicesCompleted", "ServicesDeleted", "StatesStarted", "StatesCompleted",
        "TasksStarted", "TasksCompleted")}
    assert totals == {"ServicesStarted": 2, "ServicesCompleted": 1, "ServicesDeleted": 1, "StatesStarted": 3,
                      "StatesCompleted": 2, "TasksStarted": 2, "TasksCompleted": 1}
    namespaces = {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in output.metrics()}
    assert namespaces == {"ContextServices"}


def test_cold_start_metric_once_per_environment(output, monkeypatch):
    from aws_lambda_powertools.logging import logger as logger_module

    monkeypatch.setattr(cold_start, "is_cold_start", True)  # as in a fresh execution environment
    monkeypatch.setattr(logger_module, "is_cold_start", True)
    call("GET", "/services/123")
    call("GET", "/services/123")
    assert output.metric_total("ColdStart") == 1
    assert [line["cold_start"] for line in output.requests()] == [True, False]


def test_idempotent_replay_counts_as_a_replay_only(output):
    key = {"Idempotency-Key": "observability-1"}
    first, _ = call("POST", "/services/start", {"customer_id": "c-3"}, key)
    again, _ = call("POST", "/services/start", {"customer_id": "c-3"}, key)
    assert first.status == again.status == 201 and first.json == again.json
    assert again.headers.get("X-Idempotent-Replay") == "true"
    assert output.metric_total("ServicesStarted") == 1 and output.metric_total("IdempotentReplays") == 1
    assert output.requests()[1]["idempotent_replay"] is True


# ---------------------------------------------------------------- SnapStart hooks


def test_after_restore_forgets_cached_grants_and_reseeds(table, environment):
    import random

    from lib.api import access, entry

    environment(ACCESS_MODE="iam")
    cache = access.grants()
    cache._entries["arn:aws:iam::1:user/x"] = (None, float("inf"))
    random.seed(1)
    snapshot_draw = random.random()
    random.seed(1)
    entry.after_restore()
    assert access.grants() is not cache and random.random() != snapshot_draw
    entry.before_snapshot()  # builds the client and the grant source without touching data
