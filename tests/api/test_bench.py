"""The benchmark's own machinery (bench/): the rule for the minimum, the call counting and the
recorded backend, what a response returns, the authorization slot, the copies into other tenants,
and that docs/BENCHMARKS.md is what bench/report.py renders from bench/results.json."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.client import ClientCreator
from botocore.config import Config
from botocore.exceptions import ClientError

from bench import authorization, data, profile, reasons, report, rule
from bench.calls import Call, Tracker
from bench.harness import TimedApi, next_link, returned_items
from bench.operations import judge

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- the rule


def test_rule_counts_reads_changes_pages_and_megabytes():
    read = rule.Touches(reads=(rule.CONVERSATION,))
    assert rule.minimum(read, returned=1, response_bytes=500).round_trips == 1
    assert rule.minimum(read, returned=1, response_bytes=500).items_read == 2  # the item and one look-ahead
    assert rule.minimum(read, returned=2001, response_bytes=2_500_000).round_trips == 3  # 1 MB Query pages
    assert rule.minimum(read, returned=1000, response_bytes=400_000, pages=10).round_trips == 10
    assert rule.minimum(rule.Touches(reads=(rule.OWNER_LIST,)), 100, 1000, extra_reads=100).round_trips == 101
    change = rule.Touches(changes=1)
    assert rule.minimum(change, returned=0, response_bytes=0).round_trips == 1
    assert rule.minimum(change, returned=0, response_bytes=0).items_read == 0  # an end reads nothing
    assert rule.minimum(change, returned=1, response_bytes=30).items_read == 1  # no more than it returns
    children = rule.Touches(reads=(rule.CONVERSATION,), checks=1)
    assert rule.minimum(children, returned=100, response_bytes=9000).items_read == 102  # + service + look-ahead
    both = rule.Touches(reads=(rule.OWNER_LOOKUP, rule.CONVERSATION))
    assert rule.minimum(both, returned=3, response_bytes=200).round_trips == 2


def test_every_operation_and_growth_case_has_what_it_touches():
    from bench import growth

    assert {case.name for case in growth.CASES} <= set(rule.GROWTH_TOUCHES)


def test_judge_reports_misses_with_the_recorded_reason(monkeypatch):
    monkeypatch.setitem(reasons.REASONS, "some_op", "because of X")
    met = judge("some_op", rule.Touches(changes=1), trips=1, read=0, returned=1, size=10)
    assert met["missed"] == [] and "above_minimum_because" not in met
    missed = judge("some_op", rule.Touches(changes=1), trips=3, read=2, returned=1, size=10)
    assert missed["missed"] == ["round_trips", "items_read"]
    assert missed["above_minimum_because"] == "because of X"
    unexplained = judge("other_op", rule.Touches(reads=(rule.CONVERSATION,)), trips=2, read=1, returned=1, size=10)
    assert unexplained["above_minimum_because"] == reasons.NONE
    assert judge("x", None, 5, 5, 1, 10)["minimum_round_trips"] is None


# ---------------------------------------------------------------- counting and the recorded backend


def _client(**config):
    return boto3.client("dynamodb", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                        aws_access_key_id="x", aws_secret_access_key="x", config=Config(**config))


def _response(status: int, body: dict) -> Call:
    return Call("dynamodb", "GetItem", {}, status=status, headers={"Content-Type": "application/x-amz-json-1.0"},
                body=json.dumps(body).encode())


def test_every_client_created_after_install_is_counted(monkeypatch):
    from concurrent.futures import Future, ThreadPoolExecutor

    monkeypatch.setattr(ClientCreator, "create_client", ClientCreator.create_client)  # undone after the test
    monkeypatch.setattr(ThreadPoolExecutor, "submit", ThreadPoolExecutor.submit)
    monkeypatch.setattr(Future, "result", Future.result)
    tracker = Tracker()
    tracker.install()
    first, second = _client(), boto3.session.Session().client("dynamodb", region_name="us-east-1",
                                                              endpoint_url="http://127.0.0.1:9",
                                                              aws_access_key_id="x", aws_secret_access_key="x")
    assert tracker.clients == 2
    found = _response(200, {"Item": {"PK": {"S": "a"}}})
    tracker.start()
    with tracker.replaying([found, found]):
        first.get_item(TableName="t", Key={"PK": {"S": "a"}})
        second.get_item(TableName="t", Key={"PK": {"S": "a"}})
    calls = tracker.stop()
    assert [(call.operation, call.attempts, call.items_read) for call in calls] == [("GetItem", 1, 1)] * 2
    # Calls submitted to a pool together are parallel, whatever order the interpreter runs them in.
    from bench.calls import sequential

    tracker.start()
    with tracker.replaying([found, found]), ThreadPoolExecutor(1) as pool:  # one worker: run one by one
        futures = [pool.submit(first.get_item, TableName="t", Key={"PK": {"S": "a"}}) for _ in range(2)]
        [future.result() for future in futures]
    assert sequential(tracker.stop()) == 1


def test_retries_are_counted_as_attempts_of_one_call():
    tracker = Tracker()
    client = _client(retries={"mode": "standard", "max_attempts": 3})
    tracker.attach(client)
    throttled = _response(400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                                "message": "slow down"})
    tracker.start()
    with tracker.replaying([throttled, _response(200, {})]):
        client.get_item(TableName="t", Key={"PK": {"S": "a"}})
    [call] = tracker.stop()
    assert call.attempts == 2 and call.status == 200 and call.items_read == 0


def test_replay_answers_in_order_and_refuses_a_different_request():
    tracker = Tracker()
    client = _client()
    tracker.attach(client)
    refused = _response(400, {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                              "message": "no"})
    refused.operation = "PutItem"
    with tracker.replaying([refused]):
        with pytest.raises(ClientError, match="ConditionalCheckFailed"):
            client.put_item(TableName="t", Item={"PK": {"S": "a"}})
    with pytest.raises(RuntimeError, match=r"recording has \['PutItem'\]"):
        with tracker.replaying([refused]):
            client.get_item(TableName="t", Key={"PK": {"S": "a"}})
    with pytest.raises(RuntimeError, match="left unused"):
        with tracker.replaying([refused, refused]):
            with pytest.raises(ClientError):
                client.put_item(TableName="t", Item={"PK": {"S": "a"}})


def test_parallel_calls_are_answered_by_the_matching_recording():
    """Two reads made at once on two threads each get the response recorded for their own request."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.calls import sequential

    tracker = Tracker()
    client = _client()
    tracker.attach(client)
    first = Call("dynamodb", "GetItem", {"TableName": "t", "Key": {"PK": {"S": "a"}}}, status=200,
                 headers={"Content-Type": "application/x-amz-json-1.0"},
                 body=json.dumps({"Item": {"PK": {"S": "a"}}}).encode())
    second = Call("dynamodb", "GetItem", {"TableName": "t", "Key": {"PK": {"S": "b"}}}, status=200,
                  headers={"Content-Type": "application/x-amz-json-1.0"},
                  body=json.dumps({"Item": {"PK": {"S": "b"}}}).encode())
    tracker.start()
    with tracker.replaying([first, second]), ThreadPoolExecutor(2) as pool:
        found = list(pool.map(lambda key: client.get_item(TableName="t", Key={"PK": {"S": key}}), ["b", "a"]))
    calls = tracker.stop()
    assert [item["Item"]["PK"]["S"] for item in found] == ["b", "a"]
    assert len(calls) == 2 and all(call.status == 200 and call.ended >= call.started for call in calls)
    overlapping = [Call("x", "GetItem", {}, started=0, ended=2), Call("x", "Query", {}, started=1, ended=3),
                   Call("x", "PutItem", {}, started=3, ended=4)]
    assert sequential(overlapping) == 2


