"""The change feed's path as deployed, in-process on moto (contract §10, issue 17): the table's stream
(table created from template.yaml) -> Lambda's event source mapping (the local run's emulation:
batches, ReportBatchItemFailures, bisection, retries, on-failure destination) -> the publisher ->
moto's EventBridge bus -> a rule -> an SQS queue, the consumer. Faults are injected at EventBridge and
in the function; afterwards every committed change has exactly one event id at the consumer
(duplicates allowed, losses not), sequences per service are gap-free, every event is valid by its
schema, and a batch given up on is published by the re-drive.

The changes are written as the store writes them (docs/DESIGN.md, Change feed): the service item with
`seq` and `ev`, conditional on the `seq` read; deletions as a transaction with an erasure record."""

from __future__ import annotations

import json
import os
import random
import re
import time
from pathlib import Path

import pytest

from lib.feed import bus, redrive
from lib.store.codec import encode_item
from local.stream import Mapping
from tests.feed_support import (
    SOURCE,
    TEMPLATE_MAPPING,
    Context,
    FaultyEvents,
    Feed,
    delivery_problems,
    entry,
    service_image,
)

TENANTS = {"acme|": "acme", "|": None, "acme|sales": "acme"}


@pytest.fixture
def feed(table, monkeypatch) -> Feed:
    monkeypatch.setattr(bus, "wait", lambda seconds: None)  # the publisher's back-off, without waiting
    return Feed(os.environ["TABLE_NAME"])


def commit(feed: Feed, services: int = 4, changes: int = 3, delete: bool = True) -> dict:
    """Committed changes of `services` services in three tenants: a start (2 events), `changes` writes
    of 2 events each, a state item (no event), a refused write (nothing), and the last service deleted
    (its ServiceDeleted on an erasure record). -> {(tenant, service_id): events committed}."""
    committed = {}
    for n in range(1, services + 1):
        tenant, service_id = list(TENANTS)[n % 3], str(1000 + n)
        seq = 2
        feed.put(service_image(service_id, seq, [entry("ServiceStarted", service_type="t", est_duration=None,
                                                       started={"timestamp": "2026-01-01T00:00:00.000Z"},
                                                       expiration_time=None, auto_complete_after=None,
                                                       attached_keys=[]),
                                                 entry("AttachedDataChanged", element="service", keys=["a"])],
                               tenant=tenant), old_seq=0)
        feed.dynamodb.put_item(TableName=feed.table_name, Item=encode_item(
            {"PK": f"{tenant}#C#{service_id}", "SK": "S#0000000001", "type": "state", "state_id": 1}))
        for _ in range(changes):
            feed.put(service_image(service_id, seq + 2, [entry("ServiceExpirationChanged",
                                                               expiration_time="2027-01-01T00:00:00.000Z"),
                                                         entry("AttachedDataChanged", element="state", state_id=1,
                                                               keys=["b", "c"])], tenant=tenant), old_seq=seq)
            seq += 2
        with pytest.raises(feed.dynamodb.exceptions.ConditionalCheckFailedException):
            feed.put(service_image(service_id, seq + 1, [entry("ServiceDeleted")], tenant=tenant), old_seq=seq - 1)
        committed[(TENANTS[tenant], service_id)] = seq
    if delete:
        feed.dynamodb.transact_write_items(TransactItems=[
            {"Delete": {"TableName": feed.table_name, "Key": {"PK": {"S": f"{tenant}#C#{service_id}"},
                                                              "SK": {"S": "#SERVICE"}},
                        "ConditionExpression": "seq = :seq", "ExpressionAttributeValues": {":seq": {"N": str(seq)}}}},
            {"Put": {"TableName": feed.table_name, "Item": encode_item({
                "PK": f"{tenant}#ERASE#e1", "SK": "#ERASE", "type": "erasure", "tenant": tenant, "erasure_id": "e1",
                "pks": [f"{tenant}#C#{service_id}"], "created_ms": 1,
                "ev": [{**entry("ServiceDeleted"), "service_id": service_id, "customer_id": "c-1",
                        "contact_key": None, "sequence": seq + 1}]})}}])
        committed[(TENANTS[tenant], service_id)] = seq + 1
    return committed


