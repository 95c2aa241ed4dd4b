"""Ending states and tasks (§6), and the cascades that complete a state's tasks with it. A state's end
is written with its tasks' ends in the same transaction (write-time cascade), so a task's own item
says whether it completed; a service's end is applied on read (lib.rules.conversation).

Every end also updates the service item in its transaction (conditions: live, active), which carries
the change feed's events (lib.store.events): the element's completion, then its cascade; and keeps
the summary of active children (lib.store.summary). A task's end relies on that summary for its
event's type, state and start, so its one transaction is sent at once, with the read of the task
that the end needs only when the summary does not hold it: 1 round trip, 2 without the summary."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lib.clock import format_ms
from lib.errors import Conflict, NotFound, ValidationError
from lib.store import conditions as C
from lib.store import events, recording, table
from lib.store import keys as K
from lib.store.concurrency import ATTEMPTS, Write, backoff, held, parallel
from lib.store.events import Event
from lib.store.expressions import Query, Update
from lib.store.items import Completion, ServiceItem, StateItem, TaskItem, from_plain
from lib.store.services import decode_service, not_found
from lib.store.table import TRANSACTION_LIMIT, ConcurrentChange, ConditionFailed

log = logging.getLogger(__name__)


def _end_child_update(w: Write, service_id: str, kind: str, child_id: int, completion: Completion,
                      state_attached: int | None = None) -> Update:
    """The Update recording an end event on a state or task (its status key moves to completed)."""
    event = dict(completion.event)
    event["timestamp"] = format_ms(completion.ms)
    u = Update(key=K.child_key(w.tenant, service_id, kind, child_id))
    e = u.expr
    u.sets.update({"completed": event, "completed_ms": completion.ms, "disposition": completion.disposition,
                   "disposition_desc": completion.disposition_desc, "op": w.token,
                   "LSI1SK": K.status_sk(kind, True, child_id)})
    for key, text in completion.attached.items():
        u.sets[("ext", key)] = text
    u.conditions += C.child_active(e) + C.at_most(e, "started_ms", completion.ms)
    if state_attached is not None:
        u.conditions += C.equals(e, "attached", state_attached)
    return u


def _cascade_update(w: Write, task: TaskItem, at_ms: int) -> dict[str, Any]:
    """A task completed because its state completed: at the later of the state's end and its own start."""
    return table.tx_update(_end_child_update(w, task.service_id, "task", task.task_id,
                                             Completion({}, max(at_ms, task.started_ms))))


def _explain_end(kind: str, child_id: int, old: dict[str, Any] | None) -> Exception:
    if old is None:
        return NotFound(f"{kind} {child_id} not found")
    if old.get("completed_ms") is not None:
        return Conflict(f"{kind} {child_id} is already completed")
    return ValidationError(f"timestamp: the end is before the {kind}'s start")


def _service_write(w: Write, service_id: str, entries: list[Event], open_delta: int, guard: int | None = None,
                   cascading: tuple[int, int] | None = None, seq: int | None = None,
                   known: ServiceItem | None = None, by_summary: int | None = None
                   ) -> tuple[dict[str, Any], Callable[..., Any]]:
    """Transaction action on the service item: it is live and active, and it records the end's
    events and moves its count of active children. `guard`: with 0, also no state end in flight
    anywhere in the conversation; with a state id, none for that state. `cascading`: (state id, end
    ms) of a big state end, marked in flight. `seq`: the item is as read (a big state's cascade read
    after it). `known`: the item as read, whose summary of active children the write keeps (None:
    not read, the write stops trusting it); `by_summary`: a task whose end relies on the summary
    (conditional on it holding the task). Without events or mark (an end that will be refused), a
    ConditionCheck."""
    u = Update(key=K.service_key(w.tenant, service_id))
    e = u.expr
    u.conditions += C.live(e, w.now) + C.active(e, w.now)
    if guard == 0:
        u.conditions += C.no_cascade(e)
    elif guard is not None:
        u.conditions += C.absent(e, ("cascading", str(guard)))
    if seq is not None:
        u.conditions += C.seq_is(e, seq)
    if cascading is not None:
        u.sets[("cascading", str(cascading[0]))] = cascading[1]
        u.sets["op"] = w.token
    recording.record(u, entries, w.token)
    recording.count_open(u, open_delta, entries)
    if by_summary is not None:
        recording.end_one(u, "task", by_summary)
    else:
        recording.track(u, known, entries, drop=cascading is not None)
    action = table.tx_update(u) if u.sets else table.tx_check(u.key, u.conditions, e)
    return action, lambda old: _service_unusable(service_id, old, w.now)


