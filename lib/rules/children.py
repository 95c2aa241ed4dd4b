"""States and tasks of a service (§6): start, end, transition, reads and lists.

Ids: `state_id` / `task_id` come from counters on the service item, incremented by the same
conditional UpdateItem that checks the service is live and active (and slides its expiration), so
concurrent starts can never share an id. The new item is then written in a transaction that checks
the service again (still active) and, where it matters, the state the new item refers to. A start
that fails after taking an id leaves a gap in the numbering, never a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib import clock, paging, store
from lib.clock import parse_timestamp
from lib.errors import Conflict, NotFound, ValidationError
from lib.models import CommonFields, EndFields, StateStart, TaskStart, Transition
from lib.rules import expiration, services
from lib.rules.conversation import Conversation, Selection


@dataclass(frozen=True)
class Kind:
    name: str
    seq: str
    id_field: str
    type_field: str
    sk: Callable[[int], str]


STATE = Kind("state", "state_seq", "state_id", "state_type", store.state_sk)
TASK = Kind("task", "task_seq", "task_id", "task_type", store.task_sk)


# ---------------------------------------------------------------- shared pieces


def allocate_id(tenant: str, service_id: str, kind: Kind, now: int) -> tuple[int, dict[str, Any]]:
    """Take the next id of `kind` in a live, active service; returns (id, service item after)."""

    def build(op: store.Update, known: dict[str, Any] | None) -> list[str]:
        if known is not None and known.get("completed_ms") is not None:
            raise Conflict(f"service {service_id} is completed")
        op.adds[kind.seq] = 1
        return [f"attribute_not_exists({op.expr.name('completed_ms')})"] + expiration.write_clauses(op, None, known, now)

    service = services.write_service(tenant, service_id, build, now)
    return service[kind.seq], service


def service_check(pk: str, now: int) -> dict[str, Any]:
    """Transaction action: the service exists, is live and is not completed."""
    e = store.Expression()
    condition = (f"attribute_exists({e.name('PK')}) AND {e.name('expires_ms')} > {e.value(now)} "
                 f"AND attribute_not_exists({e.name('completed_ms')})")
    return store.tx_check(pk, store.SERVICE_SK, condition, e)


def state_check(pk: str, state_id: int) -> dict[str, Any]:
    """Transaction action: the state exists and has not ended by itself."""
    e = store.Expression()
    condition = f"attribute_exists({e.name('PK')}) AND attribute_not_exists({e.name('completed_ms')})"
    return store.tx_check(pk, store.state_sk(state_id), condition, e)


def explain_service_failure(service_id: str, old: dict[str, Any] | None, now: int) -> Exception:
    if not services.is_live(old, now):
        return NotFound(f"service {service_id} not found")
    return Conflict(f"service {service_id} is completed")


def explain_state_failure(state_id: int, old: dict[str, Any] | None) -> Exception:
    if old is None:
        return NotFound(f"state {state_id} not found")
    return Conflict(f"state {state_id} is completed")


def run(actions: list[dict[str, Any]], explain: list[Callable[[dict[str, Any] | None], Exception] | None]) -> None:
    """Run a transaction; turn the first failed condition into the matching domain error."""
    try:
        store.transact(actions)
    except store.ConditionFailed as failed:
        for (code, old), explainer in zip(failed.reasons, explain):
            if code == "ConditionalCheckFailed" and explainer is not None:
                raise explainer(old) from None
        raise Conflict("concurrent change; retry") from None


def new_item(kind: Kind, pk: str, service_id: str, child_id: int, body: CommonFields, fields: dict[str, Any],
             started_ms: int, ttl: int) -> dict[str, Any]:
    return {
        "PK": pk,
        "SK": kind.sk(child_id),
        kind.id_field: child_id,
        "service_id": service_id,
        **fields,
        "started": services.event_map(body.event_fields(), started_ms),
        "started_ms": started_ms,
        "ext": {k: services.json_text(v) for k, v in body.attached_data().items()},
        store.TTL_ATTRIBUTE: ttl,
    }


def children_ttl(service: dict[str, Any]) -> int:
    return max(service.get("children_ttl") or 0, service.get(store.TTL_ATTRIBUTE) or 0)


def end_update(kind: Kind, pk: str, child_id: int, body: EndFields, completed_ms: int) -> store.Update:
    """The Update that records an end event on a state or task (fails if missing or ended)."""
    op = store.Update(key={"PK": pk, "SK": kind.sk(child_id)})
    op.sets.update({
        "completed": services.event_map(body.event_fields(), completed_ms),
        "completed_ms": completed_ms,
        "disposition": body.disposition,
        "disposition_desc": body.disposition_desc,
    })
    services.ext_sets(op, body.attached_data())
    e = op.expr
    op.condition = (f"attribute_exists({e.name('PK')}) AND attribute_not_exists({e.name('completed_ms')}) "
                    f"AND {e.name('started_ms')} <= {e.value(completed_ms)}")
    return op


def explain_end_failure(kind: Kind, child_id: int, old: dict[str, Any] | None) -> Exception:
    if old is None:
        return NotFound(f"{kind.name} {child_id} not found")
    if old.get("completed_ms") is not None:
        return Conflict(f"{kind.name} {child_id} is already completed")
    return ValidationError(f"timestamp: the end is before the {kind.name}'s start")


# ---------------------------------------------------------------- states


Check = tuple[dict[str, Any], "Callable[[dict[str, Any] | None], Exception] | None"]


Checks = Callable[[str, int], list[Check]]


def create(tenant: str, service_id: str, kind: Kind, body: CommonFields, fields: dict[str, Any],
           checks: Checks = lambda pk, child_id: []) -> int:
    """Start a state or task: take an id, then one transaction that checks the service is still
    active, runs the extra `checks` (built from the conversation's key and the new id) and puts the item."""
    services.check_service_id(service_id)
    now = clock.now_ms()
    started_ms = services.event_time(body.timestamp, now)
    child_id, service = allocate_id(tenant, service_id, kind, now)
    pk = service["PK"]
    steps: list[Check] = [(service_check(pk, now), lambda old: explain_service_failure(service_id, old, now))]
    steps += checks(pk, child_id)
    item = new_item(kind, pk, service_id, child_id, body, fields, started_ms, children_ttl(service))
    steps.append((store.tx_put(item), None))
    run([action for action, _ in steps], [explain for _, explain in steps])
    return child_id


def start_state(tenant: str, service_id: str, body: StateStart, checks: Checks | None = None) -> int:
    """Start a state: its id. 409 on a completed service, 404 if `previous_state_id` is unknown."""
    fields = {"state_type": body.state_type, "previous_state_id": body.previous_state_id,
              "est_duration": body.est_duration}

    def all_checks(pk: str, child_id: int) -> list[Check]:
        found: list[Check] = []
        if body.previous_state_id is not None:
            if body.previous_state_id >= child_id:
                raise NotFound(f"previous state {body.previous_state_id} not found")  # not started yet
            found.append((_exists_check(pk, store.state_sk(body.previous_state_id)),
                          lambda old: NotFound(f"previous state {body.previous_state_id} not found")))
        return found + (checks(pk, child_id) if checks else [])

    return create(tenant, service_id, STATE, body, fields, all_checks)


def _exists_check(pk: str, sk: str) -> dict[str, Any]:
    e = store.Expression()
    return store.tx_check(pk, sk, f"attribute_exists({e.name('PK')})", e)


def end_state(tenant: str, service_id: str, state_id: int, body: EndFields | None) -> None:
    """End a state; its active tasks are completed with it (read-time cascade). One transaction."""
    services.check_service_id(service_id)
    body = body or EndFields()
    now = clock.now_ms()
    completed_ms = services.event_time(body.timestamp, now)
    pk = store.conversation_pk(tenant, service_id)
    run([service_check(pk, now), store.tx_update(end_update(STATE, pk, state_id, body, completed_ms))],
        [lambda old: _ended_with_service(service_id, STATE, state_id, old, now),
         lambda old: explain_end_failure(STATE, state_id, old)])


def _ended_with_service(service_id: str, kind: Kind, child_id: int, old: dict[str, Any] | None, now: int) -> Exception:
    """A state or task of a completed service is completed too, so ending it is a 409."""
    if not services.is_live(old, now):
        return NotFound(f"service {service_id} not found")
    return Conflict(f"{kind.name} {child_id} is already completed (its service is completed)")


def transition(tenant: str, service_id: str, body: Transition) -> int:
    """Complete `from` and start `to` atomically; returns the new state's id."""
    services.check_service_id(service_id)
    now = clock.now_ms()
    at = services.event_time(body.timestamp, now)
    state_id, service = allocate_id(tenant, service_id, STATE, now)
    pk = service["PK"]
    old_state = body.from_.state_id
    if old_state >= state_id:
        raise NotFound(f"state {old_state} not found")  # ids are given in order: it was never started
    end = EndFields.model_validate({**body.event_fields(), "disposition": body.from_.disposition,
                                    "disposition_desc": body.from_.disposition_desc})
    fields = {"state_type": body.to.state_type, "previous_state_id": old_state, "est_duration": body.to.est_duration}
    new_state = new_item(STATE, pk, service_id, state_id, body, fields, at, children_ttl(service))
    run([service_check(pk, now), store.tx_update(end_update(STATE, pk, old_state, end, at)), store.tx_put(new_state)],
        [lambda old: explain_service_failure(service_id, old, now),
         lambda old: explain_end_failure(STATE, old_state, old), None])
    return state_id


# ---------------------------------------------------------------- tasks


def start_task(tenant: str, service_id: str, body: TaskStart, checks: Checks | None = None) -> int:
    """Start a task, optionally attached to a state (unknown state 404, completed state 409)."""
    fields = {"task_type": body.task_type, "state_id": body.state_id, "est_duration": body.est_duration}

    def all_checks(pk: str, child_id: int) -> list[Check]:
        found: list[Check] = []
        if body.state_id is not None:
            found.append((state_check(pk, body.state_id), lambda old: explain_state_failure(body.state_id, old)))
        return found + (checks(pk, child_id) if checks else [])

    return create(tenant, service_id, TASK, body, fields, all_checks)


def end_task(tenant: str, service_id: str, task_id: int, body: EndFields | None) -> None:
    """End a task. Reads the task first: if it belongs to a state, that state must not have ended
    (its tasks ended with it), which only a read can tell."""
    services.check_service_id(service_id)
    body = body or EndFields()
    now = clock.now_ms()
    completed_ms = services.event_time(body.timestamp, now)
    pk = store.conversation_pk(tenant, service_id)
    task = store.get(pk, store.task_sk(task_id))
    if task is None:
        raise NotFound(f"task {task_id} not found")
    actions = [service_check(pk, now)]
    explain: list[Any] = [lambda old: _ended_with_service(service_id, TASK, task_id, old, now)]
    if task.get("state_id") is not None:
        actions.append(state_check(pk, task["state_id"]))
        explain.append(lambda old: Conflict(f"task {task_id} is already completed (its state is completed)"))
    actions.append(store.tx_update(end_update(TASK, pk, task_id, body, completed_ms)))
    explain.append(lambda old: explain_end_failure(TASK, task_id, old))
    run(actions, explain)


# ---------------------------------------------------------------- reads


def get_state(tenant: str, service_id: str, state_id: int, selection: Selection) -> dict[str, Any]:
    """One state; with embedded tasks it is one Query of the conversation, else one BatchGetItem."""
    conversation = _load_with(tenant, service_id, [store.state_sk(state_id)], selection.embeds_tasks)
    state = conversation.states.get(state_id)
    if state is None:
        raise NotFound(f"state {state_id} not found")
    return conversation.state_view(state, selection)


def get_task(tenant: str, service_id: str, task_id: int, selection: Selection) -> dict[str, Any]:
    """One task (BatchGetItem of service and task; plus its state when the task is still active, to
    apply the state's end)."""
    conversation = _load_with(tenant, service_id, [store.task_sk(task_id)], False)
    task = conversation.tasks.get(task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    if task.get("completed_ms") is None and task.get("state_id") is not None and conversation.service_completed_ms is None:
        state = store.get(conversation.service["PK"], store.state_sk(task["state_id"]))
        if state is not None:
            conversation.states[state["state_id"]] = state
    return conversation.task_view(task, selection)


def _load_with(tenant: str, service_id: str, sks: list[str], whole: bool) -> Conversation:
    if whole:
        return services.load(tenant, service_id, with_children=True)
    services.check_service_id(service_id)
    now = clock.now_ms()
    pk = store.conversation_pk(tenant, service_id)
    found = store.get_many([(pk, store.SERVICE_SK)] + [(pk, sk) for sk in sks])
    return services.require_live(Conversation.from_items(list(found.values())), service_id, now)


@dataclass
class ChildQuery:
    status: str | None  # None, store.ACTIVE, store.COMPLETED
    types: str | None = None
    state_id: int | None = None  # tasks only
    started_from: str | None = None  # inclusive
    started_to: str | None = None  # exclusive
    limit: int = 100
    page_token: str | None = None


def list_children(tenant: str, service_id: str, kind: Kind, query: ChildQuery,
                  selection: Selection) -> tuple[list[dict[str, Any]], str | None]:
    """States or tasks of a service, by id. One Query of the conversation's item collection: a
    child's status depends on its service's (and, for tasks, its state's) end, so the service (and
    for tasks the states) are read with the children and the status filter is applied here."""
    # States need only the service (its end completes them); tasks also need the states.
    through = store.STATE_PREFIX if kind is STATE else store.TASK_PREFIX
    conversation = services.load(tenant, service_id, with_children=True, through=through)
    types = services.parse_types(query.types)
    window_from = parse_timestamp(query.started_from, "started_from") if query.started_from else None
    window_to = parse_timestamp(query.started_to, "started_to") if query.started_to else None
    scope = paging.fingerprint(tenant, service_id, kind.name, query.status, types, query.state_id, window_from,
                               window_to)
    resume = paging.decode(query.page_token, scope)
    after = resume.get("id", 0) if resume else 0
    rows, completed = conversation.of_kind(kind.name)
    chosen = []
    for child_id in sorted(rows):
        item = rows[child_id]
        if child_id <= after or (types and item.get(kind.type_field) not in types):
            continue
        if kind is TASK and query.state_id is not None and item.get("state_id") != query.state_id:
            continue
        if (window_from is not None and item["started_ms"] < window_from) or (
                window_to is not None and item["started_ms"] >= window_to):
            continue
        done = completed(item) is not None
        if (query.status == store.ACTIVE and done) or (query.status == store.COMPLETED and not done):
            continue
        chosen.append(item)
        if len(chosen) > query.limit:
            break
    page, more = chosen[:query.limit], len(chosen) > query.limit
    view = conversation.state_view if kind is STATE else conversation.task_view
    token = paging.encode({"id": page[-1][kind.id_field]}, scope) if more else None
    return [view(item, selection) for item in page], token


# ---------------------------------------------------------------- deprecated extension PUTs


def put_extension(tenant: str, service_id: str, kind: Kind, child_id: int, name: str, value: Any) -> None:
    """Replace one attached-data key of a state or task (the service must be live)."""
    services.check_service_id(service_id)
    services.check_extension_name(name)
    now = clock.now_ms()
    pk = store.conversation_pk(tenant, service_id)
    op = store.Update(key={"PK": pk, "SK": kind.sk(child_id)})
    services.ext_sets(op, {name: value})
    op.condition = f"attribute_exists({op.expr.name('PK')})"
    e = store.Expression()
    live = store.tx_check(pk, store.SERVICE_SK,
                          f"attribute_exists({e.name('PK')}) AND {e.name('expires_ms')} > {e.value(now)}", e)
    run([live, store.tx_update(op)],
        [lambda old: NotFound(f"service {service_id} not found"),
         lambda old: NotFound(f"{kind.name} {child_id} not found")])