def _ids(events: list[dict]) -> list[str]:
    return [event["detail"]["event_id"] for event in events]


def test_without_faults_every_change_arrives_once_in_sequence_order(feed):
    committed = commit(feed)
    feed.deliver()
    received = feed.consume()
    assert delivery_problems(received, committed) == []
    assert len(received) == len(set(_ids(received))) == sum(committed.values())  # no duplicate either
    for service in committed:
        arrived = [e["detail"]["sequence"] for e in received if (e["detail"]["tenant"], e["detail"]["service_id"])
                   == service]
        assert arrived == sorted(arrived), service
    assert {e["source"] for e in received} == {SOURCE}
    deleted = [e for e in received if e["detail-type"] == "ServiceDeleted"]
    assert len(deleted) == 1 and deleted[0]["detail"]["sequence"] == committed[
        (deleted[0]["detail"]["tenant"], deleted[0]["detail"]["service_id"])]


def test_a_cancelled_transaction_leaves_no_record_and_no_event(feed):
    feed.put(service_image("1", 1, [entry("ServiceDeleted")]), old_seq=0)
    with pytest.raises(feed.dynamodb.exceptions.TransactionCanceledException):
        feed.dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": feed.table_name, "Item": service_image("1", 2, [entry("ServiceDeleted")])}},
            {"ConditionCheck": {"TableName": feed.table_name, "Key": {"PK": {"S": "nope"}, "SK": {"S": "x"}},
                                "ConditionExpression": "attribute_exists(PK)"}}])
    feed.deliver()
    assert [e["detail"]["sequence"] for e in feed.consume()] == [1]


def test_eventbridge_refusing_entries_loses_nothing(feed):
    committed = commit(feed, services=6)
    # every event of one service for 20 calls (more than the publisher's own retries), and every third call
    victim = json.dumps({"service_id": "1002"}, separators=(",", ":"))[1:-1]
    faulty = FaultyEvents(feed.events, refuse=lambda call, item: "ThrottlingException"
                          if (call <= 20 and victim in item["Detail"]) or call % 3 == 0 and call < 20 else None)
    feed.deliver(feed.function(faulty))
    received = feed.consume()
    assert faulty.refused > 0 and delivery_problems(received, committed) == []
    consumer = next(iter(feed.consumers.values()))
    assert consumer.invocations > 1  # past the publisher's own retries: Lambda retried from the record


def test_a_publisher_failing_part_way_through_a_batch_loses_nothing(feed):
    committed = commit(feed, services=8)
    # the 2nd call of the first invocation crashes the function after the 1st call's 10 events went out;
    # then the bus throttles whole calls (more times than the publisher retries: records are reported)
    faulty = FaultyEvents(feed.events, crash={2}, fail=set(range(5, 15)))
    feed.deliver(feed.function(faulty))
    received = feed.consume()
    assert delivery_problems(received, committed) == []
    assert len(received) > len(set(_ids(received)))  # the crashed batch came again: duplicates, no loss


def test_a_timed_out_invocation_comes_again_whole(feed):
    committed = commit(feed, services=5)
    faulty = FaultyEvents(feed.events, time_out={3})
    feed.deliver(feed.function(faulty))
    received = feed.consume()
    assert delivery_problems(received, committed) == []
    first_calls = 3 * bus.MAX_ENTRIES  # what went out before the timeout was sent again
    assert len(received) >= sum(committed.values()) + first_calls - bus.MAX_ENTRIES


def test_a_batch_given_up_on_is_kept_and_the_redrive_publishes_it(feed):
    committed = commit(feed, services=3)
    down = FaultyEvents(feed.events, refuse=lambda call, item: "InternalFailure")
    feed.deliver(feed.function(down), Mapping(batch_size=100, report_failures=True, bisect=True, max_retries=2))
    assert feed.consume() == [] and feed.dead_letters_waiting() >= 1  # nothing out, but described

    report = redrive.redrive(feed.sqs, feed.dead_letters, feed.streams, feed.destination, feed.events)
    given_up = [message for c in feed.consumers.values() for message in c.given_up]
    assert report.left == [] and report.redriven == len(given_up) and report.records == sum(
        message["DDBStreamBatchInfo"]["batchSize"] for message in given_up)
    assert delivery_problems(feed.consume(), committed) == []
    assert feed.dead_letters_waiting() == 0


