"""The change feed under refusals, retries and concurrency (contract §1 Retries, §2, §10): a refused
request emits nothing; an idempotent repeat and a retry after a lost reply emit nothing more;
concurrent writes on one service never share, skip or repeat a sequence number."""

from __future__ import annotations

import threading
import types
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import botocore.endpoint
import pytest
from botocore.exceptions import ReadTimeoutError

from lib.clock import format_ms
from lib.models import EndFields, StateStart, TaskStart
from lib.rules import attached, children, maintenance
from lib.rules import services as service_rules

# ---------------------------------------------------------------- refused requests


def test_refused_requests_emit_nothing(api, feed, frozen):
    sid = api.start(customer_id="c-1")
    api.post(f"/services/{sid}/states/start", {})
    api.post(f"/services/{sid}/tasks/start", {"state_id": 1})
    api.put(f"/services/{sid}/extensions/scalar", 5)
    done = api.start(customer_id="c-1")
    api.post(f"/services/{done}/end")
    feed.take()
    early = format_ms(frozen.now - 60_000)
    refused = [
        (400, "POST", "/services/start", {}),
        (400, "POST", "/services/start", {"customer_id": "c", "ttl": -1}),
        (404, "POST", "/services/123/end", {}),
        (409, "POST", f"/services/{done}/end", {}),
        (409, "POST", f"/services/{done}/states/start", {}),
        (409, "POST", f"/services/{done}/tasks/start", {}),
        (404, "POST", f"/services/{sid}/states/9/end", {}),
        (404, "POST", f"/services/{sid}/tasks/9/end", {}),
        (400, "POST", f"/services/{sid}/tasks/1/end", {"timestamp": early}),
        (400, "POST", f"/services/{sid}/states/1/end", {"timestamp": early}),
        (400, "POST", f"/services/{sid}/end", {"timestamp": early}),
        (404, "POST", f"/services/{sid}/states/transition", {"from": {"state_id": 7}, "to": {"state_type": "x"}}),
        (404, "POST", f"/services/{sid}/tasks/start", {"state_id": 9}),
        (404, "POST", f"/services/{sid}/states/start", {"previous_state_id": 9}),
        (400, "PUT", f"/services/{sid}", {}),
        (404, "PUT", "/services/123", {"ttl": 5}),
        (400, "PUT", f"/services/{sid}/extensions/scalar/merge", {"a": 1}),
        (400, "PUT", f"/services/{sid}/extensions/x/merge", [1]),
        (400, "PUT", f"/services/{sid}/extensions/service_id", 1),
        (404, "PUT", f"/services/{sid}/states/9/extensions/x", 1),
        (404, "PUT", f"/services/{sid}/tasks/9/extensions/x/merge", {"a": 1}),
        (404, "DELETE", "/services/123", None),
        (400, "POST", f"/customers/{'c' * 300}/services/{sid}", {}),
        (404, "POST", "/customers/c-2/services/123", {}),
        (404, "POST", "/services_composite/start", {"services": [{"service": {"customer_id": "n"},
                                                                 "state": {"previous_state_id": 3}}]}),
        (400, "POST", "/maintenance/purge", {"limit": early, "operation": "purge.nothing"}),
    ]
    for status, method, path, body in refused:
        reply = api.request(method, path, body)
        assert reply.status == status, (method, path, reply.text)
        assert feed.take() == [], (method, path)
    assert api.post(f"/services/{sid}/tasks/1/end").status == 204
    assert feed.names() == ["TaskCompleted"]
    assert api.post(f"/services/{sid}/tasks/1/end").status == 409
    assert api.post(f"/services/{sid}/states/1/end").status == 204
    assert feed.names() == ["StateCompleted"]
    assert api.post(f"/services/{sid}/states/1/end").status == 409
    assert feed.take() == []


# ---------------------------------------------------------------- idempotent repeats


