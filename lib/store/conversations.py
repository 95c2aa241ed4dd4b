"""Operations on conversations at the level of intent: create, end or delete a service, start or end
a state or task, transition, set attached data, read pages. Each turns a failed condition into the
domain's error itself (404, 409, 400), so the rules above never see DynamoDB.

Every write carries the request's token (`op`): when a reply is lost and botocore retries the call,
the retry fails its condition against our own earlier write, which the token recognises as success.

One commit point per operation (§2): each operation's visible change is one conditional write or one
transaction. Work before it only touches TTL attributes (raising children's TTL); work after it
(erasing a deleted conversation's items, lowering TTLs) is finished by a retry, the scheduled
maintenance or TTL, and never changes what readers see.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lib.errors import Conflict, NotFound, ValidationError
from lib.settings import settings
from lib.store import conditions as C
from lib.store import table
from lib.store.codec import encode_item
from lib.store.idempotency import Claim
from lib.store.items import (
    ACTIVE,
    COMPLETED,
    NEVER_MS,
    OWNER_DUE_INDEX,
    OWNER_INDEX,
    OWNER_STATUS_INDEX,
    SERVICE_SK,
    STATE_TASKS_INDEX,
    STATUS_INDEX,
    TIMED,
    Child,
    Erasure,
    Expiry,
    ServiceItem,
    StateItem,
    TaskItem,
    child_sk,
    conversation_pk,
    end_pk,
    from_plain,
    lock_of_reference,
    owner_pk,
    state_tasks_sk,
    status_range,
    time_sk,
)
from lib.store.table import ConcurrentChange, ConditionFailed, Expression, Query, Raw, Update

log = logging.getLogger(__name__)
ATTEMPTS = 30
TRANSACTION_LIMIT = 100

_pool: ThreadPoolExecutor | None = None


def parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent reads at once (boto3 clients are thread-safe); results in order."""
    global _pool
    if len(calls) <= 1:
        return [call() for call in calls]
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="store")
    return [future.result() for future in [_pool.submit(c) for c in calls]]


def new_token() -> str:
    return secrets.token_hex(8)


def backoff(attempt: int) -> None:
    """Jittered pause before retrying an optimistic write that lost a race."""
    time.sleep(random.uniform(0, min(0.05, 0.002 * 2 ** min(attempt, 5))))  # noqa: S311 - not security


@dataclass
class Write:
    """One write request: its tenant, its clock reading and its token."""

    tenant: str
    now: int
    token: str = field(default_factory=new_token)


@dataclass(frozen=True)
class Completion:
    """An end event as stored: the event fields (with the timestamp), when, and attached data."""

    event: dict[str, Any]
    ms: int
    disposition: Any = None
    disposition_desc: str | None = None
    attached: dict[str, str] = field(default_factory=dict)  # key -> JSON text


def service_key(tenant: str, service_id: str) -> dict[str, str]:
    return {"PK": conversation_pk(tenant, service_id), "SK": SERVICE_SK}


def not_found(service_id: str) -> NotFound:
    return NotFound(f"service {service_id} not found")


def _decode_service(item: dict[str, Any] | None) -> ServiceItem | None:
    service = from_plain(item)
    return service if isinstance(service, ServiceItem) else None


def _live(item: dict[str, Any] | None, service_id: str, now: int) -> ServiceItem:
    service = _decode_service(item)
    if service is None or not service.is_live(now):
        raise not_found(service_id)
    return service


# ---------------------------------------------------------------- reading a service


def read_service(tenant: str, service_id: str, now: int) -> ServiceItem:
    """The live service (strongly consistent); 404 when missing, expired or deleted."""
    return _live(table.get(service_key(tenant, service_id)), service_id, now)


# ---------------------------------------------------------------- creating a service


class IdTaken(Exception):
    """The new service id is in use (same millisecond, same random bits): draw another."""


def create_service(service: ServiceItem, claim: Claim | None) -> None:
    """Put a new service; with an Idempotency-Key, its record in the same transaction."""
    e = Expression()
    try:
        if claim is None:
            table.confirmed(lambda: table.put(service.to_item(), C.new_item(e), e), service.key(), service.op)
        else:
            actions = [table.tx_put(service.to_item(), C.new_item(e), e), claim.put_action(service.service_id)]
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


Build = Callable[[Update, "ServiceItem | None"], None]


def update_service(w: Write, service_id: str, build: Build, wanted: Expiry | None = None,
                   activity: bool = True) -> ServiceItem:
    """Conditional UpdateItem of a live service, retried with what a failed attempt revealed.

    The first attempt assumes the common case (no explicit expiration, active, children's TTL far
    enough) and states it in its condition; when DynamoDB refuses, it returns the item as it was, and
    the next attempt is built from that. `build` adds the operation's own clauses and may raise the
    domain's error once it knows the item (`known`). `activity`: the write counts as activity for
    auto-complete (§7); a service past its auto-complete moment then records that completion first."""
    known: ServiceItem | None = None
    for attempt in range(6):
        u = Update(key=service_key(w.tenant, service_id))
        e = u.expr
        u.conditions += C.live(e, w.now)
        u.sets["op"] = w.token
        build(u, known)
        if activity:
            _activity(u, known, w.now)
        expiry = _expiration(u, wanted, known, w.now)
        try:
            new = _decode_service(table.update(u, token=w.token))
        except ConditionFailed as failed:
            old = _decode_service(failed.old)
            if old is None or not old.is_live(w.now):
                raise not_found(service_id) from None
            if old.op == w.token:
                return old  # applied before its reply was lost
            if expiry is not None and old.children_ttl < expiry.ttl(w.now):
                raise_children_ttl(old, expiry.children_ttl(w.now))  # before the commit: only TTLs change
            known = old
            continue
        except ConcurrentChange:
            backoff(attempt)
            continue
        after_service_write(new, w.now)
        return new
    raise Conflict(f"service {service_id} changed concurrently; retry")


def _activity(u: Update, known: ServiceItem | None, now: int) -> None:
    """Auto-complete bookkeeping of a write that counts as activity: the deadline moves with the
    write (`auto_complete_at = aca_ms + now`, no read needed), unless the deadline has passed, in
    which case the write records the completion it missed first."""
    e = u.expr
    if known is not None and known.completed_ms is None and known.completed_at(now) is not None:
        complete_clauses(u, known.tenant, known.service_id, Completion({"timestamp": None}, known.completed_at(now)))
        u.conditions += C.absent(e, "completed_ms") + C.equals(e, "auto_complete_at", known.auto_complete_at)
        return
    if known is not None and known.completed_ms is not None:
        return
    u.sets["last_write_ms"] = now
    u.sets["auto_complete_at"] = _plus_now(u, "aca_ms", now)
    u.sets["GSI5SK"] = _plus_now(u, "aca_ms", now)
    u.sets["GSI6SK"] = _plus_now(u, "aca_ms", now)
    u.conditions += C.not_auto_completed(e, now)


