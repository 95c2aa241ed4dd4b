"""Events -> EventBridge PutEvents entries, and publishing them with retries.

PutEvents takes at most 10 entries and 256 KB a call, and may accept some entries of a call and
refuse others (`FailedEntryCount`, an `ErrorCode` on each refused entry): the refused ones are sent
again, alone, after a jittered exponential pause, until they are accepted, their error is one a
retry cannot cure, or the invocation's time is up (checked before every call, the first round's
included: a batch of big cascades stops sending in time). Whatever is still refused or unsent then
is reported to the caller, which turns the records that carried it into batch item failures (publisher.py).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lib.feed.events import FeedEvent

MAX_ENTRIES = 10  # entries a PutEvents call takes
MAX_REQUEST_BYTES = 256 * 1024  # PutEvents' size limit for one call (entries summed)
DEFAULT_SOURCE = "context-services"
ROUNDS = 8  # sends of an entry at most in one invocation (the first and 7 retries)
LATE = "DeadlineReached"  # an entry not sent: the invocation's time was up
monotonic = time.monotonic  # the clock a deadline is read on (tests give the module another)
BASE_PAUSE, MAX_PAUSE = 0.1, 2.0  # seconds: jittered exponential back-off between rounds
# Errors a retry cannot cure: the record fails at once (and, past Lambda's retries, goes to the
# dead-letter queue) instead of spending the invocation on them.
PERMANENT_ERRORS = {"MalformedDetail", "InvalidArgument", "ValidationException", "AccessDeniedException",
                    "NotAuthorizedForSourceException", "NotAuthorizedForDetailTypeException",
                    "ResourceNotFoundException"}


@dataclass(frozen=True)
class Destination:
    """Where events go: the bus and the `source` they carry (template parameters)."""

    bus: str
    source: str = DEFAULT_SOURCE

    @classmethod
    def from_environment(cls) -> Destination:
        bus = os.environ.get("EVENT_BUS_NAME", "").strip()
        if not bus:
            raise RuntimeError("EVENT_BUS_NAME is not set: the publisher needs the bus the template creates")
        return cls(bus, os.environ.get("EVENT_SOURCE", "").strip() or DEFAULT_SOURCE)


def entry(event: FeedEvent, destination: Destination) -> dict[str, Any]:
    """The PutEvents entry of one event."""
    return {"Source": destination.source, "DetailType": event.name, "EventBusName": destination.bus,
            "Detail": json.dumps(event.detail(), separators=(",", ":"), ensure_ascii=False)}


def entry_size(item: dict[str, Any]) -> int:
    """An entry's size as EventBridge counts it: Source, DetailType, Detail and Resources in UTF-8
    (plus 14 bytes for a Time, which these entries do not set)."""
    return sum(len(item.get(name, "").encode()) for name in ("Source", "DetailType", "Detail")) + sum(
        len(resource.encode()) for resource in item.get("Resources", ())) + (14 if "Time" in item else 0)


def calls(items: Sequence[tuple[int, dict[str, Any]]]) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """(index, entry) pairs cut, in order, into PutEvents calls of at most 10 entries and 256 KB."""
    current: list[tuple[int, dict[str, Any]]] = []
    size = 0
    for index, item in items:
        length = entry_size(item)
        if current and (len(current) == MAX_ENTRIES or size + length > MAX_REQUEST_BYTES):
            yield current
            current, size = [], 0
        current.append((index, item))
        size += length
    if current:
        yield current


@dataclass
class Outcome:
    """What became of a list of entries: indexes never accepted, with the last error of each."""

    failed: dict[int, str] = field(default_factory=dict)
    calls: int = 0
    retried: int = 0  # entries sent again after a refusal


@lru_cache(maxsize=1)
def events_client() -> Any:
    """The EventBridge client, built once per execution environment (AWS_ENDPOINT_URL_EVENTBRIDGE, as any
    botocore endpoint variable, points it at the local run's embedded bus). Short timeouts: a call
    that hangs must not use up the invocation; botocore's own retries (standard mode) come first."""
    return boto3.client("events", config=Config(connect_timeout=2, read_timeout=10,
                                                retries={"mode": "standard", "max_attempts": 3}))


wait: Callable[[float], None] = time.sleep  # the back-off's pause (tests replace it)


def publish(entries: Sequence[dict[str, Any]], deadline: float, client: Any = None,
            sleep: Callable[[float], None] | None = None, clock: Callable[[], float] | None = None) -> Outcome:
    """Send every entry, retrying refused ones with back-off until `deadline` (a `clock` reading,
    `monotonic` by default; math.inf: no deadline, retries still at most ROUNDS sends)."""
    client = client if client is not None else events_client()
    sleep = sleep or wait
    clock = clock or monotonic
    outcome = Outcome()
    pending = list(enumerate(entries))
    for attempt in range(ROUNDS):
        refused: list[tuple[int, dict[str, Any]]] = []
        sent: set[int] = set()
        for call in calls(pending):
            if outcome.calls and clock() >= deadline:
                # Out of time (a batch of big cascades): what is left unsent is reported, not lost in a
                # timeout (at least one call goes out per invocation, so a retry always gets further).
                for index, _ in pending:
                    if index not in sent:
                        outcome.failed.setdefault(index, LATE)  # an earlier round's refusal says more
                return outcome
            outcome.calls += 1
            for (index, item), error in zip(call, _send(client, [item for _, item in call])):
                sent.add(index)
                if error is None:
                    outcome.failed.pop(index, None)
                    continue
                outcome.failed[index] = error
                if error not in PERMANENT_ERRORS:
                    refused.append((index, item))
        if not refused:
            break
        pause = random.uniform(0, min(MAX_PAUSE, BASE_PAUSE * 2 ** attempt))
        if attempt == ROUNDS - 1 or clock() + pause >= deadline:
            break
        sleep(pause)
        outcome.retried += len(refused)
        pending = refused
    return outcome


def _send(client: Any, items: list[dict[str, Any]]) -> list[str | None]:
    """One PutEvents call: per entry, None (accepted) or its error code. A call that fails as a whole
    (throttled, unreachable) refuses every entry with the call's error."""
    try:
        reply = client.put_events(Entries=items)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code") or "ClientError"
        return [code] * len(items)
    except BotoCoreError as error:
        return [type(error).__name__] * len(items)
    results = reply.get("Entries") or []
    if len(results) != len(items):  # never expected: treat the call as refused rather than guess
        return ["IncompleteReply"] * len(items)
    return [result.get("ErrorCode") if result.get("ErrorCode") else None for result in results]
