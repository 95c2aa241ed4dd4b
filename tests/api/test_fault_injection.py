"""Fault injection at every DynamoDB call of every multi-call operation (issue 13 points 7-9; contract
§1 Retries, §2 one commit point, §4 composite).

How: an operation is run once on a fresh table to record its DynamoDB calls (a wrapper around
botocore's `BaseClient._make_api_call`, so whatever client the project builds is seen, with no
knowledge of the project's internals). Then, for each call k and each fault, the operation is run
again on a fresh table holding the same set-up, with the fault injected at call k by a wrapper around
botocore's `Endpoint._do_get_response`, which every HTTP attempt goes through (botocore's own
retries see the fault too):

* throttle  - ProvisionedThroughputExceededException (HTTP 400), which botocore retries;
* conflict  - TransactionCanceledException with a TransactionConflict reason (transactions only);
* internal  - InternalServerError (HTTP 500), which botocore retries;
* timeout   - a read timeout before the request is sent (nothing applied);
* lost      - the request is applied, then the client sees a read timeout (a lost reply).

Each fault hits every attempt of call k ("every"), or for the retryable ones only the first ("first",
which botocore's retry should absorb). Checked each time:

* the answer is 2xx, or 409 / 5xx in the contract's error shape;
* a 2xx leaves what readers see equal to the fault-free run (ids normalised);
* an error leaves the stored items exactly as before (§2: before the commit point nothing changes;
  after it the answer is success); composite start may keep what it created (§4), and then
* a retry of the same request (with the same Idempotency-Key where the operation takes one) ends
  where the fault-free run ended: one element, the same id as the one stored, never a second.

Stored items are compared raw after replacing service ids by placeholders. Idempotency records
(items whose key names IDEMPOTENCY) are left out of the comparison: they are bookkeeping whose expiry
comes from the wall clock, and the contract speaks of them only through the retry behaviour, which is
checked. The project's clock is frozen, so every timestamp and TTL attribute is identical across runs
and nothing else is ignored.

The Lambda context of these calls has 10 ms left, so an idempotency record left "in progress" by a
faulted request is past its in-progress window a moment later, as after a Lambda timeout.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import threading
import time
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from botocore.client import BaseClient
from botocore.exceptions import ReadTimeoutError

from tests.support import Reply, event_for

TABLE = os.environ.get("TABLE_NAME", "context-services-test")
ERROR_KEYS = {"message", "exception"}


# ---------------------------------------------------------------- the injector


@dataclass
class Fault:
    k: int
    kind: str
    mode: str  # "every" attempt of call k, or only the "first"


@dataclass
class Injector:
    enabled: bool = False
    count: int = 0
    calls: list[str] = field(default_factory=list)
    fault: Fault | None = None
    injected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)

    def start(self, fault: Fault | None = None) -> None:
        self.enabled, self.count, self.calls, self.fault, self.injected = True, 0, [], fault, 0

    def stop(self) -> None:
        self.enabled, self.fault = False, None


class _Raw:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_: Any):
        yield self.data


def _error_reply(request, kind: str) -> tuple[tuple[AWSResponse, dict], None]:
    if kind == "throttle":
        status, code, extra = 400, "ProvisionedThroughputExceededException", {}
    elif kind == "internal":
        status, code, extra = 500, "InternalServerError", {}
    else:  # conflict: one reason per action of the transaction, the first one conflicting
        actions = json.loads(request.body or b"{}").get("TransactItems") or [{}]
        reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
        reasons += [{"Code": "None"} for _ in actions[1:]]
        status, code, extra = 400, "TransactionCanceledException", {"CancellationReasons": reasons}
    message = f"injected {kind}"
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}).encode()
    http = AWSResponse(request.url, status, {"x-amzn-RequestId": "injected", "Content-Type":
                                             "application/x-amz-json-1.0"}, _Raw(body))
    parsed = {"Error": {"Code": code, "Message": message}, **extra,
              "ResponseMetadata": {"RequestId": "injected", "HTTPStatusCode": status, "HTTPHeaders": {},
                                   "RetryAttempts": 0}}
    return (http, parsed), None


@pytest.fixture
def injector(monkeypatch) -> Injector:
    injector = Injector()
    make_api_call = BaseClient._make_api_call
    do_get_response = botocore.endpoint.Endpoint._do_get_response

    def counted(client, operation_name, api_params):
        if not injector.enabled or client.meta.service_model.service_name != "dynamodb":
            return make_api_call(client, operation_name, api_params)
        with injector.lock:
            k = injector.count
            injector.count += 1
            injector.calls.append(operation_name)
        outer = getattr(injector.local, "call", None)
        injector.local.call = [k, 0]
        try:
            return make_api_call(client, operation_name, api_params)
        finally:
            injector.local.call = outer

    def attempt(endpoint, request, operation_model, context):
        current = getattr(injector.local, "call", None)
        fault = injector.fault
        if not injector.enabled or fault is None or current is None or current[0] != fault.k:
            return do_get_response(endpoint, request, operation_model, context)
        current[1] += 1
        if fault.mode == "first" and current[1] > 1:
            return do_get_response(endpoint, request, operation_model, context)
        injector.injected += 1
        if fault.kind == "timeout":
            return None, ReadTimeoutError(endpoint_url=request.url)
        if fault.kind == "lost":
            do_get_response(endpoint, request, operation_model, context)  # applied; the reply is lost
            return None, ReadTimeoutError(endpoint_url=request.url)
        return _error_reply(request, fault.kind)

    monkeypatch.setattr(BaseClient, "_make_api_call", counted)
    monkeypatch.setattr(botocore.endpoint.Endpoint, "_do_get_response", attempt)
    # botocore's back-off between retries is real sleeping: skip it (the retries themselves still run).
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=lambda _s: None, time=time.time,
                                                                         monotonic=time.monotonic))
    yield injector
    injector.stop()


# ---------------------------------------------------------------- calling the handlers


class ShortContext:
    """A Lambda context with 10 ms left (see the module doc)."""

    def __init__(self, function_name: str):
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 10


def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    event, handler = event_for(method, path, body, headers)
    module_name, attribute = handler.rsplit(".", 1)
    result = getattr(importlib.import_module(module_name), attribute)(event, ShortContext(module_name))
    merged = dict(result.get("headers") or {})
    for key, values in (result.get("multiValueHeaders") or {}).items():
        merged[key] = ", ".join(str(v) for v in values)
    return Reply(result["statusCode"], merged, result.get("body") or "")


# ---------------------------------------------------------------- stored and visible state


def scan(client) -> list[dict[str, Any]]:
    found, request = [], {"TableName": TABLE, "ConsistentRead": True}
    while True:
        page = client.scan(**request)
        found += page["Items"]
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def is_idempotency_record(item: dict[str, Any]) -> bool:
    return any("IDEMPOTENCY" in str(item.get(key, {}).get("S", "")).upper() for key in ("PK", "SK"))


def normalise(value: Any, names: dict[str, str]) -> Any:
    """`value` with every service id replaced by its placeholder (ids also appear zero-padded in keys)."""
    if isinstance(value, dict):
        return {normalise(k, names): normalise(v, names) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v, names) for v in value]
    if isinstance(value, str) and names:
        return _DIGITS.sub(lambda m: names.get(m.group(0)) or names.get(m.group(0).lstrip("0")) or m.group(0), value)
    return value


_DIGITS = re.compile(r"\d{6,}")


def stored(client, names: dict[str, str]) -> list[Any]:
    items = [normalise(item, names) for item in scan(client) if not is_idempotency_record(item)]
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


EVERYTHING = ("active_states=true&completed_states=true&active_tasks=true&completed_tasks=true"
              "&extensions=*,State.*,Task.*")


def visible(sids: list[str], owners: tuple[str, ...]) -> tuple[Any, dict[str, str]]:
    """What readers see: every owner's list with states, tasks and attached data embedded, and each
    set-up service read alone; and the placeholder of each service id (set-up ids first, then ids in
    list order)."""
    seen: dict[str, Any] = {}
    order = list(sids)
    for path in [f"{owner}?{EVERYTHING}" for owner in owners] + [f"/services/{sid}?{EVERYTHING}" for sid in sids]:
        reply = call("GET", path)
        seen[path] = [reply.status, reply.json]
        for service in reply.json if reply.status == 200 and isinstance(reply.json, list) else []:
            if service["service_id"] not in order:
                order.append(service["service_id"])
    names = {sid: f"<S{i}>" for i, sid in enumerate(order)}
    return normalise(seen, names), names


# ---------------------------------------------------------------- operations


@dataclass
class Operation:
    setup: Callable[[], list[str]]  # returns the set-up's service ids
    request: Callable[[list[str]], tuple[str, str, Any, dict[str, str]]]
    creates: bool = False  # takes an Idempotency-Key (§1 Retries)
    partial_allowed: bool = False  # composite start (§4): a fault part-way may leave what was created
    owners: tuple[str, ...] = ("/customers/c/services",)  # the lists that show what it changes


def _service(**body: Any) -> str:
    reply = call("POST", "/services/start", {"customer_id": "c", **body})
    assert reply.status == 201, reply.text
    return reply.json["service_id"]


def _with_children() -> list[str]:
    sid = _service(service_type="care", a=1)
    assert call("POST", f"/services/{sid}/states/start", {"state_type": "s", "b": 2}).status == 201
    assert call("POST", f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": 1}).status == 201
    assert call("POST", f"/services/{sid}/tasks/start", {"task_type": "loose"}).status == 201
    return [sid]


def _anonymous() -> list[str]:
    reply = call("POST", "/services/start", {"contact_key": "k", "service_type": "ivr"})
    assert reply.status == 201
    return [reply.json["service_id"]]


def _existing_for_composite() -> list[str]:
    sid = _service(service_type="sales")
    assert call("POST", f"/services/{sid}/states/start", {"state_type": "greet"}).status == 201
    return [sid]


KEY = {"Idempotency-Key": "fault-retry-1"}
COMPOSITE = {"services": [{"service": {"customer_id": "c", "service_type": "sales"}, "state": {"state_type": "greet"},
                           "task": {"task_type": "lookup"}, "associate_state_task": True}]}


OPERATIONS: dict[str, Operation] = {
    "service-start": Operation(lambda: [], lambda s: ("POST", "/services/start",
                                                      {"customer_id": "c", "service_type": "x", "a": 1}, KEY),
                               creates=True),
    "service-end-ttl": Operation(_with_children, lambda s: ("POST", f"/services/{s[0]}/end",
                                                            {"ttl": 3600, "disposition": 1, "z": 3}, {})),
    "put-ttl": Operation(_with_children, lambda s: ("PUT", f"/services/{s[0]}", {"ttl": 7200}, {})),
    "delete": Operation(_with_children, lambda s: ("DELETE", f"/services/{s[0]}", None, {})),
    "state-start": Operation(_with_children, lambda s: ("POST", f"/services/{s[0]}/states/start",
                                                        {"state_type": "x", "previous_state_id": 1, "c": 1}, KEY),
                             creates=True),
    "task-start": Operation(_with_children, lambda s: ("POST", f"/services/{s[0]}/tasks/start",
                                                       {"task_type": "y", "state_id": 1}, KEY), creates=True),
    "transition": Operation(_with_children, lambda s: ("POST", f"/services/{s[0]}/states/transition",
                                                       {"from": {"state_id": 1, "disposition": "d"},
                                                        "to": {"state_type": "next"}}, KEY), creates=True),
    "state-end": Operation(_with_children, lambda s: ("POST", f"/services/{s[0]}/states/1/end",
                                                      {"disposition": "ok"}, {})),
    "task-end": Operation(_with_children, lambda s: ("POST", f"/services/{s[0]}/tasks/2/end", {"disposition": 1},
                                                     {})),
    "composite-new": Operation(lambda: [], lambda s: ("POST", "/services_composite/start", COMPOSITE, KEY),
                               creates=True, partial_allowed=True),
    "composite-reuse": Operation(_existing_for_composite, lambda s: ("POST", "/services_composite/start", COMPOSITE,
                                                                     KEY), creates=True, partial_allowed=True),
    "associate": Operation(_anonymous, lambda s: ("POST", f"/customers/c2/services/{s[0]}", {"note": 1}, {}),
                           owners=("/customers/c2/services", "/services/anonymous/k")),
}


# "error": a DynamoDB error answer on every attempt: ProvisionedThroughputExceeded at even call
# indexes, InternalServerError at odd ones (both retried by botocore, then raised as ClientError).
# The first-attempt-only variant is a lost first reply: botocore's retry then meets the request's own
# first write, already applied. (A retryable error on the first attempt only is absorbed by botocore's
# retry and never reaches the code under test.)
FAULTS = [("error", "every"), ("conflict", "every"), ("timeout", "every"), ("lost", "every"), ("lost", "first")]

READS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems")


def _applies(kind: str, operation_name: str) -> bool:
    """Conflicts are for transactions. A read applies nothing, so a timeout or a lost reply is, to the
    code under test, the same failed call as an error answer: reads get the error faults only."""
    if kind == "conflict":
        return operation_name.startswith("Transact")
    return kind == "error" or operation_name not in READS


def _reset(client, snapshot: list[dict[str, Any]]) -> None:
    """The table as the set-up left it: every item deleted, the set-up's items put back."""
    key_names = [key["AttributeName"] for key in client.describe_table(TableName=TABLE)["Table"]["KeySchema"]]
    requests = [{"DeleteRequest": {"Key": {name: item[name] for name in key_names}}} for item in scan(client)]
    requests += [{"PutRequest": {"Item": item}} for item in snapshot]
    deletes = [r for r in requests if "DeleteRequest" in r]
    puts = [r for r in requests if "PutRequest" in r]
    for batch in (deletes, puts):
        for start in range(0, len(batch), 25):
            client.batch_write_item(RequestItems={TABLE: batch[start:start + 25]})


