"""Starting states and tasks (§6), transitions, and their attached data. Ids come from counters on the
service item: a start reads the service, then one transaction takes the next id (conditional on the
counter read), re-checks the service, checks the references and puts the child, so concurrent
starts never share an id and a failed start changes nothing. The service item's update carries the
change feed's events (lib.store.events)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib.errors import Conflict, NotFound, ValidationError
from lib.store import conditions as C
from lib.store import events, recording, table
from lib.store import keys as K
from lib.store.concurrency import ATTEMPTS, Write, backoff, parallel
from lib.store.ends import finish_cascade, state_end_actions, tasks_of_state
from lib.store.events import Event
from lib.store.expiration import expiration_clauses, raise_children_ttl
from lib.store.expressions import Expression, Update
from lib.store.idempotency import Claim
from lib.store.items import Child, Completion, ServiceItem, StateItem, from_plain
from lib.store.pages import read_child
from lib.store.services import AttachedMoved, activity_clauses, decode_service, not_found, stored_service
from lib.store.table import TRANSACTION_LIMIT, ConcurrentChange, ConditionFailed


@dataclass
class ChildStart:
    """What a state or task start needs checked inside its transaction."""

    kind: str  # "state" | "task"
    previous_state_id: int | None = None  # a state's predecessor: must exist
    state_id: int | None = None  # a task's state: must exist and be active
    extra: Callable[[ServiceItem, int], list[tuple[dict[str, Any], Callable[[dict[str, Any] | None], Exception]]]] | None = None


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
        u = _counter_update(w, service, seq_name, seq, child, [events.started(child)], 1)
        explain: list[Callable[[dict[str, Any] | None], Exception] | None] = [None]
        e = Expression()
        actions = [table.tx_update(u), table.tx_put(child.to_item(), C.new_item(e), e)]
        explain.append(None)
        if start.previous_state_id is not None:
            e = Expression()
            actions.append(table.tx_check(K.child_key(w.tenant, service_id, "state", start.previous_state_id),
                                          C.exists(e), e))
            explain.append(lambda old: NotFound(f"previous state {start.previous_state_id} not found"))
        if start.state_id is not None:
            actions.append(table.tx_update(_attach(w, service_id, start.state_id)))
            explain.append(lambda old: _state_unusable(start.state_id, old))
        for action, why in (start.extra(service, child_id) if start.extra else []):
            actions.append(action)
            explain.append(why)
        if claim is not None:
            actions.append(claim.put_action(child_id))
            explain.append(None)
        if _run(actions, explain, claim, w, attempt, K.child_key(w.tenant, service_id, start.kind, child_id)):
            return child_id
    raise Conflict(f"service {service_id} changed concurrently; retry")


def _read_with_record(tenant: str, service_id: str, claim: Claim | None, extra: dict[str, str] | None = None
                      ) -> tuple[ServiceItem | None, dict[str, Any] | None, dict[str, Any] | None]:
    """The service, with (in the same BatchGetItem) the request's idempotency record and one more
    item of the conversation when asked: (service, record, extra item)."""
    key = K.service_key(tenant, service_id)
    if claim is None and extra is None:
        return stored_service(table.get_stored(key)), None, None
    keys = [key] + ([claim.record_key()] if claim else []) + ([extra] if extra else [])
    found = table.get_many(keys)

    def pick(k: dict[str, str] | None) -> dict[str, Any] | None:
        return found.get((k["PK"], k["SK"])) if k else None

    return decode_service(pick(key)), pick(claim.record_key() if claim else None), pick(extra)


def _startable(w: Write, service_id: str, claim: Claim | None, service: ServiceItem | None,
               record: dict[str, Any] | None) -> ServiceItem:
    """The service a start or transition read: a request already answered under its Idempotency-Key
    replays first; then 404 when missing or expired, 409 when completed (also by auto-complete)."""
    if claim is not None:
        claim.settle(record)
    if service is None or not service.is_live(w.now):
        raise not_found(service_id)
    if service.completed_at(w.now) is not None:
        raise Conflict(f"service {service_id} is completed")
    return service


def _counter_update(w: Write, service: ServiceItem, seq_name: str, seq: int, child: Child, entries: list[Event],
                    open_delta: int, as_read: bool = False, drop_summary: bool = False) -> Update:
    """The service side of a start or transition: next id, activity, sliding expiration, the change
    feed's events and count of active children; conditional on the counter read (so concurrent
    starts never share an id), live and active, and on the children's TTL the new child gets (a
    concurrent change of expiration makes the start read again, so no child is ever erased before
    its service). `as_read`: also on the item's `seq` (nothing committed on it since it was read).
    The summary of active children follows the children the entries start and complete
    (lib.store.summary), or stops being trusted (`drop_summary`: a state end too big for one
    transaction)."""
    u = Update(key=service.key())
    e = u.expr
    u.sets[seq_name] = seq + 1
    u.sets["op"] = w.token
    u.conditions += C.live(e, w.now) + C.active(e, w.now) + C.equals(e, seq_name, seq)
    if as_read:
        u.conditions += C.seq_is(e, service.seq)
    recording.record(u, entries, w.token)
    recording.count_open(u, open_delta, entries)
    recording.track(u, service, entries, drop=drop_summary)
    activity_clauses(u, service, w.now)
    expiry = expiration_clauses(u, None, service, w.now)
    children_ttl = service.children_ttl
    if expiry is not None and children_ttl < expiry.ttl(w.now):
        children_ttl = expiry.children_ttl(w.now)
        raise_children_ttl(service, children_ttl)  # before the commit: only TTLs change
    u.conditions += C.equals(e, "children_ttl", children_ttl)
    child.expire_at = children_ttl
    return u


def _attach(w: Write, service_id: str, state_id: int) -> Update:
    """A task joins a state: the state's `attached` count moves, so a concurrent end of that state
    (conditional on the count it read) cannot miss the new task."""
    u = Update(key=K.child_key(w.tenant, service_id, "state", state_id), adds={"attached": 1}, sets={"op": w.token})
    u.conditions += C.child_active(u.expr)
    return u


def _state_unusable(state_id: int, old: dict[str, Any] | None) -> Exception:
    if old is None:
        return NotFound(f"state {state_id} not found")
    return Conflict(f"state {state_id} is completed")


def _run(actions: list[dict[str, Any]], explain: list[Callable[[dict[str, Any] | None], Exception] | None],
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



def transition(w: Write, service_id: str, from_id: int, completion: Completion,
               make: Callable[[ServiceItem, int], StateItem], claim: Claim | None) -> int:
    """End state `from_id` (with its active tasks) and start the next state, in one transaction."""
    state_key = K.child_key(w.tenant, service_id, "state", from_id)
    for attempt in range(ATTEMPTS):
        (service, record, found), tasks = parallel(lambda: _read_with_record(w.tenant, service_id, claim, state_key),
                                                   lambda: tasks_of_state(w.tenant, service_id, from_id))
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
        room = TRANSACTION_LIMIT - 2 - (1 if claim else 0)
        big = len([t for t in tasks if t.completed_ms is None]) > room - 1
        if big:  # its cascade's events from tasks read after the service item (see ends.end_state)
            tasks = tasks_of_state(w.tenant, service_id, from_id)
        active = [t for t in tasks if t.completed_ms is None]
        entries = [events.completed(state, completion, events.TRANSITION)]
        entries += [events.cascaded(t, completion.ms, events.STATE_COMPLETED_REASON) for t in active]
        entries.append(events.started(new_state))
        u = _counter_update(w, service, "state_seq", service.state_seq, new_state, entries, -len(active), big,
                            drop_summary=big)
        end_actions, rest = state_end_actions(w, service_id, from_id, tasks, completion, room)
        if rest:
            u.sets[("cascading", str(from_id))] = completion.ms
        e = Expression()
        actions = [table.tx_update(u)] + end_actions + [table.tx_put(new_state.to_item(), C.new_item(e), e)]
        explain: list[Callable[..., Any] | None] = [None] * len(actions)
        if claim is not None:
            actions.append(claim.put_action(new_id))
            explain.append(None)
        if _run(actions, explain, claim, w, attempt, K.child_key(w.tenant, service_id, "state", new_id)):
            if rest:
                finish_cascade(w, service_id, rest, completion.ms, from_id)
            return new_id
    raise Conflict(f"service {service_id} changed concurrently; retry")


# ---------------------------------------------------------------- states and tasks: attached data


def put_child_attached(w: Write, service_id: str, kind: str, child_id: int, name: str, text: str,
                       expected: str | None | bool = False) -> None:
    """Replace one attached-data key of a state or task (the service must be live; its item records
    the change's event). `expected`: the value read before (merge), or False for an unconditional
    replacement."""
    service = Update(key=K.service_key(w.tenant, service_id))
    service.conditions += C.live(service.expr, w.now)
    recording.record(service, [events.attached_changed(w.now, [name], kind, child_id)], w.token)
    live = table.tx_update(service)
    u = Update(key=K.child_key(w.tenant, service_id, kind, child_id), sets={("ext", name): text, "op": w.token})
    u.conditions += C.exists(u.expr)
    if expected is not False:
        u.conditions += (C.absent(u.expr, ("ext", name)) if expected is None
                         else C.equals(u.expr, ("ext", name), expected))
    try:
        table.confirmed(lambda: table.transact([live, table.tx_update(u)]), u.key, w.token)
    except ConditionFailed as failed:
        if any((failed.old_of(index) or {}).get("op") == w.token for index in (0, 1)):
            return  # applied before its reply was lost
        if failed.failed(0):
            raise not_found(service_id) from None
        if failed.old_of(1) is None:
            raise NotFound(f"{kind} {child_id} not found") from None
        raise AttachedMoved() from None


def merge_child_attached(w: Write, service_id: str, kind: str, child_id: int, name: str,
                         merge: Callable[[str | None], str]) -> str:
    """Apply `merge` (old JSON text or None -> new JSON text) to one attached-data key of a state or
    task; the write is conditional on the value read, retried when another write got in between."""
    for attempt in range(ATTEMPTS):
        _, child = read_child(w.tenant, service_id, kind, child_id, w.now)
        old = child.ext.get(name)
        new = merge(old)
        try:
            put_child_attached(w, service_id, kind, child_id, name, new, expected=old)
            return new
        except AttachedMoved:
            backoff(attempt)
    raise Conflict(f"attached data '{name}' changed concurrently; retry")