def _missing(w: Write, service_id: str, kind: str, child_id: int) -> Exception:
    """The error for ending a state or task that does not exist: its service's 404 first."""
    service = decode_service(table.get(K.service_key(w.tenant, service_id)))
    if service is None or not service.is_live(w.now):
        return not_found(service_id)
    return NotFound(f"{kind} {child_id} not found")


def _service_unusable(service_id: str, old: dict[str, Any] | None, now: int) -> Exception:
    service = decode_service(old)
    if service is None or not service.is_live(now):
        return not_found(service_id)
    if service.completed_at(now) is not None:
        return Conflict(f"service {service_id} is completed, and so are its states and tasks")
    return ConcurrentChange()


def tasks_of_state(tenant: str, service_id: str, state_id: int) -> list[TaskItem]:
    """Every task of a state, active or completed, from one consistent Query of LSI2."""
    low, high = K.state_tasks_range(state_id)
    items = Query(K.conversation_pk(tenant, service_id), index=K.STATE_TASKS_INDEX, sk_from=low, sk_to=high,
                  consistent=True).all()
    return [task for task in (from_plain(item) for item in items) if isinstance(task, TaskItem)]


def state_end_actions(w: Write, service_id: str, state_id: int, tasks: list[TaskItem], completion: Completion,
                      room: int) -> tuple[list[dict[str, Any]], list[TaskItem]]:
    """The state's end and as many of its active tasks' cascaded ends as fit in `room` actions;
    returns the tasks left over (a big state: see end_state). The state's end is conditional on
    its `attached` count being the number of tasks read: a task attached since is never missed."""
    active = [t for t in tasks if t.completed_ms is None]
    actions = [table.tx_update(_end_child_update(w, service_id, "state", state_id, completion,
                                                 state_attached=len(tasks)))]
    fits, rest = active[:room - 1], active[room - 1:]
    actions += [_cascade_update(w, task, completion.ms) for task in fits]
    return actions, rest


def end_state(w: Write, service_id: str, state_id: int, completion: Completion) -> None:
    """End a state and, in the same transaction, its active tasks (write-time cascade: a task's own
    item then says it completed, so task lists read only tasks). Conditional on the state's
    `attached` count, so a task started meanwhile is never left active in a completed state.
    A state with more active tasks than one transaction holds (98) completes the rest in further
    transactions; meanwhile the service item lists the state under `cascading`, which every read
    applies, so no reader sees an active task in a completed state."""
    state_key = K.child_key(w.tenant, service_id, "state", state_id)
    room = TRANSACTION_LIMIT - 1
    service_key = K.service_key(w.tenant, service_id)
    for attempt in range(ATTEMPTS):
        # The service item too, for its summary of active children (the end keeps it).
        tasks, state, service = parallel(lambda: tasks_of_state(w.tenant, service_id, state_id),
                                         lambda: from_plain(table.get(state_key)),
                                         lambda: decode_service(table.get(service_key)))
        if not isinstance(state, StateItem):
            raise _missing(w, service_id, "state", state_id)
        seq = None
        if len([t for t in tasks if t.completed_ms is None]) > room - 1:
            # A big state: its cascade's events are all committed with its end, from tasks read
            # after the service item, and the end is conditional on the item's `seq`: a task that
            # ends meanwhile (outside this transaction) makes it read again.
            service = decode_service(table.get(service_key))
            seq = service.seq if service is not None else 0
            tasks = tasks_of_state(w.tenant, service_id, state_id)
        actions, rest = state_end_actions(w, service_id, state_id, tasks, completion, room)
        active = [t for t in tasks if t.completed_ms is None]
        entries = _state_end_events(state, active, completion, events.REQUEST)
        first, why = _service_write(w, service_id, entries, -(1 + len(active)) if entries else 0,
                                    cascading=(state_id, completion.ms) if rest else None, seq=seq, known=service)
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
            finish_cascade(w, service_id, rest, completion.ms, state_id)
        return
    raise Conflict(f"state {state_id} changed concurrently; retry")