def _answer_problem(reply: Reply) -> str | None:
    if 200 <= reply.status < 300:
        return None
    if reply.status != 409 and reply.status < 500:
        return f"answered {reply.status} (a fault is a 5xx or a 409): {reply.text[:160]}"
    try:
        body = json.loads(reply.text)
    except ValueError:
        return f"{reply.status} body is not JSON: {reply.text[:160]}"
    if not isinstance(body, dict) or set(body) != ERROR_KEYS:
        return f"{reply.status} body is not the contract's error: {reply.text[:160]}"
    if reply.status == 500 and body["exception"] != "InternalException":
        return f"500 with exception {body['exception']}"
    return None


def _difference(seen: dict[str, Any], expected: dict[str, Any]) -> str:
    for key in sorted(set(seen) | set(expected)):
        if seen.get(key) != expected.get(key):
            return f" (first difference: {key}: {json.dumps(seen.get(key))[:300]} instead of " \
                   f"{json.dumps(expected.get(key))[:300]})"
    return ""


def _without_created(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_created(v) for k, v in value.items() if not k.endswith("_created")}
    if isinstance(value, list):
        return [_without_created(v) for v in value]
    return value


def _retry(method, path, body, headers, sids, owners) -> tuple[Reply, Any, dict[str, str]]:
    reply = call(method, path, body, headers)
    if reply.status == 409 and "progress" in reply.text:
        time.sleep(0.03)  # past the in-progress window of a request that had 10 ms left
        reply = call(method, path, body, headers)
    return (reply, *visible(sids, owners))


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_fault_at_any_call_leaves_the_operation_whole(table, injector, frozen, name):
    operation = OPERATIONS[name]
    owners = operation.owners
    sids = operation.setup()
    snapshot = scan(table)
    method, path, body, headers = operation.request(sids)

    # The fault-free run: its answer, what it stored and what readers see, and its DynamoDB calls.
    injector.start()
    reference = call(method, path, body, headers)
    injector.stop()
    calls = list(injector.calls)
    assert 200 <= reference.status < 300, reference.text
    ref_visible, ref_names = visible(sids, owners)
    ref_answer = normalise(reference.json, ref_names)
    problems: list[str] = []
    _reset(table, snapshot)
    setup_names = {sid: f"<S{i}>" for i, sid in enumerate(sids)}
    before = stored(table, setup_names)
    cases = [(k, operation_name, kind, mode) for kind, mode in FAULTS for k, operation_name in enumerate(calls)
             if _applies(kind, operation_name)]
    for k, operation_name, kind, mode in cases:
        _reset(table, snapshot)
        injected = kind if kind != "error" else ("throttle", "internal")[k % 2]
        injector.start(Fault(k, injected, mode))
        try:
            reply = call(method, path, body, headers)
        except Exception as error:  # an exception out of lambda_handler is API Gateway's 502
            reply = Reply(502, {}, f"lambda_handler raised {type(error).__name__}: {error}")
        finally:
            injector.stop()
        where = f"fault {injected}/{mode} at call {k} ({operation_name}): {reply.status}"
        problem = _answer_problem(reply)
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        if not 200 <= reply.status < 300 and not operation.partial_allowed:
            # An error: nothing changed (the reads are a function of the stored items and the clock).
            if stored(table, setup_names) != before:
                problems.append(f"{where}: answered an error but changed what is stored")
        if 200 <= reply.status < 300:
            now_visible, names = visible(sids, owners)
            if reply.status != reference.status or normalise(reply.json, names) != ref_answer:
                problems.append(f"{where}: answer {reply.text[:120]} differs from the fault-free {reference.text[:120]}")
            if now_visible != ref_visible:
                problems.append(f"{where}: answered success but readers see other than the fault-free run"
                                + _difference(now_visible, ref_visible))
            if operation.creates:
                again, again_visible, _ = _retry(method, path, body, headers, sids, owners)
                if (again.status, again.json) != (reply.status, reply.json):
                    problems.append(f"{where}: the retry with the same Idempotency-Key answered {again.status} "
                                    f"{again.text[:120]}, not the first answer {reply.text[:120]}")
                if again_visible != ref_visible:
                    problems.append(f"{where}: the retry with the same Idempotency-Key changed what readers see")
            continue
        # After an error (composite start may have kept what it created, §4), the same request again ends
        # where the fault-free run ended, with no second element.
        again, again_visible, again_names = _retry(method, path, body, headers, sids, owners)
        expected, answered = ref_answer, normalise(again.json, again_names)
        if operation.partial_allowed:  # the retry finds what the faulted attempt created: `*_created` may differ
            expected, answered = _without_created(expected), _without_created(answered)
        if again.status != reference.status or answered != expected:
            problems.append(f"{where}: the retry answered {again.status} {normalise(again.json, again_names)}, "
                            f"the fault-free run {reference.status} {ref_answer} (ids as placeholders)")
        if again_visible != ref_visible:
            problems.append(f"{where}: after the retry readers see other than the fault-free run "
                            f"(a second element, or a change made twice)" + _difference(again_visible, ref_visible))
    assert problems == [], "\n".join([f"{name}: calls {calls}"] + problems)
