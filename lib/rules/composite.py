"""Composite start (§4): find-or-create a service, a state in it and optionally a task, per element,
in request order.

A lock item per (customer_id, contact_key, service_type) names the service composite starts use and,
inside it, the state per state type and the task per task type (lib.store.composite). Every element
reads the lock and the owner's active service with its keys at once (both keys come from the body);
reuse then reads what the lock names (two round trips whatever the conversation's size), a create
writes everything in one transaction (two round trips); creating anything writes
the lock in the same transaction, so concurrent composite starts with the same keys converge on one
service, one state and one task. An active service, state or task started by the plain routes is
found too (owner's index, status index) and then named by the lock.
"""

from __future__ import annotations

from typing import Any

from lib import clock
from lib.errors import Conflict, NotFound, ValidationError
from lib.ids import new_service_id
from lib.models import CompositeElement, ServiceStart
from lib.rules import children, expiration, services
from lib.store import composite as locks
from lib.store import pages
from lib.store.concurrency import ATTEMPTS, Write, backoff, parallel
from lib.store.idempotency import Claim
from lib.store.items import CompositeLock, ServiceItem, StateItem, TaskItem
from lib.store.keys import digest


def start(tenant: str, elements: list[CompositeElement], claim: Claim | None = None) -> list[dict[str, Any]]:
    """Validate every element, then process each in order; one result per element."""
    now = clock.now_ms()
    for index, element in enumerate(elements):
        body = element.service
        if expiration.for_start(body.ttl, body.expiration_time, now).expires_ms <= now:
            raise ValidationError(f"services[{index}].service: ttl / expiration_time would expire the service at "
                                  "once: nothing could be started in it")
        if element.state.previous_state_id is not None:
            _check_previous_state(tenant, element, now)
    results, saved = [], False
    for index, element in enumerate(elements):
        # A one-element request's reply is known before a create's transaction: its record goes in it.
        result, saved = _element(tenant, element, claim if index == 0 else None, len(elements) == 1)
        results.append(result)
    if claim is not None and not saved:
        claim.save(results)
    return results


def _check_previous_state(tenant: str, element: CompositeElement, now: int) -> None:
    """Before anything is written: an element's `previous_state_id` names a state of the service the
    element would use (the one its lock names, or the owner's active one with its keys); an element
    that would create its service has no state yet (404). Decision: the state must exist before the
    request (docs/DESIGN.md, composite start)."""
    body, previous = element.service, element.state.previous_state_id
    key = digest(body.customer_id, body.contact_key, body.service_type)
    lock, _ = locks.read_lock(tenant, key)
    service = None
    if lock is not None and lock.service_id is not None:
        service, _, _ = locks.read_named(None, tenant, lock.service_id, None, None)
    if not _usable_service(service, body, now):
        service = pages.find_active_service(tenant, body.customer_id, body.contact_key, body.service_type, now)
    try:
        if service is None:
            raise NotFound("no service yet")
        pages.read_child(tenant, service.service_id, "state", previous, now)
    except NotFound:
        raise NotFound(f"previous state {previous} not found") from None


def _element(tenant: str, element: CompositeElement, claim: Claim | None, alone: bool) -> tuple[dict[str, Any], bool]:
    """One element: its result, and whether the request's idempotency record was written with it
    (`alone`: the request has this element only, so a create's transaction can hold the record).
    The lock (with the idempotency record) and the owner's active service with these keys are read
    at once: both keys come from the body, and a create needs both answers."""
    body = element.service
    key = digest(body.customer_id, body.contact_key, body.service_type)
    for attempt in range(ATTEMPTS):
        w = Write(tenant, clock.now_ms())
        (lock, record), active = parallel(
            lambda: locks.read_lock(tenant, key, claim if attempt == 0 else None),
            lambda: pages.find_active_service(tenant, body.customer_id, body.contact_key, body.service_type, w.now))
        if claim is not None and attempt == 0:
            claim.settle(record)
        try:
            return _resolve(w, element, key, lock, active, claim if alone else None)
        except locks.LockMoved:
            backoff(attempt)
    raise Conflict("too many concurrent composite starts with these keys; retry")


def _usable_service(service: ServiceItem | None, body: ServiceStart, now: int) -> bool:
    return (service is not None and service.is_live(now) and service.completed_at(now) is None
            and service.customer_id == body.customer_id and service.contact_key == body.contact_key
            and service.service_type == body.service_type)