def _state_end_events(state: StateItem, active: list[TaskItem], completion: Completion, reason: str) -> list[Event]:
    """A state's completion, its active tasks' (cascade), then its end event's attached data. None
    when the end will be refused (already completed, or before its start)."""
    if state.completed_ms is not None or completion.ms < state.started_ms:
        return []
    entries = [events.completed(state, completion, reason)]
    entries += [events.cascaded(task, completion.ms, events.STATE_COMPLETED_REASON) for task in active]
    if completion.attached:
        entries.append(events.attached_changed(completion.ms, completion.attached, "state", state.state_id))
    return entries


def finish_cascade(w: Write, service_id: str, tasks: list[TaskItem], at_ms: int, state_id: int) -> None:
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
                    table.transact([_cascade_update(w, t, at_ms) for t in chunk])
                except (ConditionFailed, ConcurrentChange):
                    interrupted = True
            if not interrupted:
                break
            backoff(attempt)
            pending = [t for t in tasks_of_state(w.tenant, service_id, state_id) if t.completed_ms is None]
        else:
            log.warning("cascade of state %s of %s left marked; reads apply it", state_id, service_id)
            return
        # The mark goes, and so does the end's `ev` (its events were committed with the end; `seq`
        # does not move, so the feed ignores this write): the item shrinks back to its usual size.
        u = Update(key=K.service_key(w.tenant, service_id), removes=[("cascading", str(state_id)), "ev"])
        u.conditions += C.exists(u.expr)
        try:
            table.update(u)
        except ConditionFailed:
            pass
    except Exception:  # after the commit point: the mark stays, reads apply it
        log.warning("cascade of state %s of %s interrupted; reads apply its mark", state_id, service_id,
                    exc_info=True)


def end_task(w: Write, service_id: str, task_id: int, completion: Completion) -> None:
    """End a task: one transaction (the service live and active, the task active). A task of a
    completed state is completed already (its state's end wrote it), hence a 409; only while a big
    state end is in flight does the service item have to say so (`cascading`).

    The transaction that relies on the service's summary of active children for the task's type,
    state and start (lib.store.summary) is sent at once with the read of the task: when the summary
    holds the task, the end is that one round trip; otherwise the read gives the event's values and
    the end is committed with them, as before the summary (its write stops trusting the summary)."""
    task_key = K.child_key(w.tenant, service_id, "task", task_id)
    outcome, stored = parallel(lambda: _end_task_by_summary(w, service_id, task_id, completion),
                               held(lambda: table.get(task_key)))
    if outcome is True:
        return
    if isinstance(outcome, Exception):
        raise outcome
    if isinstance(stored, Exception):
        stored = table.get(task_key)  # that read failed: once more, now that it is needed
    task = from_plain(stored)  # its type, state and start go into its event
    if not isinstance(task, TaskItem):
        raise _missing(w, service_id, "task", task_id)
    entries: list[Event] = []
    if task.completed_ms is None and completion.ms >= task.started_ms:
        entries = [events.completed(task, completion, events.REQUEST)]
        if completion.attached:
            entries.append(events.attached_changed(completion.ms, completion.attached, "task", task_id))
    guard = 0
    for attempt in range(ATTEMPTS):
        check, why = _service_write(w, service_id, entries, -1 if entries else 0, guard)
        action = table.tx_update(_end_child_update(w, service_id, "task", task_id, completion))
        try:
            table.confirmed(lambda: table.transact([check, action]), task_key, w.token)
            return
        except ConcurrentChange:
            backoff(attempt)
            continue
        except ConditionFailed as failed:
            verdict = _task_end_refused(w, task_id, failed, why)
            if verdict is True:
                return
            if verdict is None:
                backoff(attempt)
                continue
            if not isinstance(verdict, ConcurrentChange):
                raise verdict from None
            # A state end is in flight (or was interrupted): is it this task's state?
            service = decode_service(failed.old_of(0))
            task = from_plain(table.get(task_key))
            if not isinstance(task, TaskItem):
                raise NotFound(f"task {task_id} not found") from None
            if task.state_id is not None and str(task.state_id) in service.cascading:
                resume_cascade(w, service, task.state_id)
                raise Conflict(f"task {task_id} is already completed (its state is completed)") from None
            guard = task.state_id  # None: no state, no cascade can concern it
    raise Conflict(f"task {task_id} changed concurrently; retry")


