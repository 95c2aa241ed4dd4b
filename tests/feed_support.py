"""What the change-feed tests share: stream records built by hand in the format the store writes
(docs/DESIGN.md, Change feed), the events' JSON Schemas (schemas/events), EventBridge faults, and
the path of a deployed feed run in-process on moto: the table's stream read shard by shard by the
local run's emulation of Lambda's event source mapping (local.stream.ShardConsumer), the publisher
(lib.feed.publisher.handle), moto's EventBridge bus with a rule to an SQS queue (the consumer).

Imports nothing from the tests themselves."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from lib.feed import bus, publisher
from lib.store.codec import encode_item
from local.stream import Mapping, ShardConsumer, memoized_input_paths

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas" / "events"
SOURCE = "context-services"
TEMPLATE_MAPPING = Mapping(batch_size=100, report_failures=True, bisect=True, max_retries=10, max_record_age=3600)


# ---------------------------------------------------------------- records as the store writes them


def service_image(service_id: str, seq: int | None, ev: list[dict[str, Any]] | None = None, tenant: str = "acme|",
                  customer_id: str | None = "c-1", contact_key: str | None = None,
                  expires_ms: int = 1_900_000_000_000) -> dict[str, Any]:
    """A service item as stored (the attributes the feed reads, plus its keys)."""
    values = {"PK": f"{tenant}#C#{service_id}", "SK": "#SERVICE", "type": "service", "tenant": tenant,
              "service_id": service_id, "customer_id": customer_id, "contact_key": contact_key,
              "expires_ms": expires_ms, "seq": seq, "ev": ev}
    return encode_item(values)


def entry(name: str, at: int = 1_700_000_000_000, **data: Any) -> dict[str, Any]:
    return {"name": name, "at": at, "data": data}


def record(change: str, new: dict[str, Any] | None = None, old: dict[str, Any] | None = None, sequence: int = 1,
           ttl: bool = False, created: int = 1_700_000_000) -> dict[str, Any]:
    """A stream record as Lambda delivers it."""
    image = new or old or {}
    images: dict[str, Any] = {"ApproximateCreationDateTime": created, "Keys": {k: image[k] for k in ("PK", "SK")},
                              "SequenceNumber": str(100 + sequence), "SizeBytes": 100,
                              "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None:
        images["NewImage"] = new
    if old is not None:
        images["OldImage"] = old
    found = {"eventID": f"e{sequence}", "eventName": change, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
             "awsRegion": "us-east-1", "dynamodb": images,
             "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"}
    if ttl:
        found["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return found


# ---------------------------------------------------------------- schemas


@lru_cache(maxsize=1)
def validators() -> dict[str, Draft202012Validator]:
    """A validator per detail-type, from schemas/events (envelope.json resolved beside them)."""
    loaded = {path.name: json.loads(path.read_text()) for path in SCHEMAS.glob("*.json")}
    registry = Registry().with_resources((name, Resource.from_contents(schema)) for name, schema in loaded.items())
    for schema in loaded.values():
        Draft202012Validator.check_schema(schema)
    return {name[:-5]: Draft202012Validator(schema, registry=registry)
            for name, schema in loaded.items() if name != "envelope.json"}


def schema_errors(event: dict[str, Any]) -> list[str]:
    """What is wrong with a delivered event (`source`, `detail-type`, `detail`) by its schema."""
    validator = validators().get(event.get("detail-type", ""))
    if validator is None:
        return [f"no schema for detail-type {event.get('detail-type')!r}"]
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(event)]


# ---------------------------------------------------------------- EventBridge, with faults


class InvocationTimedOut(Exception):
    """Stands for Lambda ending the invocation at its timeout: whatever was sent stays sent, the
    function's answer never comes, and the event source sees a function error."""


@dataclass
class FaultyEvents:
    """An EventBridge client (moto's) with faults injected per PutEvents call (1-based numbers):
    `refuse(call, entry)` -> an ErrorCode refuses that entry (a partial failure: the others are
    delivered); `fail` raises a throttling error for the whole call; `crash` makes the function fail
    there (an exception the publisher does not expect); `time_out` delivers the call's entries, then
    ends the invocation."""

    client: Any
    refuse: Callable[[int, dict[str, Any]], str | None] = lambda call, item: None
    fail: set[int] = field(default_factory=set)
    crash: set[int] = field(default_factory=set)
    time_out: set[int] = field(default_factory=set)
    calls: int = 0
    refused: int = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        if self.calls in self.fail:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "PutEvents")
        if self.calls in self.crash:
            raise RuntimeError(f"injected crash at PutEvents call {self.calls}")
        codes = [self.refuse(self.calls, item) for item in Entries]
        accepted = [item for item, code in zip(Entries, codes) if code is None]
        results = iter(self.client.put_events(Entries=accepted)["Entries"] if accepted else [])
        replies = [next(results) if code is None else {"ErrorCode": code, "ErrorMessage": "injected"} for code in codes]
        self.refused += sum(code is not None for code in codes)
        if self.calls in self.time_out:
            raise InvocationTimedOut(f"PutEvents call {self.calls}")
        return {"FailedEntryCount": sum("ErrorCode" in r for r in replies), "Entries": replies}