def test_an_idempotent_repeat_emits_nothing_more(api, feed):
    key = lambda n: {"Idempotency-Key": f"key-{n}"}
    sid = api.post("/services/start", {"customer_id": "c"}, headers=key(1)).json["service_id"]
    assert api.post("/services/start", {"customer_id": "c"}, headers=key(1)).json["service_id"] == sid
    for path, body in ((f"/services/{sid}/states/start", {}), (f"/services/{sid}/tasks/start", {"state_id": 1}),
                       (f"/services/{sid}/states/transition", {"from": {"state_id": 1}, "to": {"state_type": "b"}}),
                       ("/services_composite/start", {"services": [{"service": {"customer_id": "d"},
                                                                    "state": {"state_type": "a"}}]})):
        first = api.post(path, body, headers=key(path))
        again = api.post(path, body, headers=key(path))
        assert (again.status, again.json) == (first.status, first.json) and again.headers.get("X-Idempotent-Replay")
    assert Counter(feed.names()) == {"ServiceStarted": 2, "StateStarted": 3, "TaskStarted": 1, "StateCompleted": 1,
                                     "TaskCompleted": 1}


# ---------------------------------------------------------------- lost replies


@dataclass
class LostReply:
    """The next call of `operation` is applied, then its reply is lost (a read timeout): botocore
    retries it, and the retry meets the request's own write."""

    operation: str | None = None
    lost: list[str] = field(default_factory=list)


@pytest.fixture
def lose_reply(monkeypatch) -> LostReply:
    armed = LostReply()
    send = botocore.endpoint.Endpoint._do_get_response

    def attempt(endpoint, request, operation_model, context):
        if operation_model.name != armed.operation:
            return send(endpoint, request, operation_model, context)
        armed.operation = None
        armed.lost.append(operation_model.name)
        send(endpoint, request, operation_model, context)  # applied; its reply is lost
        return None, ReadTimeoutError(endpoint_url=request.url)

    monkeypatch.setattr(botocore.endpoint.Endpoint, "_do_get_response", attempt)
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=lambda _s: None, time=__import__(
        "time").time, monotonic=__import__("time").monotonic))
    return armed


def _setup(api) -> str:
    sid = api.start(customer_id="c-1", contact_key="k")
    api.post(f"/services/{sid}/states/start", {})
    api.post(f"/services/{sid}/tasks/start", {"state_id": 1})
    api.post(f"/services/{sid}/tasks/start", {})
    api.post(f"/services/{sid}/states/start", {})
    return sid


LOST = [  # route, the commit write whose reply is lost, the events it commits
    (lambda s: ("POST", "/services/start", {"customer_id": "x"}), "PutItem", ["ServiceStarted"]),
    (lambda s: ("PUT", f"/services/{s}/extensions/a", 1), "UpdateItem", ["AttachedDataChanged"]),
    (lambda s: ("PUT", f"/services/{s}/extensions/a/merge", {"b": 1}), "UpdateItem", ["AttachedDataChanged"]),
    (lambda s: ("PUT", f"/services/{s}", {"ttl": 7200}), "TransactWriteItems", ["ServiceExpirationChanged"]),
    (lambda s: ("PUT", f"/services/{s}", {"expiration_time": "2020-01-01T00:00:00Z"}), "TransactWriteItems",
     ["ServiceExpirationChanged"]),
    (lambda s: ("POST", f"/customers/c-2/services/{s}", {}), "UpdateItem", ["ServiceAssociated"]),
    (lambda s: ("POST", f"/services/{s}/end", {}), "UpdateItem",
     ["ServiceCompleted", "StateCompleted", "TaskCompleted", "StateCompleted", "TaskCompleted"]),
    (lambda s: ("POST", f"/services/{s}/end", {"ttl": 7200}), "TransactWriteItems",
     ["ServiceCompleted", "StateCompleted", "TaskCompleted", "StateCompleted", "TaskCompleted",
      "ServiceExpirationChanged"]),
    (lambda s: ("POST", f"/services/{s}/states/start", {}), "TransactWriteItems", ["StateStarted"]),
    (lambda s: ("POST", f"/services/{s}/tasks/start", {"state_id": 2}), "TransactWriteItems", ["TaskStarted"]),
    (lambda s: ("POST", f"/services/{s}/tasks/2/end", {}), "TransactWriteItems", ["TaskCompleted"]),
    (lambda s: ("POST", f"/services/{s}/states/1/end", {}), "TransactWriteItems", ["StateCompleted", "TaskCompleted"]),
    (lambda s: ("POST", f"/services/{s}/states/transition", {"from": {"state_id": 1}, "to": {}}),
     "TransactWriteItems", ["StateCompleted", "TaskCompleted", "StateStarted"]),
    (lambda s: ("PUT", f"/services/{s}/tasks/1/extensions/a", 1), "TransactWriteItems", ["AttachedDataChanged"]),
    (lambda s: ("PUT", f"/services/{s}/states/1/extensions/a/merge", {"b": 1}), "TransactWriteItems",
     ["AttachedDataChanged"]),
    (lambda s: ("DELETE", f"/services/{s}", None), "TransactWriteItems", ["ServiceDeleted"]),
    (lambda s: ("POST", "/services_composite/start", {"services": [{"service": {"customer_id": "n"}, "state": {}}]}),
     "TransactWriteItems", ["ServiceStarted", "StateStarted"]),
    (lambda s: ("POST", "/maintenance/purge", {"limit": "2100-01-01T00:00:00Z", "operation": "purge.service.all"}),
     "TransactWriteItems", ["ServicePurged"]),
]


