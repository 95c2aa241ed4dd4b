"""The change feed's events as the store writes them (contract §10; docs/DESIGN.md, "Change feed").

Every committed change writes the conversation's service item in the same write or transaction,
and that write carries the change's events: `ev` (the events of this write, in order) and `seq`
(events of the service so far, absent = 0, only growing). The table's stream carries each write of
the service item; the feed's publisher (lib/feed) publishes `ev` of a record whose `seq` grew, event k
getting sequence `old seq + k`. Deletes and purges put their events on the erasure record instead
(with each service's sequence), since the service item is deleted.

This module names the events and builds their entries: {"name", "at" (occurred, epoch ms), "data"}.
Data fields are always present, null when the element has no such value; timestamps are ISO UTC with
milliseconds; ids as the API shows them. An event that comes from a start or end event occurs at
that event's timestamp; any other change at the request's time.

It also keeps `open` on the service item: its active states and tasks (starts +1, ends -1, cascades
-k, a service's completion 0), so that a service's completion knows without a read whether it
cascades. Items written before the counter have none: their count is unknown and is never trusted
(UNKNOWN_OPEN stands for it in arithmetic, so it never reaches 0).

Beside the count, `open_sum`: the sum of a 63-bit hash of each active state's and task's kind and id,
moved by the same writes from the events they commit (a start adds its child's hash, a completion
subtracts it). Two different sets of children have the same sum only by a hash collision (about
2^-63 for a given pair), so a service's end can read the item and its active children at once and
check that the children read are the ones the item counts (lib.store.cascades.verified), where it
would otherwise have to read the children after the item. Items written before the sum have none,
and UNKNOWN_OPEN_SUM (far below any sum) keeps it unknown.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

from lib.clock import format_ms
from lib.store import conditions as C
from lib.store.expressions import Raw, Update
from lib.store.items import Child, Completion, ServiceItem, StateItem, TaskItem

Event = dict[str, Any]
UNKNOWN_OPEN = 1_000_000_000  # `open` of an item written before the counter: far from 0, never trusted
UNKNOWN_OPEN_SUM = -(10 ** 30)  # `open_sum` of an item written before it: below any sum of 63-bit hashes

SERVICE_STARTED, SERVICE_ASSOCIATED, SERVICE_COMPLETED = "ServiceStarted", "ServiceAssociated", "ServiceCompleted"
SERVICE_EXPIRATION_CHANGED = "ServiceExpirationChanged"
SERVICE_DELETED, SERVICE_PURGED = "ServiceDeleted", "ServicePurged"
STATE_STARTED, STATE_COMPLETED = "StateStarted", "StateCompleted"
TASK_STARTED, TASK_COMPLETED = "TaskStarted", "TaskCompleted"
ATTACHED_DATA_CHANGED = "AttachedDataChanged"
# Why an element completed (`reason` of the Completed events).
REQUEST, AUTO_COMPLETE, TRANSITION = "request", "auto_complete", "transition"
STATE_COMPLETED_REASON, SERVICE_COMPLETED_REASON = "state_completed", "service_completed"


def _event(name: str, at: int, data: dict[str, Any]) -> Event:
    return {"name": name, "at": at, "data": data}


def _iso(ms: int | None) -> str | None:
    return None if ms is None else format_ms(ms)


def _shown(event: dict[str, Any] | None) -> dict[str, Any]:
    """A stored start or end event as the API shows it (absent values omitted)."""
    return {name: value for name, value in (event or {}).items() if value is not None}


def _ended(event: dict[str, Any], ms: int) -> dict[str, Any]:
    shown = _shown(event)
    shown["timestamp"] = format_ms(ms)
    return shown


# ---------------------------------------------------------------- services


def service_started(service: ServiceItem) -> Event:
    return _event(SERVICE_STARTED, service.started_ms, {
        "service_type": service.service_type, "est_duration": service.est_duration,
        "started": _shown(service.started), "expiration_time": _iso(service.expires_ms),
        "auto_complete_after": service.auto_complete_after, "attached_keys": sorted(service.ext)})


def service_associated(at: int, previous_customer_id: str | None, customer_id: str, changed: list[str],
                       attached_keys: list[str]) -> Event:
    return _event(SERVICE_ASSOCIATED, at, {
        "previous_customer_id": previous_customer_id, "customer_id": customer_id, "changed": sorted(changed),
        "attached_keys": sorted(attached_keys)})


def service_completed(service: ServiceItem, completion: Completion, reason: str) -> Event:
    return _event(SERVICE_COMPLETED, completion.ms, {
        "reason": reason, "completed": _ended(completion.event, completion.ms),
        "disposition": completion.disposition, "disposition_desc": completion.disposition_desc,
        "duration": completion.ms - service.started_ms})


def expiration_changed(at: int, expires_ms: int) -> Event:
    return _event(SERVICE_EXPIRATION_CHANGED, at, {"expiration_time": _iso(expires_ms)})


def attached_changed(at: int, keys: list[str] | dict[str, Any], kind: str = "service",
                     child_id: int | None = None) -> Event:
    """Attached data set or removed on the service, or on a state or task (`kind`, `child_id`)."""
    data: dict[str, Any] = {"element": kind}
    if kind != "service":
        data[f"{kind}_id"] = child_id
    data["keys"] = sorted(keys)
    return _event(ATTACHED_DATA_CHANGED, at, data)


def erased(name: str, at: int, service: ServiceItem) -> Event:
    """ServiceDeleted / ServicePurged, as an erasure record carries it: the record holds many
    services, so the entry names its service and its sequence (the service's last + 1)."""
    return {**_event(name, at, {}), "service_id": service.service_id, "customer_id": service.customer_id,
            "contact_key": service.contact_key, "sequence": service.seq + 1}


def deleted(at: int) -> Event:
    """ServiceDeleted as the service item's own last write carries it (DELETE: the item becomes the
    erasure's fence): its sequence is the item's new `seq`, its owner the item's (the publisher takes
    both from the record's image)."""
    return _event(SERVICE_DELETED, at, {})


# ---------------------------------------------------------------- states and tasks


def started(child: Child) -> Event:
    """StateStarted / TaskStarted of a new state or task."""
    if isinstance(child, StateItem):
        return _event(STATE_STARTED, child.started_ms, {
            "state_id": child.state_id, "state_type": child.state_type, "previous_state_id": child.previous_state_id,
            "est_duration": child.est_duration, "started": _shown(child.started), "attached_keys": sorted(child.ext)})
    assert isinstance(child, TaskItem)
    return _event(TASK_STARTED, child.started_ms, {
        "task_id": child.task_id, "task_type": child.task_type, "state_id": child.state_id,
        "est_duration": child.est_duration, "started": _shown(child.started), "attached_keys": sorted(child.ext)})


def completed(child: Child, completion: Completion, reason: str) -> Event:
    """StateCompleted / TaskCompleted: by its own end event, or by its parent's completion (then at
    the later of the parent's end and its own start, with only a timestamp: `cascaded`)."""
    data: dict[str, Any]
    if isinstance(child, StateItem):
        data = {"state_id": child.state_id, "state_type": child.state_type}
    else:
        assert isinstance(child, TaskItem)
        data = {"task_id": child.task_id, "task_type": child.task_type, "state_id": child.state_id}
    data.update({"completed": _ended(completion.event, completion.ms), "disposition": completion.disposition,
                 "disposition_desc": completion.disposition_desc, "duration": completion.ms - child.started_ms,
                 "reason": reason})
    return _event(STATE_COMPLETED if isinstance(child, StateItem) else TASK_COMPLETED, completion.ms, data)


def cascaded(child: Child, parent_ms: int, reason: str) -> Event:
    """A state or task completed because its state or service completed at `parent_ms`."""
    return completed(child, Completion({}, max(parent_ms, child.started_ms)), reason)


def service_cascade(states: list[StateItem], tasks: list[TaskItem], at_ms: int) -> list[Event]:
    """The events of a service's completion for its active states and tasks: each state followed by
    its tasks, then the tasks in no active state; by id."""
    entries: list[Event] = []
    placed: set[int] = set()
    for state in sorted(states, key=lambda s: s.state_id):
        entries.append(cascaded(state, at_ms, SERVICE_COMPLETED_REASON))
        for task in sorted((t for t in tasks if t.state_id == state.state_id), key=lambda t: t.task_id):
            entries.append(cascaded(task, at_ms, SERVICE_COMPLETED_REASON))
            placed.add(task.task_id)
    entries += [cascaded(t, at_ms, SERVICE_COMPLETED_REASON) for t in sorted(tasks, key=lambda t: t.task_id)
                if t.task_id not in placed]
    return entries


# ---------------------------------------------------------------- writing them


def record(u: Update, entries: list[Event], token: str) -> None:
    """A write of the service item that commits `entries`: `seq` grows by their number, `ev` holds
    them, and the write carries the request's token and is conditional on not carrying it already,
    so that a retry of the same write after a lost reply fails and is recognised (no event twice)."""
    if not entries:
        return
    e = u.expr
    u.sets["seq"] = Raw(f"if_not_exists({e.name('seq')}, {e.value(0)}) + {e.value(len(entries))}")
    u.sets["ev"] = entries
    u.sets["op"] = token
    u.conditions += C.not_written_by(e, token)


def record_new(item: dict[str, Any], entries: list[Event], open_children: int) -> dict[str, Any]:
    """A new service item (its first write) with its events, its count of active children and their
    checksum (a service written otherwise, as by an import, has neither: unknown, never trusted)."""
    return {**item, "seq": len(entries), "ev": entries, "open": open_children, "open_sum": _sum_moved(entries)}


def count_open(u: Update, delta: int, entries: list[Event]) -> None:
    """The service's active states and tasks move by `delta` (a start +1, an end -1, a cascade -k),
    and their checksum by the hashes of the children `entries` start and complete."""
    e = u.expr
    if delta:
        u.sets["open"] = Raw(f"if_not_exists({e.name('open')}, {e.value(UNKNOWN_OPEN)}) + {e.value(delta)}")
    moved = _sum_moved(entries)
    if moved:
        u.sets["open_sum"] = Raw(f"if_not_exists({e.name('open_sum')}, {e.value(UNKNOWN_OPEN_SUM)}) + "
                                 f"{e.value(moved)}")


def close_all(u: Update) -> None:
    """The service completed: none of its states and tasks is active any more."""
    u.sets["open"] = 0
    u.sets["open_sum"] = 0


def child_hash(kind: str, child_id: int) -> int:
    """A state's or task's term of `open_sum`: 63 bits of a hash of its kind and id."""
    return int.from_bytes(blake2b(f"{kind}#{child_id}".encode(), digest_size=8).digest(), "big") >> 1


def open_sum(states: list[StateItem], tasks: list[TaskItem]) -> int:
    """The checksum of a set of active states and tasks, as `open_sum` keeps it."""
    return sum(child_hash("state", s.state_id) for s in states) + sum(child_hash("task", t.task_id) for t in tasks)


_MOVES = {STATE_STARTED: ("state", "state_id", 1), TASK_STARTED: ("task", "task_id", 1),
          STATE_COMPLETED: ("state", "state_id", -1), TASK_COMPLETED: ("task", "task_id", -1)}


def _sum_moved(entries: list[Event]) -> int:
    moved = 0
    for entry in entries:
        move = _MOVES.get(entry["name"])
        if move is not None:
            kind, field, sign = move
            moved += sign * child_hash(kind, int(entry["data"][field]))
    return moved