def _plus_now(u: Update, name: str, now: int) -> Raw:
    return Raw(f"{u.expr.name(name)} + {u.expr.value(now)}")


def complete_clauses(u: Update, tenant: str, service_id: str, completion: Completion) -> None:
    """Clauses recording a service's completion: the event, its index moves (owner's completed
    list, the end-time index), out of the due index."""
    from lib.clock import format_ms

    event = dict(completion.event)
    event["timestamp"] = format_ms(completion.ms)
    u.sets.update({"completed": event, "completed_ms": completion.ms, "disposition": completion.disposition,
                   "disposition_desc": completion.disposition_desc,
                   "GSI4PK": end_pk(tenant, service_id), "GSI4SK": time_sk(completion.ms, service_id)})
    if "GSI2PK" not in u.sets:
        u.copies["GSI2PK"] = "owner_done_pk"
    u.removes += ["GSI5PK", "GSI6PK"]
    for key, text in completion.attached.items():
        u.sets[("ext", key)] = text


def _expiration(u: Update, wanted: Expiry | None, known: ServiceItem | None, now: int) -> Expiry | None:
    """Expiration clauses of a service write; returns the expiration it sets (None: unchanged).

    Explicit request: set it. Otherwise the default slides to `now + DEFAULT_EXPIRATION`, unless an
    explicit expiration was set earlier, which then stays. The children's TTL must never be earlier
    than the service's expiration: the write assumes it is not (condition), and when it is, the
    children are raised before the write is tried again."""
    e = u.expr
    if wanted is None and known is not None and known.expiry_explicit:
        u.conditions += [f"attribute_exists({e.name('expiry_explicit')})"]
        return None
    expiry = wanted or Expiry(now + settings().default_expiration_seconds * 1000, False)
    if wanted is None:
        u.conditions += C.absent(e, "expiry_explicit")
    u.sets["expires_ms"] = expiry.expires_ms
    u.sets["expire_at"] = expiry.ttl(now)
    u.sets["expiry_explicit"] = True if expiry.explicit else None  # None: REMOVE
    u.conditions += C.at_least(e, "children_ttl", expiry.ttl(now))
    return expiry


def after_service_write(service: ServiceItem, now: int) -> None:
    """After the commit point: an explicit expiration erases the children with the service, so
    children whose TTL is later are brought down (best effort: readers never see them anyway)."""
    if not service.expiry_explicit:
        return
    exact = Expiry(service.expires_ms, True).children_ttl(now)
    if service.children_ttl > exact:
        try:
            _lower_children(service, exact)
        except Exception:  # noqa: BLE001 - after the commit point nothing may fail the request
            log.warning("children TTL of %s not lowered; TTL erases them later", service.pk, exc_info=True)


def raise_children_ttl(service: ServiceItem, target: int) -> None:
    """Before a commit that extends the expiration: give every child at least `target`, record it,
    then look once more: a child lowered meanwhile by an earlier expiration's lowering (which stops
    as soon as the record moves) is raised again."""
    _raise_children(service, target)
    record = Update(key=service.key(), sets={"children_ttl": target})
    record.conditions += C.exists(record.expr)
    record.conditions += [f"{record.expr.name('children_ttl')} < {record.expr.value(target)}"]
    try:
        table.update(record)
    except ConditionFailed:
        pass  # raised meanwhile by another write
    _raise_children(service, target)


def _raise_children(service: ServiceItem, target: int) -> None:
    low = [item for item in _children_ttls(service) if (item.get("expire_at") or 0) < target]
    for start in range(0, len(low), TRANSACTION_LIMIT):
        _try_transact([_child_ttl(item, target) for item in low[start:start + TRANSACTION_LIMIT]])


def _lower_children(service: ServiceItem, target: int) -> None:
    """After an explicit expiration earlier than the children's TTL: record the lower TTL first (on
    condition that the expiration is still the one written), then lower the children in batches,
    each conditional on that record: a later write that extends the expiration raises the record
    (and the children) first, and no batch of this lowering lands after it."""
    record = Update(key=service.key(), sets={"children_ttl": target})
    e = record.expr
    record.conditions += C.exists(e) + C.equals(e, "expires_ms", service.expires_ms)
    record.conditions += [f"{e.name('children_ttl')} > {e.value(target)}"]
    try:
        table.update(record)
    except ConditionFailed:
        return  # the expiration changed meanwhile: that write looks after the children
    high = [item for item in _children_ttls(service) if (item.get("expire_at") or 0) != target]
    for start in range(0, len(high), TRANSACTION_LIMIT - 1):
        e = Expression()
        check = table.tx_check(service.key(), C.equals(e, "children_ttl", target), e)
        try:
            table.transact([check] + [_child_ttl(item, target) for item in high[start:start + TRANSACTION_LIMIT - 1]])
        except ConditionFailed as failed:
            if failed.failed(0):
                return  # the record moved: a later expiration owns the children's TTL now


def _children_ttls(service: ServiceItem) -> list[dict[str, Any]]:
    return Query(service.pk, sk_after=SERVICE_SK, consistent=True, attributes=("PK", "SK", "expire_at")).all()


def _child_ttl(item: dict[str, Any], target: int) -> dict[str, Any]:
    op = Update(key={"PK": item["PK"], "SK": item["SK"]}, sets={"expire_at": target})
    op.conditions += C.exists(op.expr)
    return table.tx_update(op)


def _try_transact(actions: list[dict[str, Any]]) -> None:
    try:
        table.transact(actions)
    except ConditionFailed:
        pass  # a child deleted meanwhile: nothing to give a TTL to


def end_service(w: Write, service_id: str, completion: Completion, wanted: Expiry | None) -> None:
    """Complete a service: one conditional UpdateItem. Its active states and tasks complete with it
    on read (lib.rules.conversation); 409 when already completed, also by auto-complete."""

    def build(u: Update, known: ServiceItem | None) -> None:
        if known is not None and known.completed_at(w.now) is not None:
            raise Conflict(f"service {service_id} is already completed")
        if known is not None and completion.ms < known.started_ms:
            raise ValidationError("timestamp: the end is before the service's start")
        complete_clauses(u, w.tenant, service_id, completion)
        e = u.expr
        u.conditions += C.active(e, w.now) + C.at_most(e, "started_ms", completion.ms)

    update_service(w, service_id, build, wanted, activity=False)