def _given_up(feed: Feed) -> None:
    """Every record of the stream described in the dead-letter queue (the bus refused everything)."""
    feed.deliver(feed.function(FaultyEvents(feed.events, refuse=lambda call, item: "InternalFailure")),
                 Mapping(batch_size=100, report_failures=True, max_retries=0))
    assert feed.dead_letters_waiting() == 1


def test_the_redrive_leaves_what_it_cannot_publish_in_the_queue(feed):
    commit(feed, services=1)
    _given_up(feed)
    still_down = FaultyEvents(feed.events, refuse=lambda call, item: "InternalFailure")
    report = redrive.redrive(feed.sqs, feed.dead_letters, feed.streams, feed.destination, still_down)
    assert report.redriven == 0 and len(report.left) == 1 and "not published" in report.left[0]
    assert feed.dead_letters_waiting() == 1  # kept (visible again after its visibility timeout)
    assert feed.consume() == []


def test_the_redrive_sends_a_batch_whole_however_long_its_calls_take(feed, monkeypatch):
    """The script has no timeout to keep a margin before: a batch described in the queue goes out
    whole even when its PutEvents calls take longer than any function's budget (big cascades)."""
    committed = commit(feed, services=8)
    _given_up(feed)
    now = [time.monotonic()]  # as the real clock reads now: a deadline read on either is passed
    monkeypatch.setattr(bus, "monotonic", lambda: now[0])

    class Slow:  # every call takes 100 s
        def put_events(self, **kwargs):
            now[0] += 100.0
            return feed.events.put_events(**kwargs)

    report = redrive.redrive(feed.sqs, feed.dead_letters, feed.streams, feed.destination, Slow())
    assert report.left == [] and report.redriven == 1 and now[0] >= 300.0  # several calls, every one sent
    assert delivery_problems(feed.consume(), committed) == []
    assert feed.dead_letters_waiting() == 0


def test_a_message_back_in_the_queue_during_the_run_ends_it(feed, monkeypatch):
    """A message left (not published) that is visible again before the run ends (its hidden time
    passed: a long run) is not tried again and again: the run stops at it."""
    commit(feed, services=1)
    _given_up(feed)
    monkeypatch.setattr(redrive, "VISIBILITY_SECONDS", 0)  # visible again at once
    still_down = FaultyEvents(feed.events, refuse=lambda call, item: "InternalFailure")
    report = redrive.redrive(feed.sqs, feed.dead_letters, feed.streams, feed.destination, still_down, limit=20)
    assert report.redriven == 0 and len(report.left) == 1 and feed.dead_letters_waiting() == 1


def test_the_redrive_leaves_a_batch_whose_records_are_past_the_stream_s_retention(feed):
    commit(feed, services=1)
    _given_up(feed)

    class Trimmed:  # the stream's 24 hours have passed
        exceptions = feed.streams.exceptions

        def get_shard_iterator(self, **_):
            raise feed.streams.exceptions.TrimmedDataAccessException(
                {"Error": {"Code": "TrimmedDataAccessException", "Message": "trimmed"}}, "GetShardIterator")

    report = redrive.redrive(feed.sqs, feed.dead_letters, Trimmed(), feed.destination, feed.events)
    assert report.redriven == 0 and "past the stream's retention" in report.left[0]
    assert feed.dead_letters_waiting() == 1


def test_a_dry_run_reads_the_records_and_publishes_nothing(feed):
    committed = commit(feed, services=1, delete=False)
    _given_up(feed)
    report = redrive.redrive(feed.sqs, feed.dead_letters, feed.streams, feed.destination, feed.events, dry_run=True)
    assert report.left == [] and report.records == 5 and report.redriven == 0
    assert feed.consume() == [] and feed.dead_letters_waiting() == 1  # left for the real run, visible at once
    report = redrive.redrive(feed.sqs, feed.dead_letters, feed.streams, feed.destination, feed.events)
    assert report.redriven == 1 and delivery_problems(feed.consume(), committed) == []


