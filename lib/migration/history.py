"""The change-feed events of an imported conversation (`cs-import --emit-events`; contract §10,
docs/DESIGN.md "Import"): what the conversation's history would have published had it happened
here, rebuilt from what the import reads.

An import publishes nothing by default: its service items carry no events (`seq` 0). Asked to, it
writes on each service item `ev`, the history below, and `seq` = its length, in the one write that
creates the service item; the feed publishes them from that write as from any other (sequences 1..n).
Entries have the feed's shape: {"name", "at" (epoch ms), "data"} with the data of each event.

The representation (§3) is a conversation's present, not its past, so the history is rebuilt:
* ServiceStarted, StateStarted, TaskStarted at their start events; StateCompleted, TaskCompleted and
  ServiceCompleted at their end events, in time order (at one moment: an element's start before its
  own end, a state's end before its tasks' cascaded ends, a transition's end before the next start,
  a service's end before the cascades it caused).
* `reason` of a completion: a state or task whose end is a bare timestamp at its service's end (or,
  for a task, its state's end) completed by that cascade ("service_completed", "state_completed"); a
  state ended at the moment its successor started, by a "transition"; anything else, and every
  service, "request" (an auto-completion shows as a plain end: the two cannot be told apart).
* Not rebuilt, for the record holds no trace of them: associations (ServiceAssociated: only today's
  customer is known), attached data changed after a start (AttachedDataChanged; the Started events
  list the keys held now), expiration changes (ServiceExpirationChanged; ServiceStarted carries the
  expiration held now).
"""

from __future__ import annotations

from typing import Any

from lib.clock import format_ms
from lib.store.items import Child, ServiceItem, StateItem, TaskItem

Event = dict[str, Any]
Name = tuple[Any, ...]  # which event: ("service", "started"), ("state", 2, "completed"), ...
REQUEST, TRANSITION = "request", "transition"
STATE_CASCADE, SERVICE_CASCADE = "state_completed", "service_completed"
LAST = float("inf")

# Order of events at one moment (see the module doc); an event also waits for the events it follows
# from (its element's start, the end that cascaded to it), whatever its place here.
_ORDER = {"ServiceStarted": 0, "own end": 1, "state cascade": 2, "StateStarted": 3, "TaskStarted": 4,
          "ServiceCompleted": 5, "service cascade": 6}


def _shown(event: dict[str, Any] | None) -> dict[str, Any]:
    return {name: value for name, value in (event or {}).items() if value is not None}


def _bare(element: ServiceItem | Child) -> bool:
    """Completed with nothing but a timestamp: how a cascade records an end."""
    return (set(_shown(element.completed)) <= {"timestamp"} and element.disposition is None
            and element.disposition_desc is None)


def _event(name: str, at: int, data: dict[str, Any]) -> Event:
    return {"name": name, "at": at, "data": data}


def _completion(element: ServiceItem | Child) -> dict[str, Any]:
    assert element.completed_ms is not None
    completed = _shown(element.completed)
    completed["timestamp"] = format_ms(element.completed_ms)
    return {"completed": completed, "disposition": element.disposition,
            "disposition_desc": element.disposition_desc, "duration": element.completed_ms - element.started_ms}


def _cascaded_at(child: Child, parent_ms: int | None) -> bool:
    return parent_ms is not None and _bare(child) and child.completed_ms == max(parent_ms, child.started_ms)


