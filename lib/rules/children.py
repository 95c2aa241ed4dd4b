"""States and tasks (§6): start, end, transition, read, list. Ids come from counters on the service
item, taken inside the transaction that creates the child (lib.store.conversations.start_child)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lib import clock, paging
from lib.errors import ValidationError
from lib.models import EndFields, StateStart, TaskStart, Transition
from lib.rules.conversation import Conversation, Selection, fill_page, fits_whole
from lib.rules.services import (
    MAX_ID,
    PATH_ID,
    check_service_id,
    completion,
    event_map,
    event_time,
    parse_types,
    texts,
    time_window,
)
from lib.status import Status
from lib.store import ends, pages, starts
from lib.store.concurrency import Write, parallel
from lib.store.idempotency import Claim
from lib.store.items import Completion, ServiceItem, StateItem, TaskItem

KINDS = ("state", "task")


def check_child_id(kind: str, value: str | int) -> int:
    """A state or task id in a path: decimal digits without sign, leading zero or separators (§1)."""
    text = str(value)
    if not PATH_ID.fullmatch(text) or int(text) > MAX_ID:  # 19 digits reach past 64 bits
        raise ValidationError(f"{kind}_id: must be a positive 64-bit integer, written in digits")
    return int(text)


# ---------------------------------------------------------------- start


def state_item(tenant: str, service_id: str, body: StateStart, state_id: int, now: int) -> StateItem:
    """The stored form of a new state (composite start puts it in its own transaction)."""
    started_ms = event_time(body.timestamp, now)
    return StateItem.trusted(tenant=tenant, service_id=service_id, state_id=state_id, state_type=body.state_type,
                             previous_state_id=body.previous_state_id, est_duration=body.est_duration,
                             started=event_map(body.event_fields(), started_ms), started_ms=started_ms,
                             ext=texts(body.attached_data()))


def task_item(tenant: str, service_id: str, body: TaskStart, task_id: int, now: int) -> TaskItem:
    """The stored form of a new task."""
    started_ms = event_time(body.timestamp, now)
    return TaskItem.trusted(tenant=tenant, service_id=service_id, task_id=task_id, task_type=body.task_type,
                            state_id=body.state_id, est_duration=body.est_duration,
                            started=event_map(body.event_fields(), started_ms), started_ms=started_ms,
                            ext=texts(body.attached_data()))


def start_state(tenant: str, service_id: str, body: StateStart, claim: Claim | None = None,
                extra: Any = None) -> int:
    """Start a state: its id. 409 on a completed service, 404 if `previous_state_id` is unknown."""
    check_service_id(service_id)
    now = clock.now_ms()
    start = starts.ChildStart("state", previous_state_id=body.previous_state_id, extra=extra)
    return starts.start_child(Write(tenant, now), service_id, start,
                              lambda _service, state_id: state_item(tenant, service_id, body, state_id, now), claim)


def start_task(tenant: str, service_id: str, body: TaskStart, claim: Claim | None = None, extra: Any = None) -> int:
    """Start a task, optionally attached to a state (unknown state 404, completed state 409)."""
    check_service_id(service_id)
    now = clock.now_ms()
    start = starts.ChildStart("task", state_id=body.state_id, extra=extra)
    return starts.start_child(Write(tenant, now), service_id, start,
                              lambda _service, task_id: task_item(tenant, service_id, body, task_id, now), claim)


def transition(tenant: str, service_id: str, body: Transition, claim: Claim | None = None) -> int:
    """Complete `from` (with its active tasks) and start `to` atomically; returns the new state's id.
    The common fields form both the old state's end and the new state's start; attached data goes
    to the new state."""
    check_service_id(service_id)
    now = clock.now_ms()
    at = event_time(body.timestamp, now)
    event = body.event_fields()
    end = Completion(event_map(event, at), at, body.from_.disposition, body.from_.disposition_desc)
    old_state = body.from_.state_id

    def make(_service: ServiceItem, state_id: int) -> StateItem:
        return StateItem(tenant=tenant, service_id=service_id, state_id=state_id, state_type=body.to.state_type,
                         previous_state_id=old_state, est_duration=body.to.est_duration,
                         started=event_map(event, at), started_ms=at, ext=texts(body.attached_data()))

    return starts.transition(Write(tenant, now), service_id, old_state, end, make, claim)


# ---------------------------------------------------------------- end


def end_state(tenant: str, service_id: str, state_id: int, body: EndFields | None) -> None:
    """End a state; its active tasks complete with it (same transaction)."""
    check_service_id(service_id)
    now = clock.now_ms()
    ends.end_state(Write(tenant, now), service_id, state_id, completion(body or EndFields(), now))


def end_task(tenant: str, service_id: str, task_id: int, body: EndFields | None) -> None:
    """End a task (409 when it is completed, also because its state or service is)."""
    check_service_id(service_id)
    now = clock.now_ms()
    ends.end_task(Write(tenant, now), service_id, task_id, completion(body or EndFields(), now))


# ---------------------------------------------------------------- reads


def get_state(tenant: str, service_id: str, state_id: int, selection: Selection) -> dict[str, Any]:
    """One state (with its service, one BatchGetItem); with its tasks embedded, one Query of LSI2 at
    the same time."""
    check_service_id(service_id)
    now = clock.now_ms()
    if selection.embeds_tasks:
        (service, state), tasks = parallel(lambda: pages.read_child(tenant, service_id, "state", state_id, now),
                                                 lambda: ends.tasks_of_state(tenant, service_id, state_id))
        view = Conversation(service, now).add([state, *tasks]).state_view(state, selection)
        return fits_whole(view, f"GET /services/{service_id}/tasks?state_id={state_id}")
    service, state = pages.read_child(tenant, service_id, "state", state_id, now)
    return Conversation(service, now).state_view(state, selection)


def get_task(tenant: str, service_id: str, task_id: int, selection: Selection) -> dict[str, Any]:
    """One task: one BatchGetItem of the task and its service."""
    check_service_id(service_id)
    now = clock.now_ms()
    service, task = pages.read_child(tenant, service_id, "task", task_id, now)
    return Conversation(service, now).task_view(task, selection)


@dataclass
class ChildQuery:
    status: Status | None  # None: all
    types: list[str] | None = None
    state_id: int | None = None  # tasks only
    started_from: str | None = None  # inclusive
    started_to: str | None = None  # exclusive
    limit: int = 100
    page_token: str | None = None


def list_children(tenant: str, service_id: str, kind: str, query: ChildQuery,
                  selection: Selection) -> tuple[list[dict[str, Any]], str | None]:
    """States or tasks of a service, by id: one Query of the range (or status index) that holds the
    page, with the service read at the same time (its end and expiration decide every child)."""
    check_service_id(service_id)
    now = clock.now_ms()
    window = time_window(query.started_from, query.started_to)
    types = parse_types(query.types, f"{kind}_types")
    scope = paging.fingerprint(tenant, service_id, kind, query.status, types, query.state_id, window)
    resume = paging.decode(query.page_token, scope)
    page = pages.ChildPage(kind, query.status, resume.get("id", 0) if resume else 0, query.limit, types, window,
                           query.state_id)

    def keep(service: ServiceItem, child: Any) -> bool:
        done = Conversation(service, now).completed_ms(child) is not None
        return query.status is None or (query.status == Status.COMPLETED) == done

    service, children, more, tasks = pages.children_page(tenant, service_id, page, now, keep,
                                                         embed_tasks=kind == "state" and selection.embeds_tasks)
    conversation = Conversation(service, now).add(children).add(tasks)
    views, cut = fill_page(children, lambda c: conversation.view(c, selection),
                           lambda c: f"GET /services/{service_id}/{kind}s/{c.child_id}")
    more = more or cut
    last = children[len(views) - 1].child_id if views else None
    token = paging.encode({"id": last}, scope) if more and last is not None else None
    return views, token