def test_items_read_and_written_per_operation():
    from bench.calls import items_read, items_written

    assert items_read("Query", {"ScannedCount": 7, "Count": 2}) == 7
    assert items_read("GetItem", {}) == 0
    assert items_read("BatchGetItem", {"Responses": {"t": [{}, {}]}}) == 2
    assert items_written("BatchWriteItem", {"RequestItems": {"t": [{}] * 25}}) == 25
    assert items_written("TransactWriteItems", {"TransactItems": [{"Put": {}}, {"ConditionCheck": {}}]}) == 1


# ---------------------------------------------------------------- responses, profile categories


def test_returned_items_counts_embedded_children_and_composite_ids():
    service = {"service_id": "1", "active_states": [{"state_id": 1}], "completed_tasks": [{"task_id": 1},
                                                                                          {"task_id": 2}]}
    assert returned_items(service) == 4
    assert returned_items([service, {"service_id": "2"}]) == 5
    assert returned_items({"services": [{"service_id": "1", "service_created": True, "state_id": 1,
                                         "state_created": True}]}) == 2
    assert returned_items(None) == 0


def test_next_link_is_relative_to_the_base_path():
    headers = {"Link": '</Prod/genesys/1/cs/services/1/states?limit=5&page_token=abc>; rel="next"'}
    assert next_link(headers, "/genesys/1/cs") == "/services/1/states?limit=5&page_token=abc"
    assert next_link({}, "/genesys/1/cs") is None


