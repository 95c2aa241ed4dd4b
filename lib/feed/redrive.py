"""Re-driving the feed: publishing the batches Lambda gave up on (README, Change feed).

When the publisher cannot publish a batch within its retries (or a record grows older than the event
source allows), Lambda sends a description of the batch to the on-failure destination, the feed's
dead-letter queue: the stream, the shard and the first and last sequence numbers
(`DDBStreamBatchInfo`), not the records. The records themselves stay in the stream for 24 hours. The
re-drive reads each message, fetches those records again from the stream by shard and sequence
numbers, publishes them through the same code as the publisher function (publisher.publish_records)
and deletes the message only when every record of it is published. A message it cannot complete
stays in the queue (visible again after its visibility timeout) and is reported, with the reason.

The clients are passed in: scripts/feed_redrive.py builds them (a stack's resources, or the local
run's endpoints).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lib.feed import bus
from lib.feed.publisher import publish_records
from lib.store.events import Read

VISIBILITY_SECONDS = 300  # a message being re-driven is hidden this long from another re-drive
EMPTY_PAGES = 5  # GetRecords may answer empty pages before reaching records of an open shard


class RecordsGone(Exception):
    """The stream no longer holds the described records (past its 24-hour retention)."""


def delivered_record(record: dict[str, Any], stream_arn: str, region: str = "") -> dict[str, Any]:
    """A record as GetRecords returns it (boto3) -> as Lambda's event source delivers it."""
    images = dict(record["dynamodb"])
    moment = images.get("ApproximateCreationDateTime")
    if isinstance(moment, datetime):
        images["ApproximateCreationDateTime"] = int(moment.timestamp())
    delivered = {"eventID": record.get("eventID"), "eventName": record["eventName"], "eventVersion": "1.1",
                 "eventSource": "aws:dynamodb", "awsRegion": record.get("awsRegion") or region,
                 "dynamodb": images, "eventSourceARN": stream_arn}
    identity = record.get("userIdentity")
    if identity:
        # GetRecords names its fields PrincipalId / Type; Lambda delivers principalId / type (a TTL
        # removal is told by them: read as GetRecords gives them, ServiceExpired would be lost here).
        delivered["userIdentity"] = {"type": identity.get("Type", identity.get("type")),
                                     "principalId": identity.get("PrincipalId", identity.get("principalId"))}
    return delivered


def batch_info(body: str) -> dict[str, Any] | None:
    """The batch a dead-letter message describes, or None for a message that describes none."""
    try:
        info = json.loads(body).get("DDBStreamBatchInfo")
    except (ValueError, AttributeError):
        return None
    needed = ("streamArn", "shardId", "startSequenceNumber", "endSequenceNumber")
    return info if isinstance(info, dict) and all(isinstance(info.get(k), str) for k in needed) else None


def fetch_records(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The described records, read again from the stream, as Lambda delivers them. RecordsGone when
    the stream no longer has them all."""
    start, end = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    try:
        iterator = streams.get_shard_iterator(StreamArn=info["streamArn"], ShardId=info["shardId"],
                                              ShardIteratorType="AT_SEQUENCE_NUMBER",
                                              SequenceNumber=info["startSequenceNumber"])["ShardIterator"]
    except streams.exceptions.TrimmedDataAccessException as error:
        raise RecordsGone(f"shard {info['shardId']}: records from {start} are past the stream's retention") from error
    except streams.exceptions.ResourceNotFoundException as error:
        raise RecordsGone(f"shard {info['shardId']} or its stream no longer exists") from error
    records: list[dict[str, Any]] = []
    empty = 0
    while iterator is not None and empty < EMPTY_PAGES:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        iterator = page.get("NextShardIterator")
        found = page.get("Records", [])
        empty = 0 if found else empty + 1
        for record in found:
            if int(record["dynamodb"]["SequenceNumber"]) > end:
                iterator = None
                break
            records.append(delivered_record(record, info["streamArn"]))
        if records and int(records[-1]["dynamodb"]["SequenceNumber"]) == end:
            break
    if not records or int(records[0]["dynamodb"]["SequenceNumber"]) != start \
            or int(records[-1]["dynamodb"]["SequenceNumber"]) != end:
        raise RecordsGone(f"shard {info['shardId']}: the stream no longer holds every record from {start} to {end}")
    return records


@dataclass
class Report:
    """What a re-drive did."""

    redriven: int = 0  # messages whose records are all published (deleted from the queue)
    records: int = 0
    left: list[str] = field(default_factory=list)  # messages left in the queue, with the reason

    def lines(self) -> list[str]:
        return [f"re-driven: {self.redriven} batch(es), {self.records} record(s)",
                f"left in the queue: {len(self.left)}", *(f"  {reason}" for reason in self.left)]


def redrive(sqs: Any, queue_url: str, streams: Any, destination: bus.Destination, events_client: Any,
            limit: int | None = None, dry_run: bool = False, read: Read | None = None) -> Report:
    """Re-drive the messages of the dead-letter queue (at most `limit`); see the module doc. `read`:
    as the publisher's (a conversation's active children, for an end without a trusted summary)."""
    report = Report()
    seen = 0
    handled: set[str] = set()
    while limit is None or seen < limit:
        # One message at a time: its batch is sent whole, with no deadline (_redrive_one), so each
        # message's hidden time starts when its turn comes, not when a group of them was received.
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1,
                                       VisibilityTimeout=VISIBILITY_SECONDS, WaitTimeSeconds=1).get("Messages", [])
        if not messages or messages[0]["MessageId"] in handled:
            break  # empty, or back again after its hidden time: every message has had its turn
        for message in messages:
            handled.add(message["MessageId"])
            seen += 1
            reason = _redrive_one(message, streams, destination, events_client, report, dry_run, read)
            if reason is None and not dry_run:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            elif reason is not None:
                report.left.append(f"{message['MessageId']}: {reason}")
            if dry_run:  # leave it for the real run, visible again at once
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=0)
        if dry_run:
            break
    return report


def _redrive_one(message: dict[str, Any], streams: Any, destination: bus.Destination, events_client: Any,
                 report: Report, dry_run: bool, read: Read | None = None) -> str | None:
    """None when every record of the message is published (or, dry run, could be fetched)."""
    info = batch_info(message.get("Body", ""))
    if info is None:
        return "not a description of a stream batch (DDBStreamBatchInfo)"
    where = f"shard {info['shardId']} {info['startSequenceNumber']}..{info['endSequenceNumber']}"
    try:
        records = fetch_records(streams, info)
    except RecordsGone as gone:
        return f"{where}: {gone} (README, Change feed: after 24 hours)"
    if dry_run:
        report.records += len(records)
        return None
    # No deadline: a script has no timeout, and a message's batch must go out whole however long it
    # takes (up to 100 records, each of up to CASCADE_MAX events); retries stay bounded by bus.ROUNDS.
    failures = publish_records(records, destination, math.inf, events_client, read)
    if failures:
        first = next(iter(failures))
        return f"{where}: record {first} not published: {failures[first]}"
    report.redriven += 1
    report.records += len(records)
    return None