def events(service: ServiceItem, children: list[Child]) -> list[Event]:
    """The conversation's history as change-feed entries, in order (see the module doc)."""
    states = {c.state_id: c for c in children if isinstance(c, StateItem)}
    tasks = [c for c in children if isinstance(c, TaskItem)]
    successors = {s.previous_state_id: s for s in states.values() if s.previous_state_id is not None}
    timeline: list[tuple[tuple[Any, ...], Name, tuple[Name, ...], Event]] = []

    def add(at: int, phase: str, tie: tuple[Any, ...], name: Name, after: tuple[Name, ...], entry: Event) -> None:
        timeline.append(((at, _ORDER[phase], *tie), name, after, entry))

    add(service.started_ms, "ServiceStarted", (), ("service", "started"), (), _event("ServiceStarted",
        service.started_ms, {
            "service_type": service.service_type, "est_duration": service.est_duration,
            "started": _shown(service.started), "expiration_time": format_ms(service.expires_ms),
            "auto_complete_after": service.auto_complete_after, "attached_keys": sorted(service.ext)}))
    if service.completed_ms is not None:
        add(service.completed_ms, "ServiceCompleted", (), ("service", "completed"), (("service", "started"),),
            _event("ServiceCompleted", service.completed_ms, {"reason": REQUEST, **_completion(service)}))

    state_reason: dict[int, str] = {}
    for state in states.values():
        sid = state.state_id
        before: tuple[Name, ...] = (("service", "started"),)
        if state.previous_state_id in states and states[state.previous_state_id].completed_ms == state.started_ms:
            before += (("state", state.previous_state_id, "completed"),)  # a transition: the end comes first
        add(state.started_ms, "StateStarted", (sid,), ("state", sid, "started"), before, _event(
            "StateStarted", state.started_ms, {
                "state_id": sid, "state_type": state.state_type, "previous_state_id": state.previous_state_id,
                "est_duration": state.est_duration, "started": _shown(state.started),
                "attached_keys": sorted(state.ext)}))
        if state.completed_ms is None:
            continue
        after: tuple[Name, ...] = (("state", sid, "started"),) + tuple(
            ("task", t.task_id, "started") for t in tasks if t.state_id == sid and t.started_ms <= state.completed_ms)
        if _cascaded_at(state, service.completed_ms):
            reason, phase, after = SERVICE_CASCADE, "service cascade", (*after, ("service", "completed"))
        elif sid in successors and successors[sid].started_ms == state.completed_ms:
            reason, phase = TRANSITION, "own end"
        else:
            reason, phase = REQUEST, "own end"
        state_reason[sid] = reason
        add(state.completed_ms, phase, (sid, 0), ("state", sid, "completed"), after, _event(
            "StateCompleted", state.completed_ms, {
                "state_id": sid, "state_type": state.state_type, **_completion(state), "reason": reason}))

    for task in tasks:
        tid = task.task_id
        in_state = states.get(task.state_id) if task.state_id is not None else None
        before = (("service", "started"),) + ((("state", in_state.state_id, "started"),) if in_state else ())
        add(task.started_ms, "TaskStarted", (tid,), ("task", tid, "started"), before, _event(
            "TaskStarted", task.started_ms, {
                "task_id": tid, "task_type": task.task_type, "state_id": task.state_id,
                "est_duration": task.est_duration, "started": _shown(task.started), "attached_keys": sorted(task.ext)}))
        if task.completed_ms is None:
            continue
        after = (("task", tid, "started"),)
        if _cascaded_at(task, service.completed_ms) and (in_state is None or state_reason.get(in_state.state_id)
                                                          in (None, SERVICE_CASCADE)):
            reason, phase, after = SERVICE_CASCADE, "service cascade", (*after, ("service", "completed"))
        elif in_state is not None and _cascaded_at(task, in_state.completed_ms):
            reason, phase, after = STATE_CASCADE, "state cascade", (*after, ("state", in_state.state_id, "completed"))
        else:
            reason, phase = REQUEST, "own end"
        add(task.completed_ms, phase, (in_state.state_id if in_state else LAST, 1, tid), ("task", tid, "completed"),
            after,
            _event("TaskCompleted", task.completed_ms, {
                "task_id": tid, "task_type": task.task_type, "state_id": task.state_id, **_completion(task),
                "reason": reason}))

    return _in_order(sorted(timeline, key=lambda entry: entry[0]))


def _in_order(timeline: list[tuple[tuple[Any, ...], Name, tuple[Name, ...], Event]]) -> list[Event]:
    """The time order, except that an event waits for the events it follows from (an element ended at
    the moment it started: its start first)."""
    done: set[Name] = set()
    known = {name for _, name, _, _ in timeline}
    waiting: list[tuple[Name, tuple[Name, ...], Event]] = []
    ordered: list[Event] = []

    def ready(after: tuple[Name, ...]) -> bool:
        return all(name in done or name not in known for name in after)

    for _, name, after, entry in timeline:
        waiting.append((name, after, entry))
        progressed = True
        while progressed:
            progressed = False
            for index, (n, a, e) in enumerate(waiting):
                if ready(a):
                    ordered.append(e)
                    done.add(n)
                    del waiting[index]
                    progressed = True
                    break
    ordered += [entry for _, _, entry in waiting]  # (never: the records' times admit an order)
    return ordered
