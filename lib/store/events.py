"""The change feed's events as the store writes them (contract §10; docs/DESIGN.md, "Change feed").

Every committed change writes the conversation's service item in the same write or transaction,
and that write carries the change's events: `ev` (the events of this write, in order) and `seq`
(events of the service so far, absent = 0, only growing). The table's stream carries each write of
the service item; the feed's publisher (lib/feed) publishes `ev` of a record whose `seq` grew, event k
getting sequence `old seq + k`. Deletes and purges put their events on the erasure record instead
(with each service's sequence), since the service item is deleted.

One write counts some of its events apart: a service's end that takes its cascade from the summary
of active children (lib.store.summary) does not know how many there are, so it adds `open` to `cx`
(absent = 0) and its own events to `seq`. A service's events so far are `seq + cx`, and the
publisher completes that end's events from the record's images (`complete`).

This module names the events and builds their entries: {"name", "at" (occurred, epoch ms), "data"}.
Data fields are always present, null when the element has no such value; timestamps are ISO UTC with
milliseconds; ids as the API shows them. An event that comes from a start or end event occurs at
that event's timestamp; any other change at the request's time.

lib.store.recording writes them onto the service item, with its counts of active children.
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import blake2b
from typing import Any

from lib.clock import format_ms
from lib.store import summary
from lib.store.items import Child, Completion, ServiceItem, StateItem, TaskItem, from_plain
from lib.store.summary import Active

Event = dict[str, Any]

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
    entry = {**_event(name, at, {}), "service_id": service.service_id, "customer_id": service.customer_id,
             "contact_key": service.contact_key, "sequence": service.events_so_far + 1}
    if service.inc is not None:
        entry["inc"] = service.inc  # the conversation's incarnation (ServiceItem.inc)
    return entry


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


def completed(child: Child | Active, completion: Completion, reason: str) -> Event:
    """StateCompleted / TaskCompleted: by its own end event, or by its parent's completion (then at
    the later of the parent's end and its own start, with only a timestamp: `cascaded`)."""
    active = child if isinstance(child, Active) else summary.of_child(child)
    data: dict[str, Any] = {f"{active.kind}_id": active.child_id, f"{active.kind}_type": active.type}
    if active.kind == "task":
        data["state_id"] = active.state_id
    data.update({"completed": _ended(completion.event, completion.ms), "disposition": completion.disposition,
                 "disposition_desc": completion.disposition_desc, "duration": completion.ms - active.started_ms,
                 "reason": reason})
    return _event(STATE_COMPLETED if active.kind == "state" else TASK_COMPLETED, completion.ms, data)


def cascaded(child: Child | Active, parent_ms: int, reason: str) -> Event:
    """A state or task completed because its state or service completed at `parent_ms`."""
    return completed(child, Completion({}, max(parent_ms, child.started_ms)), reason)


def service_cascade(states: list[StateItem], tasks: list[TaskItem], at_ms: int) -> list[Event]:
    """The events of a service's completion for its active states and tasks (cascade_of)."""
    return cascade_of([summary.of_child(c) for c in (*states, *tasks)], at_ms)


def cascade_of(children: list[Active], at_ms: int) -> list[Event]:
    """The events of a service's completion at `at_ms` for these active states and tasks: each state
    followed by its tasks, then the tasks in no active state; by id."""
    states = sorted((c for c in children if c.kind == "state"), key=lambda c: c.child_id)
    tasks = sorted((c for c in children if c.kind == "task"), key=lambda c: c.child_id)
    entries: list[Event] = []
    placed: set[int] = set()
    for state in states:
        entries.append(cascaded(state, at_ms, SERVICE_COMPLETED_REASON))
        for task in (t for t in tasks if t.state_id == state.child_id):
            entries.append(cascaded(task, at_ms, SERVICE_COMPLETED_REASON))
            placed.add(task.child_id)
    entries += [cascaded(t, at_ms, SERVICE_COMPLETED_REASON) for t in tasks if t.child_id not in placed]
    return entries


# ---------------------------------------------------------------- completed from the summary
# An end that relies on the summary (lib.store.summary) commits events the publisher completes
# from the record's images: `from` names the summary entry a TaskCompleted takes its type, state
# and duration from (the old image's), and `cascade` marks a ServiceCompleted whose duration comes
# from the new image's start and which the old image's active children follow (cascade_of).


def task_completed_pending(task_id: int, completion: Completion, reason: str) -> Event:
    """TaskCompleted of a task known only by its id: the publisher completes it (`complete`)."""
    entry = completed(Active("task", task_id, None, completion.ms), completion, reason)
    entry["from"] = summary.key("task", task_id)
    return entry


def service_completed_pending(completion: Completion, reason: str) -> Event:
    """ServiceCompleted whose cascade is the summary's children: the publisher adds them (`complete`)."""
    entry = _event(SERVICE_COMPLETED, completion.ms, {
        "reason": reason, "completed": _ended(completion.event, completion.ms),
        "disposition": completion.disposition, "disposition_desc": completion.disposition_desc, "duration": None})
    entry["cascade"] = True
    return entry


# The most active children an end leaves the publisher to read (lib.store.recording.end_all): one
# stream record then carries up to this many events, which the publisher sends in one invocation (200
# PutEvents calls, seconds against its 55) and a retry sends again whole. An end with more, counted,
# answers 413 (lib.store.services.end_service); one without counts reads them first and commits their
# events in its own write, which DynamoDB's 400 KB item bounds at about as many (docs/DESIGN.md,
# Change feed, Limit).
CASCADE_MAX = 2_000
Read = Callable[[str], list[dict[str, Any]]]  # a conversation's pk -> its active states and tasks (stored items)