# ---------------------------------------------------------------- the deployed path, in-process


class Context:
    """The parts of Lambda's context the publisher reads."""

    function_name = "PublisherFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:PublisherFunction"
    aws_request_id = "test"

    def __init__(self, remaining_ms: int = 60_000):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Feed:
    """The table's stream -> publisher -> moto's bus -> a rule -> an SQS queue, inside a moto mock
    whose table was created from template.yaml (the `table` fixture)."""

    def __init__(self, table_name: str, bus_name: str = "feed-test"):
        memoized_input_paths()
        config = Config(account_id_endpoint_mode="disabled")
        self.dynamodb = boto3.client("dynamodb", config=config)
        self.streams = boto3.client("dynamodbstreams", config=config)
        self.events = boto3.client("events", config=config)
        self.sqs = boto3.client("sqs", config=config)
        self.table_name = table_name
        self.destination = bus.Destination(bus_name, SOURCE)
        self.events.create_event_bus(Name=bus_name)
        self.queue = self.sqs.create_queue(QueueName=f"{bus_name}-consumer")["QueueUrl"]
        self.dead_letters = self.sqs.create_queue(QueueName=f"{bus_name}-dlq")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.events.put_rule(Name="consumer", EventBusName=bus_name, EventPattern=json.dumps({"source": [SOURCE]}))
        self.events.put_targets(Rule="consumer", EventBusName=bus_name, Targets=[{"Id": "consumer", "Arn": arn}])
        self.received: list[dict[str, Any]] = []
        self.stream_arn = self.dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        self.consumers: dict[str, ShardConsumer] = {}

    def function(self, client: Any = None, remaining_ms: int = 60_000) -> Callable[[dict[str, Any]], Any]:
        """The publisher function as the event source invokes it, publishing through `client`."""
        return lambda event: publisher.handle(event, Context(remaining_ms), self.destination,
                                              client if client is not None else self.events)

    def deliver(self, invoke: Callable[[dict[str, Any]], Any] | None = None, mapping: Mapping = TEMPLATE_MAPPING) -> None:
        """Deliver every record of every shard not yet delivered (a consumer per shard, kept between
        calls: it resumes where it stopped, as the event source mapping does)."""
        invoke = invoke or self.function()
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            consumer = self.consumers.get(shard["ShardId"])
            if consumer is None:
                consumer = self.consumers[shard["ShardId"]] = ShardConsumer(
                    self.streams, self.stream_arn, shard["ShardId"], invoke, mapping, self._dead_letter,
                    Context.invoked_function_arn, sleep=lambda seconds: None)
            consumer.invoke = invoke
            consumer.drain()

    def _dead_letter(self, message: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=self.dead_letters, MessageBody=json.dumps(message))

    def dead_letters_waiting(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.dead_letters,
                                                   AttributeNames=["ApproximateNumberOfMessages",
                                                                   "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(value) for value in attributes["Attributes"].values())

    def consume(self) -> list[dict[str, Any]]:
        """Everything the consumer queue received so far (each message is an event as delivered)."""
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return self.received
            self.received.extend(json.loads(m["Body"]) for m in messages)
            self.sqs.delete_message_batch(QueueUrl=self.queue, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])

    def put(self, image: dict[str, Any], old_seq: int | None = None) -> None:
        """Write a service item (as the store would, conditional on the seq it read)."""
        condition = {} if old_seq is None else {
            "ConditionExpression": "attribute_not_exists(PK)" if old_seq == 0 else "seq = :seq",
            **({} if old_seq == 0 else {"ExpressionAttributeValues": {":seq": {"N": str(old_seq)}}})}
        self.dynamodb.put_item(TableName=self.table_name, Item=image, **condition)


def delivery_problems(events: Iterable[dict[str, Any]], committed: dict[tuple[str | None, str], int]) -> list[str]:
    """Everything wrong with what a consumer received, given the events committed per service
    ((tenant, service_id) -> how many): each committed event exactly once by id (duplicates of an id
    allowed, identical), none that was not committed, sequences 1..n without a gap, every event valid
    by its schema."""
    problems: list[str] = []
    by_id: dict[str, dict[str, Any]] = {}
    sequences: dict[tuple[str | None, str], set[int]] = defaultdict(set)
    for event in events:
        problems += [f"{event.get('detail-type')}: {error}" for error in schema_errors(event)]
        detail = event["detail"]
        earlier = by_id.setdefault(detail["event_id"], event)
        if (earlier["detail"], earlier["detail-type"]) != (detail, event["detail-type"]):
            problems.append(f"event {detail['event_id']} delivered twice with different contents")
        sequences[(detail["tenant"], detail["service_id"])].add(detail["sequence"])
    for service, count in committed.items():
        if sequences.get(service, set()) != set(range(1, count + 1)):
            missing = sorted(set(range(1, count + 1)) - sequences.get(service, set()))
            problems.append(f"service {service}: sequences {sorted(sequences.get(service, set()))}, "
                            f"committed 1..{count} (missing {missing})")
    problems += [f"service {service}: events never committed" for service in sequences if service not in committed]
    return problems
