"""A stream record of the table -> the events it carries (docs/DESIGN.md, Change feed).

Every committed change writes the conversation's service item, which counts the service's events so
far (`seq`) and holds the events of that write (`ev`, in order). So a record is read like this:

* INSERT / MODIFY of a service item whose events so far (`seq + cx`) advanced: its `ev`, event k
  (1-based) getting sequence OldImage's `seq + cx` + k. An end that relied on the summary of active
  children (lib.store.summary) left its events to complete from the images: a TaskCompleted names
  the old image's summary entry of its task, a ServiceCompleted is followed by the cascade of the
  old image's summary (lib.store.events.complete), or, without one, by its active children as
  `read` finds them. The events must be the advance: anything else is
  a bug in the writer and the record goes to the failure path (logged, retried, then the dead-letter
  queue), never guessed.
  A write that produced no event leaves `seq` alone, so its stale `ev` is ignored.
  A service item written over another item at its key (an import over the fence of a deleted
  conversation with that id) counts from 0: it is another incarnation of the id, and an imported
  conversation's event ids also name its incarnation (ServiceItem.inc), so they never repeat the
  ids of the deleted conversation's events.
* MODIFY of a service item into its erasure's fence (`type` erased) by a DELETE: `seq` advanced by
  one, `ev` = [ServiceDeleted], its owner and sequence from the new image. A purge's fence keeps
  `seq`: nothing (its erasure record carries the event).
* INSERT of an erasure record (purge): its `ev`, one entry per purged service, each naming its
  service and sequence (the record holds many services). A DELETE's record carries none.
* REMOVE of a service item by DynamoDB's TTL (userIdentity: the dynamodb.amazonaws.com service):
  ServiceExpired, sequence OldImage's `seq + cx` + 1. The removal of a fence (by its erasure, or by TTL) is
  nothing: the deletion was published when the fence was written.
* Everything else (states, tasks, locks, idempotency records, jobs, grants): nothing.

What the publisher publishes is what the record holds (stream view NEW_AND_OLD_IMAGES), with one
exception: a service's end that had no trusted summary (no `ax` in the old image) is followed by the
conversation's active children, which `read` (handed by the function) fetches and which must be the
ones the old image counts (lib.store.events.cascade_read); the conversation's erasure and TTL wait
for it (lib.store.erasure.held_until).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from lib.clock import format_ms
from lib.store import events as stored_events
from lib.store.codec import decode_item
from lib.store.items import ServiceItem, from_plain
from lib.store.records import ErasedService, Erasure

_T = TypeVar("_T")

SCHEMA_VERSION = 1
EVENT_NAMES = (
    "ServiceStarted", "ServiceAssociated", "ServiceCompleted", "ServiceExpirationChanged", "ServiceDeleted",
    "ServicePurged", "ServiceExpired", "StateStarted", "StateCompleted", "TaskStarted", "TaskCompleted",
    "AttachedDataChanged",
)
# Who removes an item when its TTL passes (DynamoDB Streams' userIdentity of TTL deletions).
TTL_PRINCIPAL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


class UnpublishableRecord(Exception):
    """A record whose events cannot be known without guessing (the writer broke the feed's rules)."""


@dataclass(frozen=True)
class FeedEvent:
    """One event of one service, as the bus carries it."""

    name: str  # the detail-type
    tenant: str  # the tenant key, "<ContactCenterId>|<GroupId>"
    service_id: str
    sequence: int
    occurred_ms: int
    customer_id: str | None
    contact_key: str | None
    data: dict[str, Any]
    incarnation: str | None = None  # the conversation's ServiceItem.inc (an imported one's)

    @property
    def event_id(self) -> str:
        """Stable across redeliveries: derived from what the event is, never from when it was sent.
        An imported conversation's events also name its incarnation: an import keeps service ids,
        and its sequences start at 1 again where a deleted conversation with the same id published
        its own (their ids would otherwise be the same, and a consumer would drop the new events as
        repeats)."""
        name = f"{self.tenant}|{self.service_id}|{self.sequence}"
        if self.incarnation is not None:
            name += f"|{self.incarnation}"
        return hashlib.sha256(name.encode()).hexdigest()[:32]

    def detail(self) -> dict[str, Any]:
        """The event's `detail` (contract §10)."""
        contact_center, _, group = self.tenant.partition("|")
        return {
            "schema_version": SCHEMA_VERSION,
            "event_id": self.event_id,
            "occurred_at": format_ms(self.occurred_ms),
            "tenant": contact_center or None,
            "group": group or None,
            "service_id": self.service_id,
            "customer_id": self.customer_id,
            "contact_key": self.contact_key,
            "sequence": self.sequence,
            "data": self.data,
        }


def events_of(record: dict[str, Any], read: stored_events.Read | None = None) -> list[FeedEvent]:
    """The events a stream record (as Lambda delivers it) carries, in order; [] for most records.
    `read`: a conversation's active children, for the one kind of record whose events need them (a
    service's end without a trusted summary; without `read`, that record is unpublishable).
    Raises UnpublishableRecord when the record breaks the rules above."""
    change = record.get("eventName")
    images = record.get("dynamodb") or {}
    if change in ("INSERT", "MODIFY"):
        new = decode_item(images.get("NewImage")) or {}
        kind = new.get("type")
        if kind == ServiceItem.TYPE:
            return _service_write(decode_item(images.get("OldImage")) or {}, new, read)
        if kind == ErasedService.TYPE:
            return _deleted(decode_item(images.get("OldImage")) or {}, new)
        if kind == Erasure.TYPE and change == "INSERT":
            return _erasure(new)
        return []
    if change == "REMOVE":
        old = decode_item(images.get("OldImage")) or {}
        if old.get("type") == ServiceItem.TYPE and _removed_by_ttl(record):
            return [_expired(old, _record_time_ms(images))]
    return []


def _so_far(image: dict[str, Any], name: str) -> int:
    """A service's events so far as an image holds them: `seq`, and `cx` (lib.store.events)."""
    return _count(image.get("seq"), name) + _count(image.get("cx"), name)


def _service_write(old: dict[str, Any], new: dict[str, Any], read: stored_events.Read | None = None
                   ) -> list[FeedEvent]:
    # A service item written over something else at its key (an import over the fence of a deleted
    # conversation with that id: lib.store.erasure.take_over) starts its own count.
    before = _so_far(old, "OldImage") if old.get("type") == ServiceItem.TYPE else 0
    after = _so_far(new, "NewImage")
    if after == before:
        return []
    service = _typed(ServiceItem, from_plain(new), "NewImage")
    where = f"service {service.service_id}"
    if after < before:
        raise UnpublishableRecord(f"{where}: seq went back from {before} to {after}")
    entries = new.get("ev")
    if isinstance(entries, list):
        try:
            entries = stored_events.complete(entries, old, new, read)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise UnpublishableRecord(f"{where}: an event to complete from the images lacks {error!r}") from None
    if not isinstance(entries, list) or len(entries) != after - before:
        held = len(entries) if isinstance(entries, list) else "no"
        raise UnpublishableRecord(f"{where}: seq advanced by {after - before} ({before} -> {after}) "
                                  f"but ev holds {held} events")
    return [FeedEvent(name, service.tenant, service.service_id, before + k, at, service.customer_id,
                      service.contact_key, data, service.inc)
            for k, (name, at, data) in enumerate((_entry(entry, where) for entry in entries), start=1)]


def _deleted(old: dict[str, Any], new: dict[str, Any]) -> list[FeedEvent]:
    """A service item turned into its erasure's fence. By a DELETE: `seq` advanced by one and `ev`
    holds ServiceDeleted, completed here from the new image (its owner, its sequence). By a purge:
    `seq` unchanged (the erasure record carries ServicePurged): nothing. Its later removal (by the
    erasure, or by TTL) publishes nothing either."""
    before, after = _so_far(old, "OldImage"), _so_far(new, "NewImage")
    if "seq" not in new or after == before:
        return []
    where = f"service {new.get('service_id')} (deleted)"
    entries = new.get("ev")
    if after != before + 1 or not isinstance(entries, list) or len(entries) != 1:
        raise UnpublishableRecord(f"{where}: a deletion moves seq by one with its one event ({before} -> {after})")
    name, at, data = _entry(entries[0], where)
    tenant, service_id = new.get("tenant"), new.get("service_id")
    if name != "ServiceDeleted" or not isinstance(tenant, str) or not isinstance(service_id, str):
        raise UnpublishableRecord(f"{where}: not a ServiceDeleted of a named service")
    return [FeedEvent(name, tenant, service_id, after, at, new.get("customer_id"), new.get("contact_key"), data,
                      _incarnation(new.get("inc"), where))]


def _erasure(new: dict[str, Any]) -> list[FeedEvent]:
    entries = new.get("ev")
    if entries is None:
        return []  # an erasure that carries no events (written before the feed existed)
    erasure = _typed(Erasure, from_plain(new), "NewImage")
    where = f"erasure {erasure.erasure_id}"
    if not isinstance(entries, list):
        raise UnpublishableRecord(f"{where}: ev is not a list")
    found = []
    for entry in entries:
        name, at, data = _entry(entry, where)
        service_id, sequence = entry.get("service_id"), entry.get("sequence")
        if not isinstance(service_id, str) or not isinstance(sequence, int) or sequence < 1:
            raise UnpublishableRecord(f"{where}: an entry without its service_id and sequence")
        found.append(FeedEvent(name, erasure.tenant, service_id, sequence, at, entry.get("customer_id"),
                               entry.get("contact_key"), data, _incarnation(entry.get("inc"), where)))
    return found


def _expired(old: dict[str, Any], removed_ms: int) -> FeedEvent:
    service = _typed(ServiceItem, from_plain(old), "OldImage")
    return FeedEvent("ServiceExpired", service.tenant, service.service_id, _so_far(old, "OldImage") + 1,
                     removed_ms, service.customer_id, service.contact_key,
                     {"expiration_time": format_ms(service.expires_ms)}, service.inc)


def _incarnation(value: Any, where: str) -> str | None:
    """ServiceItem.inc as an image or an erasure entry carries it (absent: an id made here)."""
    if value is not None and not isinstance(value, str):
        raise UnpublishableRecord(f"{where}: inc is not a string")
    return value


def _typed(kind: type[_T], item: Any, where: str) -> _T:
    """The stored item as its type (a record's image that is not one cannot be published)."""
    if not isinstance(item, kind):
        raise UnpublishableRecord(f"{where}: not a {kind.__name__} item")
    return item


def _entry(entry: Any, where: str) -> tuple[str, int, dict[str, Any]]:
    if not isinstance(entry, dict) or entry.get("name") not in EVENT_NAMES:
        name = entry.get("name") if isinstance(entry, dict) else entry
        raise UnpublishableRecord(f"{where}: {name!r} is not an event of the feed")
    at, data = entry.get("at"), entry.get("data", {})
    if not isinstance(at, int) or not isinstance(data, dict):
        raise UnpublishableRecord(f"{where}: {entry['name']} without its time or data")
    return entry["name"], at, data


def _count(value: Any, image: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or value < 0:
        raise UnpublishableRecord(f"{image}.seq is {value!r}, not a count")
    return value


def _removed_by_ttl(record: dict[str, Any]) -> bool:
    identity = record.get("userIdentity") or {}
    return all(identity.get(key) == value for key, value in TTL_PRINCIPAL.items())


def _record_time_ms(images: dict[str, Any]) -> int:
    """When the stream recorded the change: Lambda gives epoch seconds; boto3 (the re-drive) a datetime."""
    moment = images.get("ApproximateCreationDateTime")
    if isinstance(moment, datetime):
        return int(moment.timestamp() * 1000)
    if isinstance(moment, (int, float)):
        return int(moment * 1000)
    raise UnpublishableRecord("a TTL removal without its ApproximateCreationDateTime")
