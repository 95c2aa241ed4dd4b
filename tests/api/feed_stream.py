"""The change feed as the store writes it, read back in-process: the moto table's DynamoDB Stream
(NEW_AND_OLD_IMAGES, read with boto3's dynamodbstreams client) decoded into events by the rule of
docs/DESIGN.md, "Change feed" — a test-only reading of the records, independent of the publisher
(lib/feed), so that the store's side is checked on its own:

* INSERT / MODIFY of a service item whose events so far (`seq + cx`) grew: its `ev`, event k getting
  `old (seq + cx) + k`, and the events must be the growth (anything else fails the test). An end
  that relied on the summary of active children (`act`) left events to complete from the images: a
  TaskCompleted naming (`from`) the old image's entry of its task (type, state, duration from its
  start), and a ServiceCompleted (`cascade`) whose duration comes from the new image's start and
  which the old image's summary follows (or, when the old image has no trusted summary, `ax`, the
  conversation's active children read from the test table, as many as the old image's `open`): each
  state by id with its tasks by id, then the tasks in no active state;
  the same for the MODIFY that turns a service item into its erasure's fence (`type` erased: a
  DELETE grows `seq` by one with ServiceDeleted; a purge's fence keeps it);
* INSERT of an erasure record: its `ev` entries, each naming its service and sequence;
* REMOVE of a service item by TTL (userIdentity of the DynamoDB service): ServiceExpired, `old seq + 1`;
* everything else: nothing.

moto writes a transaction's items one by one, each with its stream record; a cancelled transaction
must take its records back (as the local run's embedded DynamoDB does): `_whole_transactions`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from lib.clock import format_ms
from lib.store.codec import decode_item

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@dataclass
class Event:
    name: str
    tenant: str
    service_id: str
    sequence: int
    at: int
    customer_id: str | None
    contact_key: str | None
    data: dict[str, Any]
    incarnation: str | None = None  # an imported conversation's `inc` (its id may have been used before)

    @property
    def brief(self) -> tuple[str, int]:
        return self.name, self.sequence


def events_of(record: dict[str, Any]) -> list[Event]:
    """The events one stream record carries (see the module doc)."""
    change, images = record["eventName"], record["dynamodb"]
    new, old = decode_item(images.get("NewImage")) or {}, decode_item(images.get("OldImage")) or {}
    if change in ("INSERT", "MODIFY") and new.get("type") in ("service", "erased") and "seq" in new:
        # A service written over another item at its key (an import over a deleted one's fence): from 0.
        counted = old if old.get("type") == new.get("type") or new.get("type") == "erased" else {}
        before, after = counted.get("seq", 0) + counted.get("cx", 0), new.get("seq", 0) + new.get("cx", 0)
        assert after >= before, f"seq went back: {record}"
        if after == before:
            return []
        entries = _completed(new.get("ev"), old, new)
        assert isinstance(entries, list) and len(entries) == after - before, \
            f"seq grew by {after - before} but ev holds {entries!r}"
        return [Event(e["name"], new["tenant"], new["service_id"], before + k, e["at"], new.get("customer_id"),
                      new.get("contact_key"), e["data"], new.get("inc")) for k, e in enumerate(entries, start=1)]
    if change == "INSERT" and new.get("type") == "erasure":
        return [Event(e["name"], new["tenant"], e["service_id"], e["sequence"], e["at"], e["customer_id"],
                      e["contact_key"], e["data"], e.get("inc")) for e in new.get("ev", [])]
    if change == "REMOVE" and old.get("type") == "service" and record.get("userIdentity") == TTL_IDENTITY:
        return [Event("ServiceExpired", old["tenant"], old["service_id"], old.get("seq", 0) + old.get("cx", 0) + 1,
                      old["expires_ms"],
                      old.get("customer_id"), old.get("contact_key"),
                      {"expiration_time": format_ms(old["expires_ms"])}, old.get("inc"))]
    return []


def _completed(entries: Any, old: dict[str, Any], new: dict[str, Any]) -> Any:
    """`ev` with the events an end left to complete from the images completed (see the module doc)."""
    if not isinstance(entries, list):
        return entries
    act = old.get("act") or {}
    done: list[dict[str, Any]] = []
    for entry in entries:
        if "from" in entry:
            summary = act[entry["from"]]
            data = {**entry["data"], "task_type": summary.get("y"), "state_id": summary.get("s"),
                    "duration": entry["at"] - summary["m"]}
            done.append({"name": entry["name"], "at": entry["at"], "data": data})
        elif entry.get("cascade"):
            done.append({"name": entry["name"], "at": entry["at"],
                         "data": {**entry["data"], "duration": entry["at"] - new["started_ms"]}})
            if "ax" not in old:  # no trusted summary: the children the item counted, read from the table
                act = _active_children(old)
            states = sorted(int(k[1:]) for k in act if k[0] == "s")
            tasks = sorted(int(k[1:]) for k in act if k[0] == "t")
            order = [x for s in states for x in [("state", s)] + [("task", t) for t in tasks
                                                                     if act[f"t{t}"].get("s") == s]]
            order += [("task", t) for t in tasks if act[f"t{t}"].get("s") not in states]
            for kind, child in order:
                summary = act[f"{kind[0]}{child}"]
                at = max(entry["at"], summary["m"])
                data = {f"{kind}_id": child, f"{kind}_type": summary.get("y")}
                if kind == "task":
                    data["state_id"] = summary.get("s")
                data.update({"completed": {"timestamp": format_ms(at)}, "disposition": None, "disposition_desc": None,
                             "duration": at - summary["m"], "reason": "service_completed"})
                done.append({"name": "StateCompleted" if kind == "state" else "TaskCompleted", "at": at, "data": data})
        else:
            done.append(entry)
    return done


_TABLE: dict[str, Any] = {}  # the feed fixture's DynamoDB client and table name, for _active_children


def _active_children(old: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An ended service's active children as its old image counted them (`open`), read from the test
    table like a summary (`act`): every state and task of the conversation without `completed_ms`,
    less the tasks of a state whose big end was completing them (`cascading`). The count must match."""
    client, name = _TABLE["client"], _TABLE["name"]
    items, start = [], None
    while True:
        request: dict[str, Any] = {"TableName": name, "KeyConditionExpression": "PK = :pk",
                                   "ExpressionAttributeValues": {":pk": {"S": old["PK"]}}, "ConsistentRead": True}
        if start:
            request["ExclusiveStartKey"] = start
        page = client.query(**request)
        items += [decode_item(raw) for raw in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    cascading = old.get("cascading") or {}
    act: dict[str, dict[str, Any]] = {}
    for item in items:
        if item.get("type") not in ("state", "task") or item.get("completed_ms") is not None:
            continue
        kind = item["type"]
        if kind == "task" and item.get("state_id") is not None and str(item["state_id"]) in cascading:
            continue
        entry = {"m": item["started_ms"], "y": item.get(f"{kind}_type")}
        if kind == "task":
            entry["s"] = item.get("state_id")
        act[f"{kind[0]}{item[kind + '_id']}"] = entry
    assert len(act) == old["open"], f"the end counted {old['open']} active children, the table holds {len(act)}"
    return act


@dataclass
class Feed:
    """The stream of the test table, read from where the last read stopped."""

    streams: Any
    table_name: str
    iterator: str | None = None
    seen: list[Event] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        found = []
        while True:
            page = self.streams.get_records(ShardIterator=self.iterator, Limit=1000)
            self.iterator = page["NextShardIterator"]
            found += page["Records"]
            if not page["Records"]:
                return found

    def writes(self) -> list[list[Event]]:
        """The events committed since the last take, grouped by the write (stream record) that
        committed them."""
        found = [events for events in (events_of(record) for record in self.records()) if events]
        self.seen += [event for events in found for event in events]
        return found

    def take(self) -> list[Event]:
        """The events committed since the last take."""
        return [event for events in self.writes() for event in events]

    def names(self) -> list[str]:
        return [event.name for event in self.take()]

    def by_service(self) -> dict[str, list[Event]]:
        found: dict[str, list[Event]] = defaultdict(list)
        for event in self.seen:
            found[event.service_id].append(event)
        return found

    def assert_gap_free(self) -> None:
        """Every service's sequences seen so far are 1, 2, ... in stream order: no gap, no repeat (an
        id imported again after its deletion is another incarnation, counted from 1 again)."""
        self.take()
        incarnations: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        for event in self.seen:
            incarnations[(event.service_id, event.incarnation)].append(event.sequence)
        for (service_id, incarnation), numbers in incarnations.items():
            assert numbers == list(range(1, len(numbers) + 1)), \
                f"service {service_id} (incarnation {incarnation}): sequences {numbers}"


def _whole_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancelled transaction takes back the stream records of the items moto had written for it."""
    from moto.dynamodb.models import DynamoDBBackend

    inner = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        shards = {id(t.stream_shard): (t.stream_shard, len(t.stream_shard.items)) for t in self.tables.values()
                  if t.stream_shard is not None}
        try:
            return inner(self, transact_items)
        except Exception:
            for shard, length in shards.values():
                del shard.items[length:]
            raise

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", transact_write_items)


@pytest.fixture
def feed(table, monkeypatch) -> Feed:
    """The test table's stream (enabled here if the template's table has none), from its start; at
    the end of the test, every service's sequences are checked gap-free."""
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    _whole_transactions(monkeypatch)
    name = os.environ["TABLE_NAME"]
    described = table.describe_table(TableName=name)["Table"]
    if not described.get("StreamSpecification", {}).get("StreamEnabled"):
        table.update_table(TableName=name, StreamSpecification={"StreamEnabled": True,
                                                                "StreamViewType": "NEW_AND_OLD_IMAGES"})
        described = table.describe_table(TableName=name)["Table"]
    assert described["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    streams = boto3.client("dynamodbstreams", region_name=os.environ["AWS_DEFAULT_REGION"])
    arn = described["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    found = Feed(streams, name, iterator["ShardIterator"])
    _TABLE.update(client=table, name=name)
    try:
        yield found
        found.assert_gap_free()
    finally:
        _TABLE.clear()
