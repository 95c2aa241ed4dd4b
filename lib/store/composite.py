"""Composite start's store operations (§4): the lock item that names, for one (customer_id,
contact_key, service_type), the service composite starts use and, inside it, the state per state
type and the task per task type. Concurrent composite starts converge because every change of what
the lock names is a conditional write of the lock, in the same transaction as what it creates.

Reuse costs two reads whatever the conversation's size: the lock, then the service, state and task
it names (one BatchGetItem).
"""

from __future__ import annotations

from typing import Any

from lib.errors import Conflict
from lib.store import conditions as C
from lib.store import events, recording, table
from lib.store import keys as K
from lib.store.concurrency import Write
from lib.store.expressions import Expression, Update
from lib.store.idempotency import Claim
from lib.store.items import Child, CompositeLock, ServiceItem, StateItem, TaskItem, from_plain
from lib.store.table import ConcurrentChange, ConditionFailed


class LockMoved(Conflict):
    """Another composite start changed the lock since it was read: start the element again."""

    def __init__(self) -> None:
        super().__init__("too many concurrent composite starts with these keys; retry")


def read_lock(tenant: str, digest: str, claim: Claim | None = None) -> tuple[CompositeLock | None, dict[str, Any] | None]:
    """The lock (and, for the first element of a request with an Idempotency-Key, its record)."""
    key = CompositeLock(tenant=tenant, digest=digest).key()
    keys = [key] + ([claim.record_key()] if claim else [])
    found = table.get_many(keys) if claim else {(key["PK"], key["SK"]): table.get(key)}
    lock = from_plain(found.get((key["PK"], key["SK"])))
    record = None
    if claim:
        record_key = claim.record_key()
        record = found.get((record_key["PK"], record_key["SK"]))
    return (lock if isinstance(lock, CompositeLock) else None), record


def read_named(service: ServiceItem | None, tenant: str, service_id: str, state_id: int | None,
               task_id: int | None) -> tuple[ServiceItem | None, StateItem | None, TaskItem | None]:
    """The service, state and task a lock names, in one BatchGetItem (the service only when not known)."""
    keys = [] if service is not None else [K.service_key(tenant, service_id)]
    if state_id is not None:
        keys.append(K.child_key(tenant, service_id, "state", state_id))
    if task_id is not None:
        keys.append(K.child_key(tenant, service_id, "task", task_id))
    found = table.get_many(keys) if keys else {}
    entities = [from_plain(item) for item in found.values()]
    if service is None:
        service = next((e for e in entities if isinstance(e, ServiceItem)), None)
    state = next((e for e in entities if isinstance(e, StateItem)), None)
    task = next((e for e in entities if isinstance(e, TaskItem)), None)
    return service, state, task


def _lock_condition(e: Expression, stale: CompositeLock | None) -> list[str]:
    if stale is None:
        return C.new_item(e)
    return C.equals(e, "op", stale.op)


def create_all(w: Write, lock: CompositeLock, stale: CompositeLock | None, service: ServiceItem,
               children: list[Child], claim: Claim | None = None, reply: Any = None) -> None:
    """A new service with its new state and task, and the lock naming them: one transaction. The
    service item carries the Started events of all three. With `claim`, the request's idempotency
    record (holding `reply`) is written in the same transaction: a fault leaves both or neither."""
    e = Expression()
    lock.op, lock.expire_at = w.token, service.children_ttl
    actions = [table.tx_put(lock.to_item(), _lock_condition(e, stale), e)]
    for item in (service, *children):
        item.op = w.token
        if item is not service:
            item.expire_at = service.children_ttl
        e = Expression()
        stored = item.to_item()
        if item is service:
            stored = recording.record_new(stored, [events.service_started(service)] + [events.started(c) for c in children],
                                          len(children))
        actions.append(table.tx_put(stored, C.new_item(e), e))
    actions.append(table.tx_put(lock.reference(service)))
    if claim is not None:
        actions.append(claim.put_action(reply))
    try:
        table.confirmed(lambda: table.transact(actions), lock.key(), w.token)
    except ConditionFailed as failed:
        if (failed.old_of(0) or {}).get("op") == w.token:
            return  # applied before its reply was lost
        if claim is not None and failed.failed(len(actions) - 1):
            claim.settle(failed.old_of(len(actions) - 1))  # the same request, answered meanwhile: replay
        raise LockMoved() from None
    except ConcurrentChange:
        raise LockMoved() from None


def point_at_service(w: Write, lock: CompositeLock, stale: CompositeLock | None, service: ServiceItem) -> None:
    """The lock now names an existing service (found by the owner's index), nothing inside it yet;
    the service's conversation gets the reference that erases the lock with it (one transaction,
    conditional on the service still being live: not expired, and not turned into its erasure's fence
    by a DELETE since it was found, which leaves an item at the same key)."""
    e = Expression()
    lock.op, lock.expire_at = w.token, service.children_ttl
    actions = [table.tx_put(lock.to_item(), _lock_condition(e, stale), e), table.tx_put(lock.reference(service))]
    live = Expression()
    actions.append(table.tx_check(service.key(), C.live(live, w.now), live))
    try:
        table.confirmed(lambda: table.transact(actions), lock.key(), w.token)
    except ConditionFailed as failed:
        if (failed.old_of(0) or {}).get("op") != w.token:
            raise LockMoved() from None
    except ConcurrentChange:
        raise LockMoved() from None


def entry_update(w: Write, lock: CompositeLock, path: tuple[str, ...], value: Any, stale: int | None) -> Update:
    """The lock update that names a state or task: conditional on the lock still naming the service
    and the entry still naming what was read (absent, or the stale id)."""
    u = Update(key=lock.key(), sets={path: value})
    e = u.expr
    u.conditions += C.equals(e, "service_id", lock.service_id)
    id_path = path + ("id",) if isinstance(value, dict) else path  # state entries: {"id", "tasks"}
    u.conditions += C.absent(e, path) if stale is None else C.equals(e, id_path, stale)
    return u


def name_existing(w: Write, lock: CompositeLock, path: tuple[str, ...], value: Any, stale: int | None) -> None:
    """Point the lock at a state or task that exists already."""
    try:
        table.update(entry_update(w, lock, path, value, stale))
    except ConditionFailed:
        raise LockMoved() from None


def naming(w: Write, lock: CompositeLock, path: tuple[str, ...], value_for: Any, stale: int | None) -> Any:
    """For a state or task start (ChildStart.extra): the lock update naming the new child, in the
    start's own transaction."""

    def extra(service: ServiceItem, child_id: int) -> list[tuple[dict[str, Any], Any]]:
        update = entry_update(w, lock, path, value_for(child_id), stale)
        return [(table.tx_update(update), lambda old: LockMoved())]

    return extra
