"""Composite start (§4): find-or-create a service, a state in it and optionally a task, per element,
in request order.

Uniqueness under concurrency comes from lock items written with conditional puts, not from a
read-then-write: a tenant-wide lock per (customer_id, contact_key, service_type) names the service
composite starts use; inside the conversation a lock per state_type (and per task_type and state)
names the state or task. Creating a service, state or task puts its lock in the same transaction,
so of concurrent composite starts with the same keys exactly one creates and the others find its
lock and reuse what it names. A lock that names something no longer usable (completed, expired,
deleted, re-associated) is replaced with a condition on its old value.

An active service or state started by the plain start routes is found too (through the owner's
active-services index, or in the conversation) and then claimed with the same conditional lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib import clock, store
from lib.errors import Conflict, NotFound
from lib.ids import new_service_id
from lib.models import CompositeElement, ServiceStart
from lib.rules import children, expiration, services
from lib.rules.conversation import Conversation

LOCK_SK = "#LOCK"
ATTEMPTS = 6


class _LockMoved(Exception):
    """Another request changed the lock between our read and our conditional write: read again."""


def start(tenant: str, elements: list[CompositeElement]) -> list[dict[str, Any]]:
    """Process each element in order; returns one result per element."""
    return [_element(tenant, element) for element in elements]


def _element(tenant: str, element: CompositeElement) -> dict[str, Any]:
    # The conversation read while finding the service serves the state and task lookups too: when
    # all three exist, an element costs two reads (the lock, then the conversation it names). Any
    # change made meanwhile by someone else shows up as a failed lock condition, and then the
    # conversation is read again.
    service_id, service_created, conversation = _service(tenant, element.service)
    state_id, state_created = _child(
        tenant, service_id, children.STATE, (element.state.state_type,),
        lambda conv, item: item.get("state_type") == element.state.state_type,
        lambda checks: children.start_state(tenant, service_id, element.state, checks), conversation)
    result: dict[str, Any] = {"service_id": service_id, "service_created": service_created,
                              "state_id": state_id, "state_created": state_created}
    if element.task is not None:
        attach = state_id if element.associate_state_task else None
        task = element.task.model_copy(update={"state_id": attach})
        result["task_id"], result["task_created"] = _child(
            tenant, service_id, children.TASK, (task.task_type, attach),
            lambda conv, item: item.get("task_type") == task.task_type and item.get("state_id") == attach,
            lambda checks: children.start_task(tenant, service_id, task, checks), conversation)
    return result


def _lock_put(pk: str, sk: str, field: str, value: Any, stale: Any, ttl: int) -> dict[str, Any]:
    """Transaction action: point the lock at `value`, if it is still absent or still names `stale`."""
    e = store.Expression()
    condition = f"attribute_not_exists({e.name('PK')})"
    if stale is not None:
        condition += f" OR {e.name(field)} = {e.value(stale)}"
    action = store.tx_put({"PK": pk, "SK": sk, field: value, store.TTL_ATTRIBUTE: ttl}, condition)
    e.apply(action["Put"])
    return action


# ---------------------------------------------------------------- service


def _service(tenant: str, body: ServiceStart) -> tuple[str, bool, Conversation | None]:
    """(service id, created, its conversation when it was read or made here)."""
    lock_pk = store.composite_service_lock_pk(tenant, body.customer_id, body.contact_key, body.service_type)
    for _ in range(ATTEMPTS):
        now = clock.now_ms()
        lock = store.get(lock_pk, LOCK_SK)
        stale = None
        if lock is not None:
            try:
                named = services.load(tenant, lock["service_id"], with_children=True, now=now, through=None)
            except NotFound:
                named = None
            if named is not None and _usable(named.service, body, now):
                return lock["service_id"], False, named
            stale = lock["service_id"]
        try:
            existing = _find_active_service(tenant, body, now)
            if existing is not None:
                _write_lock(lock_pk, existing, stale, existing["children_ttl"])
                return existing["service_id"], False, None
            created = _create_service(tenant, body, lock_pk, stale, now)
            return created["service_id"], True, Conversation(created)
        except _LockMoved:
            continue
    raise Conflict("too many concurrent composite starts with these keys; retry")


def _usable(service: dict[str, Any] | None, body: ServiceStart, now: int) -> bool:
    return (services.is_live(service, now) and service.get("completed_ms") is None
            and service.get("customer_id") == body.customer_id and service.get("contact_key") == body.contact_key
            and service.get("service_type") == body.service_type)


def _find_active_service(tenant: str, body: ServiceStart, now: int) -> dict[str, Any] | None:
    """The oldest active service started with the same keys (one Query of the owner's active list)."""
    query = store.IndexQuery(store.OWNER_STATUS_INDEX,
                             store.owner_status_pk(tenant, body.customer_id, body.contact_key, store.ACTIVE))
    e = query.expr
    filters = [f"{e.name('expires_ms')} > {e.value(now)}"]
    for field in ("contact_key", "service_type"):
        value = getattr(body, field)
        filters.append(f"attribute_not_exists({e.name(field)})" if value is None
                       else f"{e.name(field)} = {e.value(value)}")
    query.filter = " AND ".join(filters)
    found, _ = query.items(None, 1)
    return found[0] if found else None


def _write_lock(lock_pk: str, service: dict[str, Any], stale: Any, ttl: int) -> None:
    try:
        store.transact([_lock_put(lock_pk, LOCK_SK, "service_id", service["service_id"], stale, ttl)])
    except store.ConditionFailed:
        raise _LockMoved from None


def _create_service(tenant: str, body: ServiceStart, lock_pk: str, stale: Any, now: int) -> dict[str, Any]:
    started_ms = services.event_time(body.timestamp, now)
    expiry = expiration.requested(body.ttl, body.expiration_time, now) or expiration.default(now)
    service_id = new_service_id()
    item = services.new_service_item(tenant, service_id, body, started_ms, expiry, now)
    try:
        store.transact([_lock_put(lock_pk, LOCK_SK, "service_id", service_id, stale, item["children_ttl"]),
                        store.tx_put(item)])
    except store.ConditionFailed:
        raise _LockMoved from None
    return item


# ---------------------------------------------------------------- state and task


def _child(tenant: str, service_id: str, kind: children.Kind, key: tuple[Any, ...],
           matches: Callable[[Conversation, dict[str, Any]], bool],
           create: Callable[[children.Checks], int], known: Conversation | None) -> tuple[int, bool]:
    sk = store.lock_sk(kind.name, *key)
    for _ in range(ATTEMPTS):
        conversation = known or services.load(tenant, service_id, with_children=True, through=None)
        known = None  # a retry reads afresh
        rows, completed = conversation.of_kind(kind.name)

        def usable(child_id: Any) -> bool:
            item = rows.get(child_id)
            return item is not None and completed(item) is None and matches(conversation, item)

        lock = next((item for item in conversation.locks if item["SK"] == sk), None)
        stale = lock[kind.id_field] if lock is not None else None
        if lock is not None and usable(stale):
            return stale, False
        ttl = children.children_ttl(conversation.service)
        pk = conversation.service["PK"]
        existing = next((child_id for child_id in sorted(rows) if usable(child_id)), None)
        try:
            if existing is not None:
                try:
                    store.transact([_lock_put(pk, sk, kind.id_field, existing, stale, ttl)])
                except store.ConditionFailed:
                    raise _LockMoved from None
                return existing, False

            def lock_check(pk: str, child_id: int) -> list[children.Check]:
                return [(_lock_put(pk, sk, kind.id_field, child_id, stale, ttl), _lock_moved)]

            return create(lock_check), True
        except _LockMoved:
            continue
    raise Conflict(f"too many concurrent composite starts of this {kind.name}; retry")


def _lock_moved(old: dict[str, Any] | None) -> Exception:
    return _LockMoved()
