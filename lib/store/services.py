"""Services (§4, §7): create, read, and every write to a service item — end, associate, expiration,
attached data — with the auto-complete bookkeeping every write carries. Each turns a failed condition
into the domain's error itself (404, 409, 400), so the rules above never see DynamoDB.

Every write carries the request's token (`op`): when a reply is lost and botocore retries the call,
the retry fails its condition against our own earlier write, which the token recognises as success.
One commit point per operation (§2): the service's conditional write; work before it only raises
children's TTL (lib.store.expiration), work after it only lowers them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib.clock import format_ms
from lib.errors import Conflict, NotFound, PayloadTooLarge, ValidationError
from lib.status import Status
from lib.store import cascades, events, recording, summary, table
from lib.store import conditions as C
from lib.store import keys as K
from lib.store.concurrency import ATTEMPTS, Write, backoff
from lib.store.events import Event
from lib.store.expiration import expiration_clauses, lowering, raise_children_ttl, written
from lib.store.expressions import Expression, Raw, Update
from lib.store.idempotency import Claim
from lib.store.items import Completion, Expiry, ServiceItem, decode, from_plain
from lib.store.table import ConcurrentChange, ConditionFailed


def not_found(service_id: str) -> NotFound:
    return NotFound(f"service {service_id} not found")


def decode_service(item: dict[str, Any] | None) -> ServiceItem | None:
    service = from_plain(item)
    return service if isinstance(service, ServiceItem) else None


def stored_service(raw: dict[str, Any] | None) -> ServiceItem | None:
    """The service of an item as stored (attribute values); None for none or another entity."""
    service = decode(raw)
    return service if isinstance(service, ServiceItem) else None


def live_service(item: dict[str, Any] | None, service_id: str, now: int) -> ServiceItem:
    service = decode_service(item)
    if service is None or not service.is_live(now):
        raise not_found(service_id)
    return service


# ---------------------------------------------------------------- reading a service


def read_service(tenant: str, service_id: str, now: int) -> ServiceItem:
    """The live service (strongly consistent); 404 when missing, expired or deleted."""
    service = stored_service(table.get_stored(K.service_key(tenant, service_id)))
    if service is None or not service.is_live(now):
        raise not_found(service_id)
    return service


# ---------------------------------------------------------------- creating a service


class IdTaken(Exception):
    """The new service id is in use (same millisecond, same random bits): draw another."""


def create_service(service: ServiceItem, claim: Claim | None) -> None:
    """Put a new service (with its ServiceStarted event); with an Idempotency-Key, its record in the
    same transaction."""
    e = Expression()
    item = recording.record_new(service.to_item(), [events.service_started(service)], 0)
    try:
        if claim is None:
            table.confirmed(lambda: table.put(item, C.new_item(e), e), service.key(), service.op)
        else:
            actions = [table.tx_put(item, C.new_item(e), e), claim.put_action(service.service_id)]
            table.confirmed(lambda: table.transact(actions), service.key(), service.op)
    except ConditionFailed as failed:
        old = failed.old if claim is None else failed.old_of(0)
        if old is not None and old.get("op") == service.op:
            return  # our own write, applied before its reply was lost
        if claim is not None and failed.failed(1):
            claim.settle(failed.old_of(1))
        raise IdTaken from None
    except ConcurrentChange:
        if claim is not None:
            raise claim.in_progress() from None
        raise


# ---------------------------------------------------------------- writing a service


Build = Callable[[Update, "ServiceItem | None"], list[Event]]


def update_service(w: Write, service_id: str, build: Build, wanted: Expiry | None = None,
                   activity: bool = True, refuse: Callable[[ServiceItem], None] | None = None
                   ) -> ServiceItem | None:
    """Conditional UpdateItem of a live service, retried with what a failed attempt revealed; returns
    the item written, or None when it was written in a transaction (which returns nothing): a write
    that sets an explicit expiration records in the same transaction that the children's TTL is to
    come down to it (due work, lib.store.expiration.lowering), unless it knows from the item
    (returned, then raised to the expiration) that they are not above it.

    The first attempt reads nothing: it assumes the common case (no explicit expiration, active,
    children's TTL far enough) and states it in its condition; when DynamoDB refuses, it returns the
    item as it was, and the next attempt is built from that (`known`). `build` adds the operation's
    own clauses and returns its change-feed events. `refuse`, given a refused attempt's item, raises
    the domain's error that item shows, before anything is done for the next attempt (raising the
    children's TTL when the next attempt extends the expiration past it). `activity`: the write
    counts as activity for auto-complete (§7); a service past its auto-complete moment then records
    that completion first (its events first)."""
    known: ServiceItem | None = None
    for attempt in range(ATTEMPTS):
        u = Update(key=K.service_key(w.tenant, service_id))
        e = u.expr
        u.conditions += C.live(e, w.now)
        u.sets["op"] = w.token
        entries = build(u, known)
        if activity:
            entries = activity_clauses(u, known, w.now) + entries
        recording.record(u, entries, w.token)
        expiry = expiration_clauses(u, wanted, known, w.now)
        lower = lowering(w, service_id, expiry, known)
        try:
            if lower is None:
                new = decode_service(table.update(u, token=w.token))
            else:  # the children's TTL comes down later (due work): recorded with the commit
                table.confirmed(lambda: table.transact([table.tx_update(u), lower]), u.key, w.token)
                new = None
        except ConditionFailed as failed:
            old = decode_service(failed.old if lower is None else failed.old_of(0))
            if old is not None and old.op == w.token:
                return old  # applied before its reply was lost (even if that write expired it)
            if old is None or not old.is_live(w.now):
                raise not_found(service_id) from None
            if refuse is not None:
                refuse(old)
            # The expiration the next attempt sets: the children's TTL is raised to it first, only
            # when it passes it.
            following = written(wanted, old, w.now)
            if following is not None and old.children_ttl < following.ttl(w.now):
                # Before the commit, only TTLs change; the next attempt knows what the item records now.
                recorded = raise_children_ttl(old, following.children_ttl(w.now))
                old = old.model_copy(update={"children_ttl": recorded})
            known = old
            continue
        except ConcurrentChange:
            backoff(attempt)
            continue
        return new
    raise Conflict(f"service {service_id} changed concurrently; retry")


def activity_clauses(u: Update, known: ServiceItem | None, now: int) -> list[Event]:
    """Auto-complete bookkeeping of a write that counts as activity: the deadline moves with the
    write (`auto_complete_at = aca_ms + now`, no read needed), unless the deadline has passed, in
    which case the write records the completion it missed first, with its events (the completion
    and its cascade, from the active children read after the item: conditional on its `seq`)."""
    e = u.expr
    if known is not None and known.completed_ms is None and known.completed_at(now) is not None:
        return auto_completion_clauses(u, known, now)
    if known is not None and known.completed_ms is not None:
        return []
    u.sets["last_write_ms"] = now
    u.sets["auto_complete_at"] = _plus_now(u, "aca_ms", now)
    u.sets["GSI5SK"] = _plus_now(u, "aca_ms", now)
    u.sets["GSI6SK"] = _plus_now(u, "aca_ms", now)
    u.conditions += C.not_auto_completed(e, now)
    return []


def auto_completion_clauses(u: Update, known: ServiceItem, now: int, active: cascades.Active | None = None
                            ) -> list[Event]:
    """Record the completion of a service past its auto-complete moment (read as `known`): clauses,
    conditions (still not completed, deadline and `seq` as read) and its events. `active`: its
    active states and tasks, if read already."""
    e = u.expr
    completion = Completion({}, known.completed_at(now))
    complete_clauses(u, known.tenant, known.service_id, completion)
    u.conditions += C.absent(e, "completed_ms") + C.equals(e, "auto_complete_at", known.auto_complete_at)
    u.conditions += C.seq_is(e, known.seq)
    recording.close_all(u)
    states, tasks = active if active is not None else cascades.active_children(known)
    return [events.service_completed(known, completion, events.AUTO_COMPLETE)] + \
        events.service_cascade(states, tasks, completion.ms)


def _plus_now(u: Update, name: str, now: int) -> Raw:
    return Raw(f"{u.expr.name(name)} + {u.expr.value(now)}")


def complete_clauses(u: Update, tenant: str, service_id: str, completion: Completion) -> None:
    """Clauses recording a service's completion: the event, its index moves (owner's completed
    list, the end-time index), out of the due index."""
    event = dict(completion.event)
    event["timestamp"] = format_ms(completion.ms)
    u.sets.update({"completed": event, "completed_ms": completion.ms, "disposition": completion.disposition,
                   "disposition_desc": completion.disposition_desc,
                   "GSI4PK": K.end_pk(tenant, service_id), "GSI4SK": K.time_sk(completion.ms, service_id)})
    if "GSI2PK" not in u.sets:
        u.copies["GSI2PK"] = "owner_done_pk"
    u.removes += ["GSI5PK", "GSI6PK"]
    for key, text in completion.attached.items():
        u.sets[("ext", key)] = text


def end_service(w: Write, service_id: str, completion: Completion, wanted: Expiry | None) -> None:
    """Complete a service. Its active states and tasks complete with it on read
    (lib.rules.conversation); their events are committed with it.

    One write that reads nothing (an UpdateItem; with an expiration in the body, a TransactWriteItems
    that also records the children's TTL to lower), whose cascade's events the publisher completes
    (from the item's trusted summary of active children, lib.store.summary, or from the children its
    known counts name: lib.store.events.cascade_read). Like every service write (update_service), it
    first assumes the common case (a sliding expiration, the children's TTL far enough); refused, it
    is built again from the item DynamoDB returns (an explicit expiration on it stays; the children's
    TTL is raised first when the end's new expiration passes it), and the same unread end is sent
    when that item allows it (recording.may_end_all).
    Otherwise (an item without counts) the end is one write conditional on the item's `seq`, after a
    read of its active children. 409 when already completed, also by auto-complete; 413 past
    events.CASCADE_MAX counted active children (answered from the item, nothing read)."""
    floor = recording.end_floor(w.now)

    def refuse(known: ServiceItem) -> None:
        if known.completed_at(w.now) is not None:
            raise Conflict(f"service {service_id} is already completed")
        if completion.ms < known.started_ms:
            raise ValidationError("timestamp: the end is before the service's start")
        if recording.too_many_to_end(known):  # before reading them: their events would not fit one write
            raise PayloadTooLarge(f"service {service_id} has {known.open} active states and tasks; an end "
                                  f"completes at most {events.CASCADE_MAX} at once: end some of them first")

    def build(u: Update, known: ServiceItem | None) -> list[Event]:
        e = u.expr
        u.conditions += C.active(e, w.now) + C.at_most(e, "started_ms", completion.ms)
        complete_clauses(u, w.tenant, service_id, completion)
        recording.close_all(u)
        extras = _end_extras(w, completion, wanted)
        if known is None or recording.may_end_all(known, floor):
            # Unread: the publisher completes the cascade, from the summary or from the children the
            # item counts, which must outlive the end by the change feed's hold (lib.store.erasure
            # .held_until, which starts now without a trusted summary: `ended_ms`; the operand is the
            # item before this write, which removes `ax`, as every operand of an update is).
            recording.end_all(u, floor)
            u.sets["ended_ms"] = Raw(f"if_not_exists({e.name(summary.EXACT)}, {e.value(w.now)})")
            return [events.service_completed_pending(completion, events.REQUEST), *extras]
        # Read after the item, this write conditional on its `seq`: no start or end slips in between.
        u.conditions += C.seq_is(e, known.seq)
        states, tasks = cascades.active_children(known)
        return [events.service_completed(known, completion, events.REQUEST),
                *events.service_cascade(states, tasks, completion.ms), *extras]

    update_service(w, service_id, build, wanted, activity=False, refuse=refuse)


def _end_extras(w: Write, completion: Completion, wanted: Expiry | None) -> list[Event]:
    """The events an end commits after its completion and cascade: attached data, an expiration."""
    extras = [events.attached_changed(completion.ms, completion.attached)] if completion.attached else []
    return extras + ([events.expiration_changed(w.now, wanted.expires_ms)] if wanted is not None else [])


@dataclass(frozen=True)
class Association:
    customer_id: str
    fields: dict[str, Any]  # top-level start fields to update (contact_key, service_type, est_duration)
    started: dict[str, Any]  # start-event fields to update
    started_ms: int | None  # a new start time, if the event's timestamp changes
    attached: dict[str, str]


def associate_service(w: Write, service_id: str, change: Association) -> None:
    """Move a service to a customer (its lists move with it), updating start fields and attached data."""

    def build(u: Update, known: ServiceItem | None) -> list[Event]:
        e = u.expr
        # The previous customer goes into the event: assumed anonymous (the common case) until the
        # item says otherwise, and stated in the condition.
        previous = known.customer_id if known is not None else None
        u.conditions += C.absent(e, "customer_id") if previous is None else C.equals(e, "customer_id", previous)
        done_at = known.completed_at(w.now) if known is not None else None
        status = Status.COMPLETED if done_at is not None else Status.ACTIVE
        u.sets["customer_id"] = change.customer_id
        u.sets.update(change.fields)
        for name, value in change.started.items():
            u.sets[("started", name)] = value
        for key, text in change.attached.items():
            u.sets[("ext", key)] = text
        u.sets["GSI1PK"] = K.owner_pk(w.tenant, change.customer_id, None)
        u.sets["GSI2PK"] = K.owner_pk(w.tenant, change.customer_id, None, status)
        u.sets["owner_done_pk"] = K.owner_pk(w.tenant, change.customer_id, None, Status.COMPLETED)
        if known is None:
            u.conditions += C.absent(e, "GSI6PK")  # assumed (no auto-complete) until the item says otherwise
        elif done_at is None and known.auto_complete_at is not None:
            u.sets["GSI6PK"] = K.owner_pk(w.tenant, change.customer_id, None, timed=True)
        if done_at is None:
            u.conditions += C.active(e, w.now)  # assumed until the item says otherwise
        if change.started_ms is not None:
            u.sets["started_ms"] = change.started_ms
            start = K.time_sk(change.started_ms, service_id)
            u.sets.update({"GSI1SK": start, "GSI2SK": start, "GSI3SK": start})
            if known is not None and known.completed_ms is not None:
                u.conditions += C.at_least(e, "completed_ms", change.started_ms)
        entries = [events.service_associated(w.now, previous, change.customer_id,
                                             [*change.fields, *change.started], list(change.attached))]
        if change.attached:
            entries.append(events.attached_changed(w.now, change.attached))
        return entries

    def refuse(known: ServiceItem) -> None:
        done_at = known.completed_at(w.now)
        if change.started_ms is not None and done_at is not None and change.started_ms > done_at:
            raise ValidationError("timestamp: the start would be after the service's end")

    update_service(w, service_id, build, refuse=refuse)


def set_expiration(w: Write, service_id: str, wanted: Expiry) -> None:
    """`PUT /services/{id}`: the new expiration holds at once, in one round trip (a TransactWriteItems:
    the service's update and the record of the children's TTL to lower, which the schedule lowers)."""
    update_service(w, service_id, lambda u, known: [events.expiration_changed(w.now, wanted.expires_ms)], wanted)


def put_service_attached(w: Write, service_id: str, name: str, text: str) -> None:
    """Replace one attached-data key of a service."""

    def build(u: Update, known: ServiceItem | None) -> list[Event]:
        u.sets[("ext", name)] = text
        return [events.attached_changed(w.now, [name])]

    update_service(w, service_id, build)


def merge_service_attached(w: Write, service_id: str, name: str, merge: Callable[[str | None], str]) -> str:
    """Apply `merge` (old JSON text or None -> new JSON text) to one attached-data key; the write is
    conditional on the value read, retried when another write got in between."""
    for attempt in range(ATTEMPTS):
        service = read_service(w.tenant, service_id, w.now)
        old = service.ext.get(name)
        new = merge(old)

        def build(u: Update, known: ServiceItem | None, old: str | None = old, new: str = new) -> list[Event]:
            e = u.expr
            u.sets[("ext", name)] = new
            u.conditions += C.absent(e, ("ext", name)) if old is None else C.equals(e, ("ext", name), old)
            return [events.attached_changed(w.now, [name])]

        def refuse(known: ServiceItem, old: str | None = old) -> None:
            if known.ext.get(name) != old:
                raise AttachedMoved()

        try:
            update_service(w, service_id, build, refuse=refuse)
            return new
        except AttachedMoved:
            backoff(attempt)
    raise Conflict(f"attached data '{name}' changed concurrently; retry")


class AttachedMoved(Conflict):
    """The attached-data value changed between its read and a merge's write."""

    def __init__(self) -> None:
        super().__init__("attached data changed concurrently; retry")