def _resolve(w: Write, element: CompositeElement, key: str, lock: CompositeLock | None, found: ServiceItem | None,
             claim: Claim | None) -> tuple[dict[str, Any], bool]:
    """`found`: the owner's active service with the element's keys, read with the lock. With
    `claim`, a create writes the idempotency record in its transaction (returns True)."""
    body, state_body, task_body = element.service, element.state, element.task
    state_key, task_key = digest(state_body.state_type), digest(task_body.task_type if task_body else None)
    service = state = task = None
    if lock is not None and lock.service_id is not None:
        entry = lock.states.get(state_key)
        task_id = _task_entry(lock, entry, task_key, element) if task_body else None
        service, state, task = locks.read_named(None, w.tenant, lock.service_id, entry["id"] if entry else None, task_id)
    if not _usable_service(service, body, w.now):
        if found is None:
            return _create_all(w, element, key, lock, claim), claim is not None
        stale, lock = lock, CompositeLock(tenant=w.tenant, digest=key, service_id=found.service_id, states={},
                                          tasks={})
        locks.point_at_service(w, lock, stale, found)
        service, state, task = found, None, None
    result: dict[str, Any] = {"service_id": service.service_id, "service_created": False}
    result["state_id"], result["state_created"] = _state(w, element, lock, service, state, state_key)
    if task_body is not None:
        result["task_id"], result["task_created"] = _task(w, element, lock, service, task, state_key, task_key,
                                                          result["state_id"], result["state_created"])
    return result, False


def _task_entry(lock: CompositeLock, entry: dict[str, Any] | None, task_key: str, element: CompositeElement) -> Any:
    if element.associate_state_task:
        return (entry or {}).get("tasks", {}).get(task_key)
    return lock.tasks.get(task_key)


def _state(w: Write, element: CompositeElement, lock: CompositeLock, service: ServiceItem,
           state: StateItem | None, state_key: str) -> tuple[int, bool]:
    state_type = element.state.state_type
    entry = lock.states.get(state_key)
    if state is not None and state.completed_ms is None and state.state_type == state_type and entry \
            and entry["id"] == state.state_id:
        return state.state_id, False
    stale = entry["id"] if entry else None
    path = ("states", state_key)
    existing = pages.find_active_child(service, "state", {"state_type": state_type})
    if existing is not None:
        locks.name_existing(w, lock, path, {"id": existing.child_id, "tasks": {}}, stale)
        lock.states[state_key] = {"id": existing.child_id, "tasks": {}}
        return existing.child_id, False
    naming = locks.naming(w, lock, path, lambda state_id: {"id": state_id, "tasks": {}}, stale)
    state_id = children.start_state(w.tenant, service.service_id, element.state, extra=naming)
    lock.states[state_key] = {"id": state_id, "tasks": {}}
    return state_id, True


def _task(w: Write, element: CompositeElement, lock: CompositeLock, service: ServiceItem,
          task: TaskItem | None, state_key: str, task_key: str, state_id: int, state_created: bool) -> tuple[int, bool]:
    attach = state_id if element.associate_state_task else None
    body = element.task.model_copy(update={"state_id": attach})
    entry_id = _task_entry(lock, lock.states.get(state_key), task_key, element)
    if task is not None and task.task_id == entry_id and task.completed_ms is None \
            and task.task_type == body.task_type and task.state_id == attach:
        return task.task_id, False
    path = ("states", state_key, "tasks", task_key) if attach is not None else ("tasks", task_key)
    existing = None
    if not (attach is not None and state_created):  # a state made just now has no task yet
        existing = pages.find_active_child(service, "task", {"task_type": body.task_type, "state_id": attach})
    if existing is not None:
        locks.name_existing(w, lock, path, existing.child_id, entry_id)
        return existing.child_id, False
    naming = locks.naming(w, lock, path, lambda task_id: task_id, entry_id)
    return children.start_task(w.tenant, service.service_id, body, extra=naming), True


def _create_all(w: Write, element: CompositeElement, key: str, stale: CompositeLock | None,
                claim: Claim | None) -> dict[str, Any]:
    """Nothing usable exists: the service, its state and its task are new, written with the lock in
    one transaction (with `claim`, the reply of the whole request, this element's result alone, too)."""
    body, state_body, task_body = element.service, element.state, element.task
    if state_body.previous_state_id is not None:
        raise NotFound(f"previous state {state_body.previous_state_id} not found")
    expiry = expiration.for_start(body.ttl, body.expiration_time, w.now)
    service = services.new_service(w.tenant, new_service_id(), body, expiry, w.now, state_seq=1,
                                   task_seq=1 if task_body else 0)
    items = [children.state_item(w.tenant, service.service_id, state_body, 1, w.now)]
    lock = CompositeLock(tenant=w.tenant, digest=key, service_id=service.service_id, tasks={},
                         states={digest(state_body.state_type): {"id": 1, "tasks": {}}})
    result: dict[str, Any] = {"service_id": service.service_id, "service_created": True, "state_id": 1,
                              "state_created": True}
    if task_body is not None:
        attach = 1 if element.associate_state_task else None
        items.append(children.task_item(w.tenant, service.service_id, task_body.model_copy(update={"state_id": attach}),
                                        1, w.now))
        task_key = digest(task_body.task_type)
        if attach is not None:
            items[0].attached = 1  # a state's end is conditional on its count of attached tasks
            lock.states[digest(state_body.state_type)]["tasks"][task_key] = 1
        else:
            lock.tasks[task_key] = 1
        result.update(task_id=1, task_created=True)
    locks.create_all(w, lock, stale, service, items, claim, [result])
    return result
