"""What a function prints per request, read back as CloudWatch would: the one JSON log line
(method, route, status, latency, request id, tenant, caller; never a path, customer id or attached
data), the EMF business metrics derived from operation and status, errors by exception, the
cold-start metric; and, inside Lambda with tracing on, one X-Ray subsegment per DynamoDB call."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from lib.api.telemetry import request_metrics
from lib.observability import logger
from local.template import ROOT
from tests.apiclient import event_for, invoke

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


def test_replay_header_decides_the_count():
    replay = {"statusCode": 201, "multiValueHeaders": {"X-Idempotent-Replay": ["true"]}, "body": "{}"}
    first = {"statusCode": 201, "headers": {}, "body": "{}"}
    assert request_metrics("POST", "/genesys/1/cs/services/start", replay) == {}
    assert request_metrics("POST", "/genesys/1/cs/services/start", first) == {"ServicesStarted": 1}


def test_purge_counts_the_services_it_removed():
    reply = {"statusCode": 200, "headers": {}, "body": json.dumps({"purged": 7})}
    assert request_metrics("POST", "/genesys/1/cs/maintenance/purge", reply) == {"ServicesPurged": 7}


# ---------------------------------------------------------------- X-Ray, as inside Lambda

TRACED_CALL = textwrap.dedent("""
    import json, sys
    from handlers import services
    from lib.observability import tracer
    assert tracer is not None, "tracing is on inside Lambda"

    class Context:
        function_name = "ServicesFunction"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ServicesFunction"
        aws_request_id = "lambda-request-1"
        def get_remaining_time_in_millis(self):
            return 29000

    event = json.load(open(sys.argv[1]))
    print("STATUS", services.lambda_handler(event, Context())["statusCode"])
""")


def test_each_dynamodb_call_is_an_xray_subsegment(table):
    from local import embedded_dynamodb, template

    server, endpoint = embedded_dynamodb.start()
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint)
    template.create_table(client, "traced")
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(5)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_TRACE")},
           "AWS_LAMBDA_FUNCTION_NAME": "ServicesFunction", "LAMBDA_TASK_ROOT": str(ROOT),
           "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
           "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}", "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
           "TABLE_NAME": "traced", "ACCESS_MODE": "off", "PAGE_TOKEN_SECRET": "x" * 32}
    try:
        done = subprocess.run([sys.executable, "-c", TRACED_CALL, str(ROOT / "events" / "get_service.json")],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "STATUS 404" in done.stdout, done.stderr
        documents = []
        with contextlib.suppress(TimeoutError):
            while True:
                header, _, body = daemon.recv(65536).decode().partition("\n")
                documents.append(json.loads(body))
    finally:
        daemon.close()
        server.shutdown()

    def walk(segment):
        yield segment
        for child in segment.get("subsegments", []):
            yield from walk(child)

    segments = [s for document in documents for s in walk(document)]
    dynamodb = [s for s in segments if s.get("name", "").lower() == "dynamodb"]
    assert dynamodb and all(s["aws"]["operation"] == "GetItem" for s in dynamodb), segments
    assert all(s["aws"]["table_name"] == "traced" for s in dynamodb)
    handler = [s for s in segments if s.get("name") == "## lambda_handler"]
    assert handler and all(s["parent_id"] == handler[0]["id"] for s in dynamodb)
    # Responses hold customer data: they are not recorded in traces.
    assert not any("lambda_handler response" in s.get("metadata", {}).get("context-services", {})
                   for s in segments)


# ---------------------------------------------------------------- SnapStart hooks


def test_snapstart_hooks_are_registered_in_the_lambda_runtime(tmp_path):
    """Lambda's Python runtime provides `snapshot_restore_py`; the entry point registers its hooks
    with it when present (a stand-in module here records them)."""
    (tmp_path / "snapshot_restore_py.py").write_text(
        "before, after = [], []\n"
        "def register_before_snapshot(f, *a, **k): before.append(f)\n"
        "def register_after_restore(f, *a, **k): after.append(f)\n")
    code = ("import snapshot_restore_py as hooks, lib.api.entry as entry\n"
            "assert hooks.before == [entry.before_snapshot] and hooks.after == [entry.after_restore]\n"
            "print('registered')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "registered" in done.stdout, done.stderr


def test_after_restore_forgets_cached_grants_and_reseeds(table, monkeypatch):
    import random

    from lib.api import access, entry

    monkeypatch.setenv("ACCESS_MODE", "iam")
    from lib import settings as settings_module

    settings_module.settings.cache_clear()
    cache = access.grants()
    cache._entries["arn:aws:iam::1:user/x"] = (None, float("inf"))  # noqa: SLF001
    random.seed(1)
    snapshot_draw = random.random()
    random.seed(1)
    entry.after_restore()
    assert access.grants() is not cache and random.random() != snapshot_draw
    entry.before_snapshot()  # builds the client and the grant source without touching data
    settings_module.settings.cache_clear()
    access.reset()