@pytest.mark.parametrize("seed", range(2))
def test_random_faults_lose_nothing(feed, seed):
    """Refused entries, throttled and crashed calls, timeouts at random; what the event source gives
    up on is re-driven at the end."""
    committed = commit(feed, services=7, changes=4)
    rng = random.Random(seed)
    faults = {call: rng.choice(["fail", "crash", "time_out", None, None, None]) for call in range(1, 60)}
    faulty = FaultyEvents(feed.events, refuse=lambda call, item: "InternalFailure" if call < 60 and rng.random() < 0.3
                          else None, fail={c for c, f in faults.items() if f == "fail"},
                          crash={c for c, f in faults.items() if f == "crash"},
                          time_out={c for c, f in faults.items() if f == "time_out"})
    feed.deliver(feed.function(faulty), Mapping(batch_size=17, report_failures=True, bisect=True, max_retries=3))
    redrive.redrive(feed.sqs, feed.dead_letters, feed.streams, feed.destination, feed.events)
    assert delivery_problems(feed.consume(), committed) == []
    assert feed.dead_letters_waiting() == 0


def test_the_handler_module_publishes_to_the_bus_of_its_environment(feed, monkeypatch):
    import importlib

    monkeypatch.setenv("EVENT_BUS_NAME", feed.destination.bus)
    monkeypatch.setenv("EVENT_SOURCE", SOURCE)
    bus.events_client.cache_clear()
    import handlers.feed as handler

    handler = importlib.reload(handler)
    committed = commit(feed, services=2, delete=False)
    feed.deliver(lambda event: handler.lambda_handler(event, Context()), TEMPLATE_MAPPING)
    assert delivery_problems(feed.consume(), committed) == []
    bus.events_client.cache_clear()
    monkeypatch.delenv("EVENT_BUS_NAME")
    with pytest.raises(RuntimeError, match="EVENT_BUS_NAME"):  # no bus: its init fails, nothing is dropped
        importlib.reload(handler)


def _readme_pattern() -> dict:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return json.loads(re.search(r"--event-pattern '(\{.*?\})'", readme).group(1))


@pytest.mark.parametrize("extra, expected", [
    ({}, {("acme", None, "1"), ("acme", "sales", "2")}),  # the README's rule: one tenant's StateStarted
    ({"group": ["sales"]}, {("acme", "sales", "2")}),  # and one of its groups
    ({"tenant": [None]}, {(None, None, "5")}),  # the default tenant
])
def test_the_readme_s_rule_receives_one_tenant_s_state_started_events(feed, extra, expected):
    pattern = _readme_pattern()
    pattern["detail"].update(extra)
    queue = feed.sqs.create_queue(QueueName="acme-state-started")["QueueUrl"]
    arn = feed.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    feed.events.put_rule(Name="acme", EventBusName=feed.destination.bus, EventPattern=json.dumps(pattern))
    feed.events.put_targets(Rule="acme", EventBusName=feed.destination.bus, Targets=[{"Id": "q", "Arn": arn}])
    for n, (tenant, name) in enumerate([("acme|", "StateStarted"), ("acme|sales", "StateStarted"),
                                        ("acme|", "TaskStarted"), ("beta|", "StateStarted"),
                                        ("|", "StateStarted")], start=1):
        feed.put(service_image(str(n), 1, [entry(name)], tenant=tenant))
    feed.deliver()
    received = []
    while messages := feed.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        received += [json.loads(m["Body"]) for m in messages]
        feed.sqs.delete_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
    assert {(e["detail"]["tenant"], e["detail"]["group"], e["detail"]["service_id"]) for e in received} == expected
    assert {e["detail-type"] for e in received} == {"StateStarted"}
    assert len(feed.consume()) == 5  # the consumer of everything got them all