@pytest.mark.parametrize("route,operation,emitted", LOST, ids=[f"{n}" for n in range(len(LOST))])
def test_a_retry_after_a_lost_reply_emits_nothing_more(api, feed, lose_reply, route, operation, emitted):
    sid = _setup(api)
    feed.take()
    method, path, body = route(sid)
    lose_reply.operation = operation
    reply = api.request(method, path, body)
    assert lose_reply.lost == [operation]  # the fault happened
    assert 200 <= reply.status < 300, reply.text
    assert feed.names() == emitted


def test_a_retry_of_the_schedule_s_transaction_after_a_lost_reply_emits_nothing_more(api, feed, frozen, lose_reply):
    sid = api.start(auto_complete_after=10)
    api.post(f"/services/{sid}/states/start", {})
    feed.take()
    frozen.advance(20)
    lose_reply.operation = "TransactWriteItems"
    maintenance.scheduled(60_000)
    assert lose_reply.lost == ["TransactWriteItems"]
    assert feed.names() == ["ServiceCompleted", "StateCompleted"]


# ---------------------------------------------------------------- concurrency


def test_concurrent_writes_on_one_service_never_share_skip_or_repeat_a_sequence(api, feed):
    """In-process, concurrently: the handlers' resolver is one object per function (not made for
    threads), so the threads call the floor below it (lib.rules), as each handler would."""
    sid = api.start(customer_id="c-1")
    api.post(f"/services/{sid}/states/start", {})
    feed.take()
    tenant = "|"
    done: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        task_id = children.start_task(tenant, sid, TaskStart(task_type=f"t{n}", state_id=1 if n % 2 else None))
        attached.put(tenant, sid, "service", None, f"k{n}", n)
        state_id = children.start_state(tenant, sid, StateStart(state_type=f"s{n}"))
        attached.merge(tenant, sid, "task", task_id, "m", {"n": n})
        if n % 3:
            children.end_task(tenant, sid, task_id, EndFields())
        with lock:
            done.append(f"{task_id}/{state_id}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(12)))
    assert len(done) == 12
    events = feed.take()
    numbers = [e.sequence for e in events]
    assert numbers == list(range(3, 3 + len(events)))  # after ServiceStarted and StateStarted
    assert Counter(e.name for e in events) == {"TaskStarted": 12, "StateStarted": 12, "AttachedDataChanged": 24,
                                               "TaskCompleted": 8}
    # The service's count of active children is exact: its end cascades to exactly what is active.
    service_rules.end(tenant, sid, None)
    cascade = [e for e in feed.take() if e.name != "ServiceCompleted"]
    active_tasks = [t["task_id"] for t in api.get(f"/services/{sid}/tasks/completed").json
                    if t["completed"]["timestamp"] == cascade[0].data["completed"]["timestamp"]]
    assert Counter(e.name for e in cascade) == {"StateCompleted": 13, "TaskCompleted": 4}
    assert sorted(e.data["task_id"] for e in cascade if e.name == "TaskCompleted") == sorted(active_tasks)
