"""The change feed end to end, in-process (contract §10, issue 17): REAL requests through the
functions' `lambda_handler`s and the scheduled maintenance write the table (created from
template.yaml on moto); the table's stream is delivered by the emulation of Lambda's event source
mapping (local.stream.ShardConsumer, the template's settings) to the publisher (lib.feed.publisher),
which publishes to moto's EventBridge bus; a rule sends everything to an SQS queue, the consumer.

Checked at the consumer: every committed change's event, with the exact detail-types in the exact
sequence order per service, valid by its JSON Schema, its envelope (tenant, group, customer,
event_id) right; refused requests produce nothing. Then the same journey with faults injected at the
publisher and at EventBridge: every event id arrives (duplicates allowed, losses not), and read by
`sequence` each service's events are exactly its committed changes, in order."""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from typing import Any

import pytest

from lib.clock import format_ms
from lib.feed import bus, redrive
from lib.rules import maintenance
from local.stream import Mapping
from tests.feed_support import FaultyEvents, Feed, delivery_problems, schema_errors
from tests.support import Api

ACME = {"ContactCenterId": "acme", "GroupId": "eu"}

Journey = dict[tuple[str, str], list[str]]  # (tenant key, service_id) -> detail-types committed, in order


@pytest.fixture
def path(table, monkeypatch) -> Feed:
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.setattr(bus, "wait", lambda seconds: None)  # the publisher's back-off, without waiting
    return Feed(os.environ["TABLE_NAME"])


def _ok(reply: Any, status: int) -> Any:
    assert reply.status == status, reply.text
    return reply.json


def _refused(reply: Any, status: int) -> None:
    assert reply.status == status, reply.text
    assert set(reply.json) == {"message", "exception"}


def _ttl_sweep(table: Any, tenant: str, service_id: str) -> None:
    """What DynamoDB's TTL does when a conversation's time is up (moto never does it): the service
    item is removed by the DynamoDB service, which the stream record's userIdentity says."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    name = os.environ["TABLE_NAME"]
    table.delete_item(TableName=name, Key={"PK": {"S": f"{tenant}#C#{service_id}"}, "SK": {"S": "#SERVICE"}})
    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]].get_table(name).stream_shard
    removal = shard.items[-1].record
    assert removal["eventName"] == "REMOVE" and removal["dynamodb"]["Keys"]["SK"] == {"S": "#SERVICE"}
    removal["userIdentity"] = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}  # as GetRecords names them


def journey(table: Any, frozen: Any) -> tuple[Journey, dict[str, Any]]:
    """Every kind of committed change, and refused requests between them, through the handlers (and
    the schedule). -> what each service committed, and facts to check the events' data against."""
    acme, default = Api(ACME), Api()
    done: Journey = {}
    facts: dict[str, Any] = {}

    # A: a conversation with everything a request can do to it (tenant acme / group eu).
    a = _ok(acme.post("/services/start", {"contact_key": "k-1", "service_type": "billing", "ttl": 3600,
                                          "note": 1}), 201)["service_id"]
    _ok(acme.post(f"/services/{a}/states/start", {"state_type": "greet"}), 201)
    _ok(acme.post(f"/services/{a}/tasks/start", {"task_type": "lookup", "state_id": 1}), 201)
    _ok(acme.post(f"/services/{a}/tasks/start", {"task_type": "loose"}), 201)
    _refused(acme.post(f"/services/{a}/tasks/99/end", {}), 404)
    _refused(acme.post(f"/services/{a}/states/start", {"previous_state_id": 7}), 404)
    _refused(acme.post("/services/start", {"service_type": "no customer"}), 400)
    _ok(acme.put(f"/services/{a}/extensions/color", "red"), 200)
    assert acme.post(f"/customers/c-9/services/{a}", {"segment": "gold"}).status == 204
    _ok(acme.post(f"/services/{a}/states/transition", {"from": {"state_id": 1, "disposition": "moved"},
                                                        "to": {"state_type": "pay"}}), 201)
    _ok(acme.put(f"/services/{a}", {"ttl": 7200}), 200)
    frozen.advance(5)
    assert acme.post(f"/services/{a}/tasks/2/end", {"disposition": "ok", "x": 1}).status == 204
    assert acme.post(f"/services/{a}/end", {"disposition": "done", "ttl": 60}).status == 204
    facts["a_expires"] = format_ms(frozen.now + 60_000)
    _refused(acme.post(f"/services/{a}/end", {}), 409)
    _refused(acme.post(f"/services/{a}/states/start", {}), 409)
    done[("acme|eu", a)] = [
        "ServiceStarted", "StateStarted", "TaskStarted", "TaskStarted", "AttachedDataChanged",
        "ServiceAssociated", "AttachedDataChanged", "StateCompleted", "TaskCompleted", "StateStarted",
        "ServiceExpirationChanged", "TaskCompleted", "AttachedDataChanged", "ServiceCompleted", "StateCompleted",
        "ServiceExpirationChanged"]

    # B: started, then deleted by request (default tenant).
    b = _ok(default.post("/services/start", {"customer_id": "c-2"}), 201)["service_id"]
    _ok(default.post(f"/services/{b}/states/start", {}), 201)
    assert default.delete(f"/services/{b}").status == 204
    _refused(default.delete(f"/services/{b}"), 404)
    done[("|", b)] = ["ServiceStarted", "StateStarted", "ServiceDeleted"]

    # C: a composite start (three elements at once).
    c = _ok(acme.post("/services_composite/start", {"services": [{
        "service": {"customer_id": "c-3", "service_type": "sales"}, "state": {"state_type": "greet"},
        "task": {"task_type": "lookup"}, "associate_state_task": True}]}), 200)["services"][0]["service_id"]
    done[("acme|eu", c)] = ["ServiceStarted", "StateStarted", "TaskStarted"]

    # D: started long ago, purged by maintenance (default tenant).
    d = _ok(default.post("/services/start", {"customer_id": "c-4", "timestamp": "2001-01-01T00:00:00Z"}),
            201)["service_id"]
    assert _ok(default.post("/maintenance/purge", {"limit": "2001-06-01T00:00:00Z",
                                                   "operation": "purge.service.all"}), 200) == {"purged": 1}
    done[("|", d)] = ["ServiceStarted", "ServicePurged"]

    # E: erased by the table's TTL (told apart from a delete and a purge).
    e = _ok(acme.post("/services/start", {"customer_id": "c-5", "ttl": 60}), 201)["service_id"]
    facts["e_expires"] = format_ms(frozen.now + 60_000)
    _ttl_sweep(table, "acme|eu", e)
    done[("acme|eu", e)] = ["ServiceStarted", "ServiceExpired"]

    # F: auto-completed by the scheduled maintenance, with its cascade.
    f = _ok(acme.post("/services/start", {"customer_id": "c-6", "auto_complete_after": 60}), 201)["service_id"]
    _ok(acme.post(f"/services/{f}/tasks/start", {"task_type": "t"}), 201)
    frozen.advance(120)
    assert maintenance.scheduled(60_000)["auto_completed"] == 1
    done[("acme|eu", f)] = ["ServiceStarted", "TaskStarted", "ServiceCompleted", "TaskCompleted"]
    return done, facts