@dataclass(frozen=True)
class Association:
    customer_id: str
    fields: dict[str, Any]  # top-level start fields to update (contact_key, service_type, est_duration)
    started: dict[str, Any]  # start-event fields to update
    started_ms: int | None  # a new start time, if the event's timestamp changes
    attached: dict[str, str]


def associate_service(w: Write, service_id: str, change: Association) -> None:
    """Move a service to a customer (its lists move with it), updating start fields and attached data."""

    def build(u: Update, known: ServiceItem | None) -> None:
        e = u.expr
        done_at = known.completed_at(w.now) if known is not None else None
        status = COMPLETED if done_at is not None else ACTIVE
        u.sets["customer_id"] = change.customer_id
        u.sets.update(change.fields)
        for name, value in change.started.items():
            u.sets[("started", name)] = value
        for key, text in change.attached.items():
            u.sets[("ext", key)] = text
        u.sets["GSI1PK"] = owner_pk(w.tenant, "CU", change.customer_id)
        u.sets["GSI2PK"] = owner_pk(w.tenant, "CU" + status, change.customer_id)
        u.sets["owner_done_pk"] = owner_pk(w.tenant, "CU" + COMPLETED, change.customer_id)
        if known is None:
            u.conditions += C.absent(e, "GSI6PK")  # assumed (no auto-complete) until the item says otherwise
        elif done_at is None and known.auto_complete_at is not None:
            u.sets["GSI6PK"] = owner_pk(w.tenant, "CU" + TIMED, change.customer_id)
        if done_at is None:
            u.conditions += C.active(e, w.now)  # assumed until the item says otherwise
        if change.started_ms is not None:
            if done_at is not None and change.started_ms > done_at:
                raise ValidationError("timestamp: the start would be after the service's end")
            u.sets["started_ms"] = change.started_ms
            start = time_sk(change.started_ms, service_id)
            u.sets.update({"GSI1SK": start, "GSI2SK": start, "GSI3SK": start})
            if known is not None and known.completed_ms is not None:
                u.conditions += C.at_least(e, "completed_ms", change.started_ms)

    update_service(w, service_id, build)


def set_expiration(w: Write, service_id: str, wanted: Expiry) -> ServiceItem:
    """`PUT /services/{id}`: the new expiration holds at once (children's TTL follow)."""
    return update_service(w, service_id, lambda u, known: None, wanted)


def put_service_attached(w: Write, service_id: str, name: str, text: str) -> None:
    """Replace one attached-data key of a service."""

    def build(u: Update, known: ServiceItem | None) -> None:
        u.sets[("ext", name)] = text

    update_service(w, service_id, build)


def merge_service_attached(w: Write, service_id: str, name: str, merge: Callable[[str | None], str]) -> str:
    """Apply `merge` (old JSON text or None -> new JSON text) to one attached-data key; the write is
    conditional on the value read, retried when another write got in between."""
    for attempt in range(ATTEMPTS):
        service = read_service(w.tenant, service_id, w.now)
        old = service.ext.get(name)
        new = merge(old)

        def build(u: Update, known: ServiceItem | None, old: str | None = old, new: str = new) -> None:
            if known is not None and known.ext.get(name) != old:
                raise AttachedMoved()
            e = u.expr
            u.sets[("ext", name)] = new
            u.conditions += C.absent(e, ("ext", name)) if old is None else C.equals(e, ("ext", name), old)

        try:
            update_service(w, service_id, build)
            return new
        except AttachedMoved:
            backoff(attempt)
    raise Conflict(f"attached data '{name}' changed concurrently; retry")


class AttachedMoved(Conflict):
    """The attached-data value changed between its read and a merge's write."""

    def __init__(self) -> None:
        super().__init__("attached data changed concurrently; retry")


# ---------------------------------------------------------------- deleting


ERASURE_BATCH = TRANSACTION_LIMIT - 1
Target = tuple[str, Callable[[Expression], list[str]]]  # a service id, and the conditions of its delete