def test_profile_categories_by_module():
    assert profile.category(str(ROOT / "lib" / "store" / "__init__.py")) == profile.PROJECT
    site = "/x/site-packages/"
    assert profile.category(site + "aws_lambda_powertools/event_handler/api_gateway.py") == profile.ROUTING
    assert profile.category(site + "pydantic/main.py") == profile.ROUTING
    assert profile.category(site + "aws_lambda_powertools/logging/logger.py") == profile.LOGGING
    assert profile.category(site + "aws_xray_sdk/core/recorder.py") == profile.TRACING
    assert profile.category(site + "boto3/dynamodb/types.py") == profile.ENCODING
    assert profile.category(site + "botocore/client.py") == profile.BOTOCORE
    assert profile.category(site + "jmespath/parser.py") is None  # charged to its caller
    assert profile.category(json.__file__) is None


# ---------------------------------------------------------------- data and the authorization slot


def test_clone_tenant_copies_items_under_other_tenants(table):
    api = TimedApi(headers={"ContactCenterId": "src-tenant"})
    data.expect(api.post("/services/start", {"customer_id": "c"}), 201)
    name = "context-services-test"
    source = data.tenant_items(table, name, "src-tenant")
    assert source
    written = data.clone_tenant(table, source, "src-tenant", 3, name, name="copy-{:d}")
    assert written == 3 * len(source)
    keys = {item["PK"]["S"] for item in table.scan(TableName=name)["Items"]}
    assert len(keys) == 4 * len({item["PK"]["S"] for item in source})
    copied = TimedApi(headers={"ContactCenterId": "copy-1"})
    assert copied.get("/customers/c/services").status == 200 and len(copied.get("/customers/c/services").json) == 1
    with pytest.raises(RuntimeError, match="no item"):
        data.clone_tenant(table, [], "src-tenant", 1, name)


def test_authorization_case_counts_the_grant_lookup_of_a_new_caller(table, monkeypatch):
    """With ACCESS_MODE=iam (as deployed), a newly granted caller's first request looks its grant up
    once (kept apart from the operation's calls), the next one finds it cached."""
    from bench import harness
    from bench.calls import TRACKER
    from lib import settings
    from lib.api import access

    name = "context-services-test"
    open_api = TimedApi()
    open_api.context_fragment = None
    service_id = data.expect(open_api.post("/services/start", {"customer_id": "c"}), 201)["service_id"]
    assert authorization.measure(open_api, f"/services/{service_id}", 1)["status"] == authorization.NOT_AVAILABLE
    monkeypatch.setenv("ACCESS_MODE", "iam")  # grants from the table, as deployed
    monkeypatch.delenv("AUTH", raising=False)
    monkeypatch.delenv("GRANTS_FILE", raising=False)
    monkeypatch.setattr(harness, "TABLE", name)
    settings.settings.cache_clear()
    access.reset()
    TRACKER.attach(table)  # the handlers' client (the benchmark hooks every client at creation instead)
    monkeypatch.setattr(TRACKER, "side", authorization.is_grant_lookup)
    try:
        measured = authorization.measure(TimedApi(), f"/services/{service_id}", 1)
    finally:
        settings.settings.cache_clear()
        access.reset()
    assert measured["status"] == "measured", measured
    assert measured["extra_round_trips_cold"] == 1 and measured["extra_round_trips_warm"] == 0
    assert measured["round_trips_of_the_request"] == 1  # GetItem of the service; the grant lookup apart


# ---------------------------------------------------------------- the page


def test_benchmarks_page_is_rendered_from_the_committed_results():
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    page = (ROOT / "docs" / "BENCHMARKS.md").read_text()
    assert page == report.render(results), "docs/BENCHMARKS.md is stale: run `python -m bench.report`"
    for miss in results.get("misses", []):
        assert f"`{miss['where']}`" in page