def complete(entries: list[Event], old: dict[str, Any], new: dict[str, Any], read: Read | None = None) -> list[Event]:
    """The events of a write, the pending ones completed from the record's images (old: the item
    before the write, with the summary the end relied on; new: after it) and, for a service's end
    that had no trusted summary, from its active children as `read` finds them (cascade_read).
    KeyError / ValueError when an image lacks what a pending event needs, or the children read are
    not the ones the end counted."""
    found: list[Event] = []
    act = old.get(summary.ACT) or {}
    for entry in entries:
        if "from" in entry:
            child = summary.of_entry(entry["from"], act[entry["from"]])
            data = dict(entry["data"])  # as completed() made it, the task's own values still None
            data.update({"task_type": child.type, "state_id": child.state_id,
                         "duration": entry["at"] - child.started_ms})
            found.append({"name": entry["name"], "at": entry["at"], "data": data})
        elif entry.get("cascade"):
            data = dict(entry["data"])
            data["duration"] = entry["at"] - int(new["started_ms"])
            found.append({"name": entry["name"], "at": entry["at"], "data": data})
            if summary.EXACT in old:
                found += cascade_of([summary.of_entry(name, value) for name, value in act.items()], entry["at"])
            else:
                found += cascade_of(cascade_read(old, read), entry["at"])
        else:
            found.append(entry)
    return found


def cascade_read(old: dict[str, Any], read: Read | None) -> list[Active]:
    """The active children of a service whose end relied on its counts, not on a summary (the old
    image's `open` and `open_sum`, both known: lib.store.recording.end_all): as `read` finds them,
    accepted only when they are the ones the old image counts (`counted`). Once the service is
    completed none of them changes, and the conversation's erasure and TTL wait for the publisher
    (docs/DESIGN.md, "Change feed"), so the read finds exactly the children the end counted;
    ValueError if it does not (nothing is guessed)."""
    service = from_plain(old)
    if not isinstance(service, ServiceItem):
        raise ValueError("the old image is not a service")
    if service.open == 0:
        return []
    if read is None:
        raise ValueError("the end's cascade is read from the table, and no reader was given")
    children = [from_plain(item) for item in read(service.pk)]
    states = [c for c in children if isinstance(c, StateItem)]
    tasks = [c for c in children if isinstance(c, TaskItem)]
    found = counted(service, states, tasks)
    if found is None:
        raise ValueError(f"the active children read ({len(states)} states, {len(tasks)} tasks) are not the "
                         f"{service.open} the end counted")
    return [summary.of_child(c) for c in (*found[0], *found[1])]


# ---------------------------------------------------------------- the checksum of active children


def child_hash(kind: str, child_id: int) -> int:
    """A state's or task's term of `open_sum`: 63 bits of a hash of its kind and id."""
    return int.from_bytes(blake2b(f"{kind}#{child_id}".encode(), digest_size=8).digest(), "big") >> 1


def open_sum(states: list[StateItem], tasks: list[TaskItem]) -> int:
    """The checksum of a set of active states and tasks, as `open_sum` keeps it."""
    return sum(child_hash("state", s.state_id) for s in states) + sum(child_hash("task", t.task_id) for t in tasks)


# The children a write's events start (+1) and complete (-1): the events the summary follows too.
_MOVES = {**{name: (kind, f"{kind}_id", 1) for name, kind in summary.STARTS.items()},
          **{name: (kind, f"{kind}_id", -1) for name, kind in summary.ENDS.items()}}


def not_cascading(service: ServiceItem, tasks: list[TaskItem]) -> list[TaskItem]:
    """`tasks` less those of a state whose big end is still completing them (`cascading`: their
    events come with that end)."""
    cascading = service.cascading
    return [t for t in tasks if not (t.state_id is not None and str(t.state_id) in cascading)]


UNKNOWN_OPEN = 1_000_000_000  # `open` of an item written before the counter: far from 0, never trusted
UNKNOWN_OPEN_SUM = -(10 ** 30)  # `open_sum` of an item written before it: below any sum of 63-bit hashes


def counts_known(service: ServiceItem) -> bool:
    """Whether the item's `open` and `open_sum` are counts (not an item written before them, whose
    count is UNKNOWN_OPEN and sum UNKNOWN_OPEN_SUM: lib.store.recording)."""
    return (service.open is not None and service.open < UNKNOWN_OPEN // 2 and service.open_sum is not None
            and service.open_sum >= 0)


def counted(service: ServiceItem, states: list[StateItem], tasks: list[TaskItem]
            ) -> tuple[list[StateItem], list[TaskItem]] | None:
    """`states` and `tasks` (less those `not_cascading` leaves out) when they are exactly the active
    children `service` counts: their number is its `open` and their checksum its `open_sum` (a
    child started or ended meanwhile changes the sum). None when they are not, or when the item's
    count or sum is unknown."""
    if not counts_known(service):
        return None
    tasks = not_cascading(service, tasks)
    if len(states) + len(tasks) != service.open or open_sum(states, tasks) != service.open_sum:
        return None
    return states, tasks


def sum_moved(entries: list[Event]) -> int:
    moved = 0
    for entry in entries:
        move = _MOVES.get(entry["name"])
        if move is not None:
            kind, field, sign = move
            moved += sign * child_hash(kind, int(entry["data"][field]))
    return moved