def remove_services(w: Write, targets: list[Target]) -> tuple[list[str], Erasure | None]:
    """Commit point of deleting conversations (DELETE, purge): one transaction deletes up to 99
    service items under their conditions (so every reader stops seeing those conversations at
    once) and records the erasure of the rest of their items. Targets whose condition fails are
    left out and the rest tried again. Returns the service ids deleted and the erasure record."""
    pending = list(targets)
    for attempt in range(ATTEMPTS):
        if not pending:
            return [], None
        erasure = Erasure(tenant=w.tenant, erasure_id=secrets.token_hex(12), created_ms=w.now, op=w.token,
                          pks=[conversation_pk(w.tenant, sid) for sid, _ in pending],
                          expire_at=w.now // 1000 + 14 * 86400)
        actions = []
        for service_id, conditions in pending:
            e = Expression()
            request = {"TableName": table.table_name(), "Key": encode_item(service_key(w.tenant, service_id)),
                       "ConditionExpression": " AND ".join(f"({c})" for c in conditions(e)),
                       "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
            actions.append({"Delete": e.apply(request)})
        e = Expression()
        actions.append(table.tx_put(erasure.to_item(), C.new_item(e), e))
        try:
            table.confirmed(lambda: table.transact(actions), erasure.key(), w.token)
            return [sid for sid, _ in pending], erasure
        except ConditionFailed as failed:
            if (failed.old_of(len(pending)) or {}).get("op") == w.token:
                return [sid for sid, _ in pending], erasure  # applied before its reply was lost
            pending = [target for index, target in enumerate(pending) if not failed.failed(index)]
        except ConcurrentChange:
            backoff(attempt)
    raise Conflict("conversations changed concurrently; retry")


def finish_erasure(erasure: Erasure) -> int:
    """After the commit point: remove every remaining item of the erased conversations, 25 deletes a
    request across conversations, the erasure record last. Returns the items removed."""
    keys = [{"PK": item["PK"], "SK": item["SK"]} for pk in erasure.pks
            for item in Query(pk, consistent=True, attributes=("PK", "SK")).all()]
    for key in keys:  # a composite lock naming an erased conversation goes with it
        lock = lock_of_reference(key)
        if lock is not None:
            e = Expression()
            try:
                table.delete(lock.key(), C.equals(e, "service_id", lock.service_id), e)
            except ConditionFailed:
                pass  # the lock names another service now
    table.delete_keys(keys + [erasure.key()])
    return len(keys)


def delete_service(w: Write, service_id: str) -> None:
    """Delete a conversation: gone at once for every reader (commit point: the service item's
    conditional delete), then its other items are erased; an interrupted erasure is finished by the
    scheduled maintenance (due index)."""
    deleted, erasure = remove_services(w, [(service_id, lambda e: C.live(e, w.now))])
    if not deleted:
        raise not_found(service_id)
    try:
        finish_erasure(erasure)
    except Exception:  # noqa: BLE001 - after the commit point nothing may fail the request
        log.warning("conversation %s deleted, erasure of its items left to maintenance", service_id, exc_info=True)


# ---------------------------------------------------------------- states and tasks: starting


@dataclass
class ChildStart:
    """What a state or task start needs checked inside its transaction."""

    kind: str  # "state" | "task"
    previous_state_id: int | None = None  # a state's predecessor: must exist
    state_id: int | None = None  # a task's state: must exist and be active
    extra: Callable[[ServiceItem, int], list[tuple[dict[str, Any], Callable[[dict | None], Exception]]]] | None = None


def start_child(w: Write, service_id: str, start: ChildStart, make: Callable[[ServiceItem, int], Child],
                claim: Claim | None = None) -> int:
    """Start a state or task: read the service (its id counter), then one transaction that takes the
    next id (conditional on the counter read), re-checks the service is live and active, checks the
    references, puts the child and, with an Idempotency-Key, its record. Nothing is written when
    anything fails; a lost race is retried with a fresh read."""
    for attempt in range(ATTEMPTS):
        service, record, _ = _read_with_record(w.tenant, service_id, claim)
        service = _startable(w, service_id, claim, service, record)
        seq_name = f"{start.kind}_seq"
        seq = getattr(service, seq_name)
        child_id = seq + 1
        if start.previous_state_id is not None and start.previous_state_id > service.state_seq:
            raise NotFound(f"previous state {start.previous_state_id} not found")
        if start.state_id is not None and start.state_id > service.state_seq:
            raise NotFound(f"state {start.state_id} not found")
        child = make(service, child_id)
        child.op = w.token
        u = _counter_update(w, service, seq_name, seq, child)
        explain: list[Callable[[dict | None], Exception] | None] = [None]
        e = Expression()
        actions = [table.tx_update(u), table.tx_put(child.to_item(), C.new_item(e), e)]
        explain.append(None)
        if start.previous_state_id is not None:
            e = Expression()
            actions.append(table.tx_check({"PK": service.pk, "SK": child_sk("state", start.previous_state_id)},
                                          C.exists(e), e))
            explain.append(lambda old: NotFound(f"previous state {start.previous_state_id} not found"))
        if start.state_id is not None:
            actions.append(table.tx_update(_attach(service.pk, start.state_id, w.token)))
            explain.append(lambda old: _state_unusable(start.state_id, old))
        for action, why in (start.extra(service, child_id) if start.extra else []):
            actions.append(action)
            explain.append(why)
        if claim is not None:
            actions.append(claim.put_action(child_id))
            explain.append(None)
        if _run(actions, explain, claim, w, attempt, {"PK": service.pk, "SK": child_sk(start.kind, child_id)}):
            return child_id
    raise Conflict(f"service {service_id} changed concurrently; retry")


def _read_with_record(tenant: str, service_id: str, claim: Claim | None, extra: dict[str, str] | None = None
                      ) -> tuple[ServiceItem | None, dict | None, dict | None]:
    """The service, with (in the same BatchGetItem) the request's idempotency record and one more
    item of the conversation when asked: (service, record, extra item)."""
    key = service_key(tenant, service_id)
    if claim is None and extra is None:
        return _decode_service(table.get(key)), None, None
    keys = [key] + ([claim.record_key()] if claim else []) + ([extra] if extra else [])
    found = table.get_many(keys)

    def pick(k: dict[str, str] | None) -> dict | None:
        return found.get((k["PK"], k["SK"])) if k else None

    return _decode_service(pick(key)), pick(claim.record_key() if claim else None), pick(extra)


def _startable(w: Write, service_id: str, claim: Claim | None, service: ServiceItem | None,
               record: dict | None) -> ServiceItem:
    """The service a start or transition read: a request already answered under its Idempotency-Key
    replays first; then 404 when missing or expired, 409 when completed (also by auto-complete)."""
    if claim is not None:
        claim.settle(record)
    if service is None or not service.is_live(w.now):
        raise not_found(service_id)
    if service.completed_at(w.now) is not None:
        raise Conflict(f"service {service_id} is completed")
    return service


def _counter_update(w: Write, service: ServiceItem, seq_name: str, seq: int, child: Child) -> Update:
    """The service side of a start or transition: next id, activity, sliding expiration; conditional
    on the counter read (so concurrent starts never share an id), live and active, and on the
    children's TTL the new child gets (a concurrent change of expiration makes the start read again,
    so no child is ever erased before its service)."""
    u = Update(key=service.key())
    e = u.expr
    u.sets[seq_name] = seq + 1
    u.sets["op"] = w.token
    u.conditions += C.live(e, w.now) + C.active(e, w.now) + C.equals(e, seq_name, seq)
    _activity(u, service, w.now)
    expiry = _expiration(u, None, service, w.now)
    children_ttl = service.children_ttl
    if expiry is not None and children_ttl < expiry.ttl(w.now):
        children_ttl = expiry.children_ttl(w.now)
        raise_children_ttl(service, children_ttl)  # before the commit: only TTLs change
    u.conditions += C.equals(e, "children_ttl", children_ttl)
    child.expire_at = children_ttl
    return u


def _attach(pk: str, state_id: int, token: str) -> Update:
    """A task joins a state: the state's `attached` count moves, so a concurrent end of that state
    (conditional on the count it read) cannot miss the new task."""
    u = Update(key={"PK": pk, "SK": child_sk("state", state_id)}, adds={"attached": 1}, sets={"op": token})
    u.conditions += C.child_active(u.expr)
    return u


def _state_unusable(state_id: int, old: dict[str, Any] | None) -> Exception:
    if old is None:
        return NotFound(f"state {state_id} not found")
    return Conflict(f"state {state_id} is completed")


def _run(actions: list[dict[str, Any]], explain: list[Callable[[dict | None], Exception] | None],
         claim: Claim | None, w: Write, attempt: int, created: dict[str, str]) -> bool:
    """Run a start's transaction, which creates the item at key `created` (only this request writes
    it: its token there says the transaction was applied, whatever writes the service item took
    since). True: applied. False: lost a race (counter moved, conflict): read again. Otherwise raises
    the domain's error."""
    try:
        table.confirmed(lambda: table.transact(actions), created, w.token)
        return True
    except ConcurrentChange:
        if claim is not None and attempt >= 2:
            raise claim.in_progress() from None
        backoff(attempt)
        return False
    except ConditionFailed as failed:
        if any((failed.old_of(index) or {}).get("op") == w.token for index in range(len(actions))):
            return True  # our own transaction, applied before its reply was lost (a retry met it)
        if claim is not None and failed.failed(len(actions) - 1):
            claim.settle(failed.old_of(len(actions) - 1))
        for index, why in enumerate(explain):
            if why is not None and failed.failed(index):
                raise why(failed.old_of(index)) from None
        backoff(attempt)
        return False


# ---------------------------------------------------------------- states and tasks: ending


def _end_child_update(kind: str, pk: str, child_id: int, completion: Completion, token: str,
                      state_attached: int | None = None) -> Update:
    """The Update recording an end event on a state or task (its status key moves to completed)."""
    from lib.clock import format_ms

    event = dict(completion.event)
    event["timestamp"] = format_ms(completion.ms)
    u = Update(key={"PK": pk, "SK": child_sk(kind, child_id)})
    e = u.expr
    u.sets.update({"completed": event, "completed_ms": completion.ms, "disposition": completion.disposition,
                   "disposition_desc": completion.disposition_desc, "op": token,
                   "LSI1SK": f"{kind[0].upper()}#{COMPLETED}#{child_id:010d}"})
    for key, text in completion.attached.items():
        u.sets[("ext", key)] = text
    u.conditions += C.child_active(e) + C.at_most(e, "started_ms", completion.ms)
    if state_attached is not None:
        u.conditions += C.equals(e, "attached", state_attached)
    return u


def _cascade_update(pk: str, task: TaskItem, at_ms: int, token: str) -> dict[str, Any]:
    """A task completed because its state completed: at the later of the state's end and its own start."""
    return table.tx_update(_end_child_update("task", pk, task.task_id,
                                             Completion({}, max(at_ms, task.started_ms)), token))


def _explain_end(kind: str, child_id: int, old: dict[str, Any] | None) -> Exception:
    if old is None:
        return NotFound(f"{kind} {child_id} not found")
    if old.get("completed_ms") is not None:
        return Conflict(f"{kind} {child_id} is already completed")
    return ValidationError(f"timestamp: the end is before the {kind}'s start")


def _service_check(w: Write, service_id: str, guard: int | None = None) -> tuple[dict[str, Any], Callable]:
    """Transaction action: the service is live and active. `guard`: with 0, also no state end in
    flight anywhere in the conversation; with a state id, none for that state."""
    e = Expression()
    conditions = C.live(e, w.now) + C.active(e, w.now)
    if guard == 0:
        conditions += C.no_cascade(e)
    elif guard is not None:
        conditions += C.absent(e, ("cascading", str(guard)))
    check = table.tx_check(service_key(w.tenant, service_id), conditions, e)
    return check, lambda old: _service_unusable(service_id, old, w.now)


def _service_unusable(service_id: str, old: dict[str, Any] | None, now: int) -> Exception:
    service = _decode_service(old)
    if service is None or not service.is_live(now):
        return not_found(service_id)
    if service.completed_at(now) is not None:
        return Conflict(f"service {service_id} is completed, and so are its states and tasks")
    return ConcurrentChange()


def tasks_of_state(pk: str, state_id: int) -> list[TaskItem]:
    """Every task of a state, active or completed, from one consistent Query of LSI2."""
    prefix = state_tasks_sk(state_id)
    items = Query(pk, index=STATE_TASKS_INDEX, sk_from=prefix + "#", sk_to=prefix + "#~", consistent=True).all()
    return [task for task in (from_plain(item) for item in items) if isinstance(task, TaskItem)]


def _state_end_actions(w: Write, pk: str, state_id: int, tasks: list[TaskItem], completion: Completion,
                       room: int) -> tuple[list[dict[str, Any]], list[TaskItem]]:
    """The state's end and as many of its active tasks' cascaded ends as fit in `room` actions;
    returns the tasks left over (a big state: see end_state). The state's end is conditional on
    its `attached` count being the number of tasks read: a task attached since is never missed."""
    active = [t for t in tasks if t.completed_ms is None]
    actions = [table.tx_update(_end_child_update("state", pk, state_id, completion, w.token,
                                                 state_attached=len(tasks)))]
    fits, rest = active[:room - 1], active[room - 1:]
    actions += [_cascade_update(pk, task, completion.ms, w.token) for task in fits]
    return actions, rest


def end_state(w: Write, service_id: str, state_id: int, completion: Completion) -> None:
    """End a state and, in the same transaction, its active tasks (write-time cascade: a task's own
    item then says it completed, so task lists read only tasks). Conditional on the state's
    `attached` count, so a task started meanwhile is never left active in a completed state.
    A state with more active tasks than one transaction holds (98) completes the rest in further
    transactions; meanwhile the service item lists the state under `cascading`, which every read
    applies, so no reader sees an active task in a completed state."""
    pk = conversation_pk(w.tenant, service_id)
    state_key = {"PK": pk, "SK": child_sk("state", state_id)}
    for attempt in range(ATTEMPTS):
        tasks = tasks_of_state(pk, state_id)
        actions, rest = _state_end_actions(w, pk, state_id, tasks, completion, TRANSACTION_LIMIT - 1)
        first, why = _cascading_start(w, service_id, state_id, completion.ms) if rest else _service_check(w, service_id)
        try:
            table.confirmed(lambda: table.transact([first] + actions), state_key, w.token)
        except ConcurrentChange:
            backoff(attempt)
            continue
        except ConditionFailed as failed:
            state = failed.old_of(1)
            if (state or {}).get("op") != w.token:
                if failed.failed(0):
                    error = why(failed.old_of(0))
                    if isinstance(error, NotFound):
                        raise error from None
                    if failed.failed(1) and state is None:
                        raise NotFound(f"state {state_id} not found") from None
                    if not isinstance(error, ConcurrentChange):
                        raise Conflict(f"state {state_id} is already completed (its service is completed)") from None
                elif failed.failed(1) and (state is None or state.get("completed_ms") is not None
                                           or state["started_ms"] > completion.ms):
                    raise _explain_end("state", state_id, state) from None
                backoff(attempt)  # a task was attached or ended meanwhile: read them again
                continue
        if rest:
            _finish_cascade(w, service_id, pk, rest, completion.ms, state_id)
        return
    raise Conflict(f"state {state_id} changed concurrently; retry")


def _cascading_start(w: Write, service_id: str, state_id: int, at_ms: int) -> tuple[dict, Callable]:
    """Instead of a check, the first transaction of a big state end records the cascade in flight."""
    u = Update(key=service_key(w.tenant, service_id))
    e = u.expr
    u.conditions += C.live(e, w.now) + C.active(e, w.now)
    u.sets[("cascading", str(state_id))] = at_ms
    u.sets["op"] = w.token
    return table.tx_update(u), lambda old: _service_unusable(service_id, old, w.now)


def _finish_cascade(w: Write, service_id: str, pk: str, tasks: list[TaskItem], at_ms: int, state_id: int) -> None:
    """After the commit point of a big state end: complete the remaining tasks, then clear the mark.
    Never raises (the answer was decided at the commit point). A chunk that meets a change (a task
    ended or erased meanwhile) is read again and redone; whatever cannot be finished here keeps the
    mark on the service, which every read applies and the next end of one of its tasks finishes."""
    try:
        pending = tasks
        for attempt in range(ATTEMPTS):
            interrupted = False
            for start in range(0, len(pending), TRANSACTION_LIMIT):
                chunk = pending[start:start + TRANSACTION_LIMIT]
                try:
                    table.transact([_cascade_update(pk, t, at_ms, w.token) for t in chunk])
                except (ConditionFailed, ConcurrentChange):
                    interrupted = True
            if not interrupted:
                break
            backoff(attempt)
            pending = [t for t in tasks_of_state(pk, state_id) if t.completed_ms is None]
        else:
            log.warning("cascade of state %s of %s left marked; reads apply it", state_id, service_id)
            return
        u = Update(key=service_key(w.tenant, service_id), removes=[("cascading", str(state_id))])
        u.conditions += C.exists(u.expr)
        try:
            table.update(u)
        except ConditionFailed:
            pass
    except Exception:  # noqa: BLE001 - after the commit point: the mark stays, reads apply it
        log.warning("cascade of state %s of %s interrupted; reads apply its mark", state_id, service_id,
                    exc_info=True)


def end_task(w: Write, service_id: str, task_id: int, completion: Completion) -> None:
    """End a task: one transaction (the service live and active, the task active). A task of a
    completed state is completed already (its state's end wrote it), hence a 409; only while a big
    state end is in flight does the service item have to say so (`cascading`)."""
    pk = conversation_pk(w.tenant, service_id)
    guard = 0
    for attempt in range(ATTEMPTS):
        check, why = _service_check(w, service_id, guard)
        action = table.tx_update(_end_child_update("task", pk, task_id, completion, w.token))
        try:
            table.confirmed(lambda: table.transact([check, action]), {"PK": pk, "SK": child_sk("task", task_id)},
                            w.token)
            return
        except ConcurrentChange:
            backoff(attempt)
            continue
        except ConditionFailed as failed:
            task_old = failed.old_of(1)
            if task_old is not None and task_old.get("op") == w.token:
                return
            # The service first: an expired or deleted service is a 404 whatever its task's state.
            error = why(failed.old_of(0)) if failed.failed(0) else None
            if isinstance(error, NotFound):
                raise error from None
            if failed.failed(1) and (task_old is None or error is None or isinstance(error, ConcurrentChange)):
                raise _explain_end("task", task_id, task_old) from None
            if error is None:
                backoff(attempt)
                continue
            if not isinstance(error, ConcurrentChange):
                raise Conflict(f"task {task_id} is already completed (its service is completed)") from None
            # A state end is in flight (or was interrupted): is it this task's state?
            service = _decode_service(failed.old_of(0))
            task = from_plain(table.get({"PK": pk, "SK": child_sk("task", task_id)}))
            if not isinstance(task, TaskItem):
                raise NotFound(f"task {task_id} not found") from None
            if task.state_id is not None and str(task.state_id) in service.cascading:
                resume_cascade(w, service, task.state_id)
                raise Conflict(f"task {task_id} is already completed (its state is completed)") from None
            guard = task.state_id  # None: no state, no cascade can concern it
    raise Conflict(f"task {task_id} changed concurrently; retry")


def resume_cascade(w: Write, service: ServiceItem, state_id: int) -> None:
    """Finish a big state end that stopped half-way (its mark stays on the service until done)."""
    at_ms = service.cascading.get(str(state_id))
    if at_ms is None:
        return
    tasks = tasks_of_state(service.pk, state_id)
    _finish_cascade(w, service.service_id, service.pk, [t for t in tasks if t.completed_ms is None], at_ms, state_id)


def transition(w: Write, service_id: str, from_id: int, completion: Completion,
               make: Callable[[ServiceItem, int], StateItem], claim: Claim | None) -> int:
    """End state `from_id` (with its active tasks) and start the next state, in one transaction."""
    pk = conversation_pk(w.tenant, service_id)
    state_key = {"PK": pk, "SK": child_sk("state", from_id)}
    for attempt in range(ATTEMPTS):
        (service, record, found), tasks = parallel(lambda: _read_with_record(w.tenant, service_id, claim, state_key),
                                                   lambda: tasks_of_state(pk, from_id))
        service = _startable(w, service_id, claim, service, record)
        state = from_plain(found)
        if not isinstance(state, StateItem):
            raise NotFound(f"state {from_id} not found")
        if state.completed_ms is not None:
            raise Conflict(f"state {from_id} is already completed")
        if completion.ms < state.started_ms:
            raise ValidationError("timestamp: the transition is before the state's start")
        new_id = service.state_seq + 1
        new_state = make(service, new_id)
        new_state.op = w.token
        u = _counter_update(w, service, "state_seq", service.state_seq, new_state)
        room = TRANSACTION_LIMIT - 2 - (1 if claim else 0)
        end_actions, rest = _state_end_actions(w, pk, from_id, tasks, completion, room)
        if rest:
            u.sets[("cascading", str(from_id))] = completion.ms
        e = Expression()
        actions = [table.tx_update(u)] + end_actions + [table.tx_put(new_state.to_item(), C.new_item(e), e)]
        explain: list[Callable | None] = [None] * len(actions)
        if claim is not None:
            actions.append(claim.put_action(new_id))
            explain.append(None)
        if _run(actions, explain, claim, w, attempt, {"PK": pk, "SK": child_sk("state", new_id)}):
            if rest:
                _finish_cascade(w, service_id, pk, rest, completion.ms, from_id)
            return new_id
    raise Conflict(f"service {service_id} changed concurrently; retry")


# ---------------------------------------------------------------- states and tasks: attached data


def put_child_attached(w: Write, service_id: str, kind: str, child_id: int, name: str, text: str,
                       expected: str | None | bool = False) -> None:
    """Replace one attached-data key of a state or task (the service must be live). `expected`: the
    value read before (merge), or False for an unconditional replacement."""
    pk = conversation_pk(w.tenant, service_id)
    e = Expression()
    live = table.tx_check(service_key(w.tenant, service_id), C.live(e, w.now), e)
    u = Update(key={"PK": pk, "SK": child_sk(kind, child_id)}, sets={("ext", name): text, "op": w.token})
    u.conditions += C.exists(u.expr)
    if expected is not False:
        u.conditions += (C.absent(u.expr, ("ext", name)) if expected is None
                         else C.equals(u.expr, ("ext", name), expected))
    try:
        table.confirmed(lambda: table.transact([live, table.tx_update(u)]), u.key, w.token)
    except ConditionFailed as failed:
        if (failed.old_of(1) or {}).get("op") == w.token:
            return
        if failed.failed(0):
            raise not_found(service_id) from None
        if failed.old_of(1) is None:
            raise NotFound(f"{kind} {child_id} not found") from None
        raise AttachedMoved() from None


# ---------------------------------------------------------------- reads of a conversation


def read_child(tenant: str, service_id: str, kind: str, child_id: int, now: int) -> tuple[ServiceItem, Child]:
    """A state or task with its service (one BatchGetItem); 404 for either missing."""
    key = service_key(tenant, service_id)
    child_key = {"PK": key["PK"], "SK": child_sk(kind, child_id)}
    found = table.get_many([key, child_key])
    service = _live(found.get((key["PK"], key["SK"])), service_id, now)
    child = from_plain(found.get((child_key["PK"], child_key["SK"])))
    if not isinstance(child, Child):
        raise NotFound(f"{kind} {child_id} not found")
    return service, child


@dataclass
class ChildPage:
    """Which children a page wants (§5 and §6 list routes)."""

    kind: str  # "state" | "task"
    status: str | None  # None, ACTIVE, COMPLETED (as decided for the service: see children_page)
    after_id: int = 0
    limit: int = 100
    types: list[Any] | None = None
    window: tuple[int | None, int | None] = (None, None)
    state_id: int | None = None  # tasks of one state


def _child_query(pk: str, page: ChildPage, status: str | None) -> Query:
    type_field = f"{page.kind}_type"
    if page.kind == "task" and page.state_id is not None:
        prefix = state_tasks_sk(page.state_id)
        q = Query(pk, index=STATE_TASKS_INDEX, sk_from=prefix + "#", sk_to=prefix + "#~", consistent=True,
                  sk_after=state_tasks_sk(page.state_id, page.after_id) if page.after_id else None)
        if status is not None:
            q.filters += C.absent(q.expr, "completed_ms") if status == ACTIVE else C.completed(q.expr)
    elif status is None:
        prefix = child_sk(page.kind, 0)[:2]
        q = Query(pk, sk_from=prefix, sk_to=prefix + "~", consistent=True,
                  sk_after=child_sk(page.kind, page.after_id) if page.after_id else None)
    else:
        low, high = status_range(page.kind, status)
        q = Query(pk, index=STATUS_INDEX, sk_from=low, sk_to=high, consistent=True,
                  sk_after=f"{low}{page.after_id:010d}" if page.after_id else None)
    e = q.expr
    if page.types:
        q.filters.append(f"{e.name(type_field)} IN ({', '.join(e.value(t) for t in page.types)})")
    start, end = page.window
    if start is not None:
        q.filters += C.at_least(e, "started_ms", start)
    if end is not None:
        q.filters += [f"{e.name('started_ms')} < {e.value(end)}"]
    return q


def children_page(tenant: str, service_id: str, page: ChildPage, now: int,
                  keep: Callable[[ServiceItem, Child], bool] | None = None
                  ) -> tuple[ServiceItem, list[Child], bool]:
    """One page of a conversation's states or tasks, by id, with the service (read at the same time).

    The status of a child is its own end, or its service's (read-time cascade), or — only while a big
    state end is in flight — its state's `cascading` mark. So: for an active service, the status
    index (LSI1) holds exactly the page; for a completed one, active is empty and completed is every
    child. `keep` re-checks each child with the service known (the in-flight case)."""
    pk = conversation_pk(tenant, service_id)
    if page.status is None:
        # Every status: the base range holds the page whatever the service's state; read both at once.
        service_raw, (items, more) = parallel(lambda: table.get(service_key(tenant, service_id)),
                                              lambda: _child_query(pk, page, None).first(page.limit))
        service = _live(service_raw, service_id, now)
        return service, [c for c in (from_plain(i) for i in items) if isinstance(c, Child)], more
    # One status: which range holds it depends on the service (completed: all of them), so the
    # service is read first rather than a guessed range read in vain.
    service = read_service(tenant, service_id, now)
    done = service.completed_at(now) is not None
    if page.status == ACTIVE and done:
        return service, [], False
    if done or service.cascading:
        # Completed service: every child is completed, the base range holds the page. A cascade in
        # flight: read the base range and let `keep` decide.
        items, more = _select(_child_query(pk, ChildPage(**{**page.__dict__, "status": None}), None), page.limit,
                              service, keep)
        return service, items, more
    items, more = _child_query(pk, page, page.status).first(page.limit)
    return service, [c for c in (from_plain(i) for i in items) if isinstance(c, Child)], more


def _select(q: Query, limit: int, service: ServiceItem, keep: Callable | None) -> tuple[list[Child], bool]:
    chosen: list[Child] = []
    for page in q.pages(limit + 1):
        for item in page:
            child = from_plain(item)
            if isinstance(child, Child) and (keep is None or keep(service, child)):
                chosen.append(child)
                if len(chosen) > limit:
                    return chosen[:limit], True
    return chosen, False


def children_of(service: ServiceItem, kind: str, status: str | None, now: int) -> list[Child]:
    """Every state or task of a conversation with one status (None: all), for embedding in a service."""
    done = service.completed_at(now) is not None
    if status == ACTIVE and done:
        return []
    if status is None or done or service.cascading:
        prefix = child_sk(kind, 0)[:2]
        q = Query(service.pk, sk_from=prefix, sk_to=prefix + "~", consistent=True)
    else:
        low, high = status_range(kind, status)
        q = Query(service.pk, index=STATUS_INDEX, sk_from=low, sk_to=high, consistent=True)
    return [c for c in (from_plain(i) for i in q.all()) if isinstance(c, Child)]


def tasks_of_states(pk: str, first_state: int, last_state: int) -> list[TaskItem]:
    """The tasks of the states whose ids lie in [first, last] (one Query of LSI2)."""
    q = Query(pk, index=STATE_TASKS_INDEX, sk_from=state_tasks_sk(first_state),
              sk_to=state_tasks_sk(last_state) + "#~", consistent=True)
    return [t for t in (from_plain(i) for i in q.all()) if isinstance(t, TaskItem)]


def find_active_child(service: ServiceItem, kind: str, matches: dict[str, Any]) -> Child | None:
    """The oldest active state or task whose fields equal `matches` (absent equals None)."""
    low, high = status_range(kind, ACTIVE)
    q = Query(service.pk, index=STATUS_INDEX, sk_from=low, sk_to=high, consistent=True)
    for name, value in matches.items():
        q.filters += C.absent(q.expr, name) if value is None else C.equals(q.expr, name, value)
    for page in q.pages():
        for item in page:
            child = from_plain(item)
            if isinstance(child, Child):
                return child
    return None


# ---------------------------------------------------------------- owners' lists


@dataclass
class OwnerPage:
    """A page of a customer's (or anonymous contact key's) services (§4, §5)."""

    kind: str  # "CU" | "AN"
    owner_id: str
    status: str | None
    window: tuple[str | None, str | None] = (None, None)  # sort-key bounds (time prefixes)
    types: list[Any] | None = None
    after: str | None = None  # sort key of the last service of the previous page
    limit: int = 100


def owner_services(tenant: str, page: OwnerPage, now: int) -> tuple[list[ServiceItem], bool]:
    """One Query of the owner's index partition (for completed: two, see below), ordered by start."""

    def query(index: str, kind: str, still_active: bool = False) -> Query:
        q = Query(owner_pk(tenant, kind, page.owner_id), index=index, sk_from=page.window[0], sk_to=page.window[1],
                  sk_after=page.after)
        e = q.expr
        q.filters.append(f"{e.name('expires_ms')} > {e.value(now)}")
        if page.types:
            q.filters.append(f"{e.name('service_type')} IN ({', '.join(e.value(t) for t in page.types)})")
        if still_active:  # not past its auto-complete moment
            q.filters.append(f"{e.name('auto_complete_at')} > {e.value(now)}")
        return q

    if page.status is None:
        found, more = query(OWNER_INDEX, page.kind).first(page.limit)
    elif page.status == ACTIVE:
        found, more = query(OWNER_STATUS_INDEX, page.kind + ACTIVE, still_active=True).first(page.limit)
    else:
        # Completed = ended (its own partition) + active ones past their auto-complete moment that
        # no write has recorded yet (the owner's GSI6 partition, by deadline: only those are read;
        # the schedule records them within minutes, so there are few): merged by start time.
        (ended, more_ended), (auto, more_auto) = parallel(
            lambda: query(OWNER_STATUS_INDEX, page.kind + COMPLETED).first(page.limit),
            lambda: _past_deadline(tenant, page, now))
        merged = sorted({item["PK"]: item for item in ended + auto}.values(), key=lambda item: item["GSI2SK"])
        found, more = merged[:page.limit], more_ended or more_auto or len(merged) > page.limit
    services = [s for s in (from_plain(i) for i in found) if isinstance(s, ServiceItem)]
    return services, more


def _past_deadline(tenant: str, page: OwnerPage, now: int) -> tuple[list[dict[str, Any]], bool]:
    """An owner's active services past their auto-complete moment, in the page's window and after
    its resume key, first `limit` by start time (the index holds keys; the services are then read)."""
    rows = Query(owner_pk(tenant, page.kind + TIMED, page.owner_id), index=OWNER_DUE_INDEX, sk_to=now + 1).all()
    low, high = page.window
    rows = sorted((row for row in rows if row.get("expires_ms", 0) > now
                   and (low is None or row["GSI2SK"] >= low) and (high is None or row["GSI2SK"] < high)
                   and (page.after is None or row["GSI2SK"] > page.after)
                   and (not page.types or row.get("service_type") in page.types)),
                  key=lambda row: row["GSI2SK"])
    if not rows:
        return [], False
    wanted = rows[:page.limit + 1]
    found = table.get_many([{"PK": row["PK"], "SK": row["SK"]} for row in wanted])
    items = [item for item in found.values() if item.get("completed_ms") is None
             and item.get("auto_complete_at", NEVER_MS) <= now and item.get("expires_ms", 0) > now]
    items.sort(key=lambda item: item["GSI2SK"])
    return items[:page.limit], len(items) > page.limit or len(rows) > len(wanted)


def list_key(service: ServiceItem) -> str:
    """The owner-list sort key of a service: where the next page resumes."""
    return time_sk(service.started_ms, service.service_id)


def find_active_service(tenant: str, customer_id: str | None, contact_key: str | None, service_type: Any,
                        now: int) -> ServiceItem | None:
    """The oldest active live service of an owner with exactly these keys (one Query, filtered)."""
    kind, owner = ("CU", customer_id) if customer_id is not None else ("AN", contact_key or "")
    q = Query(owner_pk(tenant, kind + ACTIVE, owner), index=OWNER_STATUS_INDEX)
    e = q.expr
    q.filters += [f"{e.name('expires_ms')} > {e.value(now)}", f"{e.name('auto_complete_at')} > {e.value(now)}"]
    for name, value in (("contact_key", contact_key), ("service_type", service_type)):
        q.filters += C.absent(e, name) if value is None else C.equals(e, name, value)
    for page in q.pages():
        for item in page:
            service = from_plain(item)
            if isinstance(service, ServiceItem):
                return service
    return None


def services_by_key(tenant: str, service_ids: Iterable[str]) -> dict[str, ServiceItem]:
    keys = [service_key(tenant, sid) for sid in service_ids]
    found = table.get_many(keys) if keys else {}
    out = {}
    for item in found.values():
        service = _decode_service(item)
        if service is not None:
            out[service.service_id] = service
    return out