def _end_task_by_summary(w: Write, service_id: str, task_id: int, completion: Completion) -> bool | Exception | None:
    """The task's end as one transaction relying on the summary for its event (completed by the
    publisher, lib.store.events.task_completed_pending): True when committed, the error to answer
    when refused for a reason of the service or the task, None when the summary cannot serve (not
    trusted, not holding the task, a state end in flight, a concurrent change): then end_task goes on
    with the task it read."""
    entries = [events.task_completed_pending(task_id, completion, events.REQUEST)]
    if completion.attached:
        entries.append(events.attached_changed(completion.ms, completion.attached, "task", task_id))
    for attempt in range(2):  # a conflict with another write of the item: once more (nothing was committed)
        check, why = _service_write(w, service_id, entries, -1, 0, by_summary=task_id)
        action = table.tx_update(_end_child_update(w, service_id, "task", task_id, completion))
        try:
            table.confirmed(lambda: table.transact([check, action]),
                            K.child_key(w.tenant, service_id, "task", task_id), w.token)
            return True
        except ConcurrentChange:
            backoff(attempt)
        except ConditionFailed as failed:
            verdict = _task_end_refused(w, task_id, failed, why)
            return None if verdict is None or isinstance(verdict, ConcurrentChange) else verdict
    return None


def _task_end_refused(w: Write, task_id: int, failed: ConditionFailed, why: Callable[..., Exception]
                      ) -> bool | Exception | None:
    """What a refused task end means: True (it was ours, applied before its reply was lost), the
    error to answer, None (the service item changed meanwhile: try again), or a ConcurrentChange
    (the service is live and active but refused the write: a state end may be in flight)."""
    task_old = failed.old_of(1)
    if task_old is not None and task_old.get("op") == w.token:
        return True
    # The service first: an expired or deleted service is a 404 whatever its task's state.
    error = why(failed.old_of(0)) if failed.failed(0) else None
    if isinstance(error, NotFound):
        return error
    if failed.failed(1) and (task_old is None or error is None or isinstance(error, ConcurrentChange)):
        return _explain_end("task", task_id, task_old)
    if error is None:
        return None
    if not isinstance(error, ConcurrentChange):
        return Conflict(f"task {task_id} is already completed (its service is completed)")
    return error


def resume_cascade(w: Write, service: ServiceItem, state_id: int) -> None:
    """Finish a big state end that stopped half-way (its mark stays on the service until done)."""
    at_ms = service.cascading.get(str(state_id))
    if at_ms is None:
        return
    tasks = tasks_of_state(service.tenant, service.service_id, state_id)
    finish_cascade(w, service.service_id, [t for t in tasks if t.completed_ms is None], at_ms, state_id)
