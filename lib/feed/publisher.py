"""A batch of stream records, as Lambda's DynamoDB event source delivers it -> published events, or
batch item failures (Powertools batch processing, ReportBatchItemFailures).

The events of the whole batch are sent together (PutEvents takes 10 entries a call: publishing record
by record would make a call per change). A record is done when every event it carries was accepted.
From the first record that is not done on, every record is reported as failed: for a stream, Lambda
retries from the lowest reported sequence number, so those records all come again anyway (with the
events of later records that were accepted: delivery is at least once, and event ids are stable, so a
consumer drops the duplicates). A record whose events cannot be derived (a writer's bug) stops the
batch there: the records before it are published, it and those after it are retried by Lambda and,
past the event source's retries, described in the dead-letter queue (README, Re-driving the feed).

The publisher keeps a margin before the function's timeout: what it could not send by then is
reported, not lost in a timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from lib.feed import bus
from lib.feed.events import FeedEvent, UnpublishableRecord, events_of
from lib.observability import logger, metrics
from lib.store.events import Read

SAFETY_MS = 5_000  # stop retrying this long before the function's timeout, to answer in time
DEFAULT_BUDGET_S = 30.0  # without a Lambda context: time to send a batch and retry what is refused


class RecordNotPublished(Exception):
    """A record whose events were not all accepted by the bus (or could not be derived)."""


def sequence_number(record: dict[str, Any]) -> str:
    """The record's identifier in a batch item failure (its stream sequence number)."""
    return str((record.get("dynamodb") or {}).get("SequenceNumber", ""))


def publish_records(records: Sequence[dict[str, Any]], destination: bus.Destination, deadline: float,
                    client: Any = None, read: Read | None = None) -> dict[str, RecordNotPublished]:
    """Publish the events of `records` (in stream order); the records to report as failed, by sequence
    number: {} when everything was accepted, else every record from the first one not done."""
    derived: list[list[FeedEvent]] = []
    stop: RecordNotPublished | None = None
    for record in records:
        try:
            derived.append(events_of(record, read))
        except (UnpublishableRecord, KeyError, TypeError, ValueError, AttributeError) as error:
            # A record that breaks the feed's rules, or a malformed one: this record fails, not the batch.
            logger.error("feed record cannot be published", extra={"sequence_number": sequence_number(record),
                                                                   "reason": str(error)})
            metrics.add_metric(name="FeedUnpublishableRecords", unit="Count", value=1)
            stop = RecordNotPublished(f"unpublishable: {error}")
            break
    entries, owners = [], []
    for position, events in enumerate(derived):
        for event in events:
            entries.append(bus.entry(event, destination))
            owners.append(position)
    outcome = bus.publish(entries, deadline, client)
    refused = sorted({owners[index] for index in outcome.failed})
    first = refused[0] if refused else len(derived) if stop is not None else None
    logger.info("feed batch", extra={"records": len(records), "events": len(entries), "calls": outcome.calls,
                                     "retried": outcome.retried, "refused": len(outcome.failed),
                                     "failed_from": None if first is None else sequence_number(records[first])})
    metrics.add_metric(name="FeedEventsPublished", unit="Count", value=len(entries) - len(outcome.failed))
    if outcome.retried:
        metrics.add_metric(name="FeedEventsRetried", unit="Count", value=outcome.retried)
    if first is None:
        return {}
    failures: dict[str, RecordNotPublished] = {}
    for position in range(first, len(records)):
        if position == first and stop is not None and position == len(derived):
            reason = stop
        elif position == first:
            errors = sorted({outcome.failed[i] for i, owner in enumerate(owners) if owner == position
                             and i in outcome.failed})
            reason = RecordNotPublished(f"the bus refused its events: {', '.join(errors)}")
        else:
            reason = RecordNotPublished("after a record that failed: Lambda retries from that one")
        failures[sequence_number(records[position])] = reason
    return failures


def deadline_of(context: Any) -> float:
    """A bus.monotonic() reading to finish sending by: the invocation's remaining time less a margin."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = (remaining() - SAFETY_MS) / 1000 if callable(remaining) else DEFAULT_BUDGET_S
    return bus.monotonic() + max(0.0, budget)


def handle(event: dict[str, Any], context: Any, destination: bus.Destination, client: Any = None,
           read: Read | None = None) -> dict[str, Any]:
    """The publisher function: a DynamoDB stream event -> {"batchItemFailures": [...]}. `read`: the
    active children of a conversation (events_of), given by the function (lib.rules.feed)."""
    failures = publish_records(event.get("Records") or [], destination, deadline_of(context), client, read)

    def outcome(record: DynamoDBRecord) -> None:
        failure = failures.get(str(record.dynamodb.sequence_number) if record.dynamodb else "")
        if failure is not None:
            raise failure

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return dict(process_partial_response(event=event, record_handler=outcome, processor=processor, context=context))