def _tenant_key(detail: dict[str, Any]) -> str:
    return f"{detail['tenant'] or ''}|{detail['group'] or ''}"


def _by_service(received: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    found: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in received:
        found[(_tenant_key(event["detail"]), event["detail"]["service_id"])].append(event)
    return found


def _committed(done: Journey) -> dict[tuple[str | None, str], int]:
    return {(tenant.partition("|")[0] or None, sid): len(names) for (tenant, sid), names in done.items()}


def test_every_committed_change_arrives_once_in_sequence_order_with_its_schema(table, path, frozen):
    done, facts = journey(table, frozen)
    path.deliver()
    received = path.consume()

    assert [error for event in received for error in schema_errors(event)] == []
    assert delivery_problems(received, _committed(done)) == []
    assert len(received) == sum(len(names) for names in done.values())  # no loss, no duplicate, nothing else
    arrived = _by_service(received)
    assert set(arrived) == set(done)
    for (tenant, sid), names in done.items():
        events = arrived[(tenant, sid)]
        assert [(e["detail-type"], e["detail"]["sequence"]) for e in events] == \
            [(name, n) for n, name in enumerate(names, start=1)], sid
        for event in events:
            detail = event["detail"]
            assert event["source"] == "context-services" and detail["schema_version"] == 1
            assert detail["event_id"] == hashlib.sha256(f"{tenant}|{sid}|{detail['sequence']}".encode()).hexdigest()[:32]

    (a_tenant, a), (b_tenant, b), (_, c), (_, d), (_, e), (_, f) = done
    a_events = arrived[(a_tenant, a)]
    assert {(x["detail"]["tenant"], x["detail"]["group"]) for x in a_events} == {("acme", "eu")}
    assert {(x["detail"]["tenant"], x["detail"]["group"]) for x in arrived[(b_tenant, b)]} == {(None, None)}
    # customer and contact key as the service item holds them at each event (after the association: c-9)
    assert [x["detail"]["customer_id"] for x in a_events] == [None] * 5 + ["c-9"] * 11
    assert {x["detail"]["contact_key"] for x in a_events} == {"k-1"}
    assert a_events[5]["detail"]["data"] == {"previous_customer_id": None, "customer_id": "c-9", "changed": [],
                                             "attached_keys": ["segment"]}
    # the reasons of completions: a transition's cascade, a request, a service end's cascade, the schedule
    reasons = [(x["detail-type"], x["detail"]["data"].get("reason")) for x in a_events if "Completed" in x["detail-type"]]
    assert reasons == [("StateCompleted", "transition"), ("TaskCompleted", "state_completed"),
                       ("TaskCompleted", "request"), ("ServiceCompleted", "request"),
                       ("StateCompleted", "service_completed")]
    assert a_events[-1]["detail"]["data"] == {"expiration_time": facts["a_expires"]}
    f_events = arrived[("acme|eu", f)]
    assert [x["detail"]["data"].get("reason") for x in f_events[2:]] == ["auto_complete", "service_completed"]
    assert arrived[("acme|eu", e)][1]["detail"]["data"] == {"expiration_time": facts["e_expires"]}
    assert arrived[("|", d)][1]["detail"]["data"] == {} and arrived[("|", b)][2]["detail"]["customer_id"] == "c-2"
    assert [x["detail"]["data"].get("task_id") for x in arrived[("acme|eu", c)]] == [None, None, 1]


def _read_in_order(received: list[dict[str, Any]]) -> Journey:
    """What a consumer makes of what it received (README, What a consumer can rely on): repeats of
    an event id dropped, each service's events ordered by `sequence` (EventBridge does not keep the
    order of delivery; a refused entry sent again arrives after the later ones that were accepted)."""
    found: Journey = {}
    for service, events in _by_service(received).items():
        unique = {event["detail"]["event_id"]: event for event in events}
        found[service] = [e["detail-type"] for e in sorted(unique.values(), key=lambda e: e["detail"]["sequence"])]
    return found


@pytest.mark.parametrize("fault", ["crash part-way", "partial failure", "timeout", "all three"])
def test_faults_at_the_publisher_and_eventbridge_lose_no_committed_change(table, path, frozen, fault):
    done, _ = journey(table, frozen)
    total = sum(len(names) for names in done.values())
    victim = f'"service_id":"{next(iter(done))[1]}"'
    faulty = FaultyEvents(path.events)
    if fault in ("crash part-way", "all three"):
        faulty.crash = {2}  # after the batch's first 10 events went out
    if fault in ("partial failure", "all three"):
        # PutEvents refuses some entries: every third of the first calls, and every event of one
        # service for more calls than the publisher's own retries (Lambda retries from its record)
        faulty.refuse = lambda call, item: "ThrottlingException" if (call <= 25 and victim in item["Detail"]) or (
            call <= 12 and int(hashlib.sha256(item["Detail"].encode()).hexdigest(), 16) % 3 == 0) else None
    if fault in ("timeout", "all three"):
        faulty.time_out = {3, 6}  # the call's entries went out, the function's answer never comes
    path.deliver(path.function(faulty))
    received = path.consume()

    assert delivery_problems(received, _committed(done)) == []  # every event id, valid, gap-free, nothing else
    assert {e["detail"]["event_id"] for e in received} == {
        hashlib.sha256(f"{t}|{sid}|{n}".encode()).hexdigest()[:32]
        for (t, sid), names in done.items() for n in range(1, len(names) + 1)}
    assert len(received) > total or faulty.refused > 0  # the fault happened
    assert _read_in_order(received) == done  # the exact changes, in the order they were committed
    consumer = next(iter(path.consumers.values()))
    assert consumer.invocations > 1 and not consumer.given_up


def test_what_the_event_source_gives_up_on_is_in_the_dead_letter_queue_and_the_redrive_publishes_it(
        table, path, frozen):
    done, _ = journey(table, frozen)
    down = FaultyEvents(path.events, refuse=lambda call, item: "InternalFailure")
    path.deliver(path.function(down), Mapping(batch_size=100, report_failures=True, bisect=True, max_retries=1))
    assert path.consume() == [] and path.dead_letters_waiting() >= 1

    report = redrive.redrive(path.sqs, path.dead_letters, path.streams, path.destination, path.events)
    assert report.left == [] and report.redriven >= 1
    received = path.consume()
    assert delivery_problems(received, _committed(done)) == []
    assert _read_in_order(received) == done
    assert path.dead_letters_waiting() == 0
