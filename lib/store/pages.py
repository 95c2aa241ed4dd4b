"""Reads of conversations: a state or task with its service, pages of a conversation's states or
tasks, embedded children, and pages of an owner's services (§4, §5, §6). A page reads about what it
returns, whatever the conversation's or the owner's size: a Query of the key range or index that
holds exactly the page (docs/DESIGN.md, Access patterns)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib.errors import NotFound
from lib.status import Status
from lib.store import conditions as C
from lib.store import keys as K
from lib.store import table
from lib.store.concurrency import parallel
from lib.store.expressions import Query
from lib.store.items import NEVER_MS, Child, ServiceItem, TaskItem, decode, from_plain, read_names
from lib.store.services import live_service, read_service


def read_child(tenant: str, service_id: str, kind: str, child_id: int, now: int) -> tuple[ServiceItem, Child]:
    """A state or task with its service (one BatchGetItem); 404 for either missing."""
    key = K.service_key(tenant, service_id)
    child_key = K.child_key(tenant, service_id, kind, child_id)
    found = table.get_many([key, child_key])
    service = live_service(found.get((key["PK"], key["SK"])), service_id, now)
    child = from_plain(found.get((child_key["PK"], child_key["SK"])))
    if not isinstance(child, Child):
        raise NotFound(f"{kind} {child_id} not found")
    return service, child


@dataclass
class ChildPage:
    """Which children a page wants (§5 and §6 list routes)."""

    kind: str  # "state" | "task"
    status: Status | None  # None: both (as decided for the service: see children_page)
    after_id: int = 0
    limit: int = 100
    types: list[Any] | None = None
    window: tuple[int | None, int | None] = (None, None)
    state_id: int | None = None  # tasks of one state


def _child_query(pk: str, page: ChildPage, status: Status | None) -> Query:
    type_field = f"{page.kind}_type"
    if page.kind == "task" and page.state_id is not None:
        low, high = K.state_tasks_range(page.state_id)
        q = Query(pk, index=K.STATE_TASKS_INDEX, sk_from=low, sk_to=high, consistent=True,
                  sk_after=K.state_tasks_sk(page.state_id, page.after_id) if page.after_id else None)
        if status is not None:
            q.filters += C.absent(q.expr, "completed_ms") if status == Status.ACTIVE else C.completed(q.expr)
    elif status is None:
        low, high = K.children_range(page.kind)
        q = Query(pk, sk_from=low, sk_to=high, consistent=True,
                  sk_after=K.child_sk(page.kind, page.after_id) if page.after_id else None)
    else:
        low, high = K.status_range(page.kind, status)
        q = Query(pk, index=K.STATUS_INDEX, sk_from=low, sk_to=high, consistent=True,
                  sk_after=K.status_sk(page.kind, status == Status.COMPLETED, page.after_id) if page.after_id
                  else None)
    e = q.expr
    if page.types:
        q.filters.append(f"{e.name(type_field)} IN ({', '.join(e.value(t) for t in page.types)})")
    start, end = page.window
    if start is not None:
        q.filters += C.at_least(e, "started_ms", start)
    if end is not None:
        q.filters += [f"{e.name('started_ms')} < {e.value(end)}"]
    return q


def children_page(tenant: str, service_id: str, page: ChildPage, now: int,
                  keep: Callable[[ServiceItem, Child], bool] | None = None, embed_tasks: bool = False
                  ) -> tuple[ServiceItem, list[Child], bool, list[TaskItem]]:
    """One page of a conversation's states or tasks, by id, with the service; with `embed_tasks`, the
    tasks of the page's states too: (service, children, more, tasks).

    The status of a child is its own end, or its service's (read-time cascade), or — only while a big
    state end is in flight — its state's `cascading` mark. So: for an active service, the status
    index (LSI1) holds exactly the page; for a completed one, active is empty and completed is every
    child. A page of one status therefore reads the service first; a page of every status reads the
    base range, whatever the service, at the same time as the service. `keep` re-checks each child
    with the service known (the in-flight case).

    The first page of every state (no filter) is one Query from the service item, which sorts just
    before the states. A page of every state (no filter) holds the ids after the last page's, without
    gaps, so its states' tasks are read at the same time (LSI2, the next `limit` states' tasks); when
    the page's ids reach further (ids from elsewhere), the rest of their tasks after."""
    pk = K.conversation_pk(tenant, service_id)
    if page.status is not None:
        # One status: which range holds it depends on the service (completed: all of them), so the
        # service is read first rather than a guessed range read in vain.
        service = read_service(tenant, service_id, now)
        done = service.completed_at(now) is not None
        if page.status == Status.ACTIVE and done:
            return service, [], False, []
        if done or service.cascading:
            # Completed service: every child is completed, the base range holds the page. A cascade in
            # flight: read the base range and let `keep` decide.
            children, more = _select(_child_query(pk, ChildPage(**{**page.__dict__, "status": None}), None),
                                     page.limit, service, keep)
        else:
            items, more = _child_query(pk, page, page.status).first(page.limit)
            children = [c for c in (from_plain(i) for i in items) if isinstance(c, Child)]
        tasks = _tasks_of_page(pk, children) if embed_tasks and page.kind == "state" else []
        return service, children, more, tasks
    # Every status: the base range holds the page whatever the service's state; read both at once.
    unfiltered = not page.types and page.window == (None, None) and page.state_id is None
    guess_tasks = embed_tasks and page.kind == "state" and unfiltered
    if unfiltered and page.kind == "state" and page.after_id == 0:
        # The service item, then the states: one Query (one item more: the service).
        calls: list[Callable[[], Any]] = [lambda: Query(pk, sk_from=K.SERVICE_SK, sk_to=K.children_range("state")[1],
                                                        consistent=True).first(page.limit + 1)]
    else:
        calls = [lambda: ([table.get(K.service_key(tenant, service_id))], None),
                 lambda: _child_query(pk, page, None).first(page.limit)]
    if guess_tasks:
        calls.append(lambda: _tasks_of_states(pk, page.after_id + 1, page.after_id + page.limit))
    results = parallel(*calls)
    items, more = results[0]
    if more is None:  # the service came alone
        raw, (items, more) = items[0], results[1]
    else:
        raw, items = (items[0], items[1:]) if items and items[0]["SK"] == K.SERVICE_SK else (None, items)
    service = live_service(raw, service_id, now)
    children = [c for c in (from_plain(i) for i in items) if isinstance(c, Child)]
    tasks: list[TaskItem] = []
    if embed_tasks and page.kind == "state" and children:
        if not guess_tasks:
            tasks = _tasks_of_page(pk, children)
        else:
            tasks = results[-1]
            if children[-1].child_id > page.after_id + page.limit:  # ids with gaps: the rest of their tasks
                tasks += _tasks_of_states(pk, page.after_id + page.limit + 1, children[-1].child_id)
    return service, children, more, tasks


def _tasks_of_page(pk: str, states: list[Child]) -> list[TaskItem]:
    return _tasks_of_states(pk, states[0].child_id, states[-1].child_id) if states else []


def _tasks_of_states(pk: str, first_state: int, last_state: int) -> list[TaskItem]:
    """The tasks of the states whose ids lie in [first, last] (one Query of LSI2)."""
    low, high = K.state_tasks_range(first_state, last_state)
    q = Query(pk, index=K.STATE_TASKS_INDEX, sk_from=low, sk_to=high, consistent=True)
    return [t for t in (from_plain(i) for i in q.all()) if isinstance(t, TaskItem)]


def _select(q: Query, limit: int, service: ServiceItem, keep: Callable[..., Any] | None) -> tuple[list[Child], bool]:
    chosen: list[Child] = []
    for page in q.pages(limit + 1):
        for item in page:
            child = from_plain(item)
            if isinstance(child, Child) and (keep is None or keep(service, child)):
                chosen.append(child)
                if len(chosen) > limit:
                    return chosen[:limit], True
    return chosen, False


def find_active_child(service: ServiceItem, kind: str, matches: dict[str, Any]) -> Child | None:
    """The oldest active state or task whose fields equal `matches` (absent equals None)."""
    low, high = K.status_range(kind, Status.ACTIVE)
    q = Query(service.pk, index=K.STATUS_INDEX, sk_from=low, sk_to=high, consistent=True)
    for name, value in matches.items():
        q.filters += C.absent(q.expr, name) if value is None else C.equals(q.expr, name, value)
    for page in q.pages():
        for item in page:
            child = from_plain(item)
            if isinstance(child, Child):
                return child
    return None


# ---------------------------------------------------------------- owners' lists


@dataclass
class OwnerPage:
    """A page of a customer's (or anonymous contact key's) services (§4, §5)."""

    customer_id: str | None  # a customer's services; None: the anonymous services of `contact_key`
    contact_key: str | None
    status: Status | None
    window: tuple[int | None, int | None] = (None, None)  # start time, from (inclusive) to (exclusive)
    types: list[Any] | None = None
    after: str | None = None  # resume key: where the previous page ended (list_key)
    limit: int = 100

    @property
    def bounds(self) -> tuple[str | None, str | None]:
        """The start window as sort-key bounds."""
        return K.time_bound(self.window[0]), K.time_bound(self.window[1])


# What an owner's page decodes of each service: the service, and the keys the merge below uses.
_OWNER_READ = read_names(ServiceItem, extra=("PK", "GSI2SK"))


def owner_services(tenant: str, page: OwnerPage, now: int) -> tuple[list[ServiceItem], bool]:
    """One Query of the owner's index partition (for completed: two, see below), ordered by start."""

    def query(index: str, status: Status | None, still_active: bool = False, merged: bool = False) -> Query:
        # Merged pages keep the keys they merge on (plain items); the others are entities at once.
        q = Query(K.owner_pk(tenant, page.customer_id, page.contact_key, status), index=index,
                  sk_from=page.bounds[0], sk_to=page.bounds[1], sk_after=page.after, decoded=_OWNER_READ,
                  decoder=None if merged else decode)
        e = q.expr
        q.filters.append(f"{e.name('expires_ms')} > {e.value(now)}")
        if page.types:
            q.filters.append(f"{e.name('service_type')} IN ({', '.join(e.value(t) for t in page.types)})")
        if still_active:  # not past its auto-complete moment
            q.filters.append(f"{e.name('auto_complete_at')} > {e.value(now)}")
        return q

    if page.status is None:
        found, more = query(K.OWNER_INDEX, None).first(page.limit)
    elif page.status == Status.ACTIVE:
        found, more = query(K.OWNER_STATUS_INDEX, Status.ACTIVE, still_active=True).first(page.limit)
    else:
        # Completed = ended (its own partition) + active ones past their auto-complete moment that
        # no write has recorded yet (the owner's GSI6 partition, by deadline: only those are read;
        # the schedule records them within minutes, so there are few): merged by start time.
        (ended, more_ended), (auto, more_auto) = parallel(
            lambda: query(K.OWNER_STATUS_INDEX, Status.COMPLETED, merged=True).first(page.limit),
            lambda: _past_deadline(tenant, page, now))
        merged = sorted({item["PK"]: item for item in ended + auto}.values(), key=lambda item: item["GSI2SK"])
        found, more = [from_plain(i) for i in merged[:page.limit]], more_ended or more_auto or len(merged) > page.limit
    services = [s for s in found if isinstance(s, ServiceItem)]
    return services, more


def _past_deadline(tenant: str, page: OwnerPage, now: int) -> tuple[list[dict[str, Any]], bool]:
    """An owner's active services past their auto-complete moment, in the page's window and after
    its resume key, first `limit` by start time (the index holds keys; the services are then read)."""
    rows = Query(K.owner_pk(tenant, page.customer_id, page.contact_key, timed=True), index=K.OWNER_DUE_INDEX,
                 sk_to=now + 1).all()
    low, high = page.bounds
    rows = sorted((row for row in rows if row.get("expires_ms", 0) > now
                   and (low is None or row["GSI2SK"] >= low) and (high is None or row["GSI2SK"] < high)
                   and (page.after is None or row["GSI2SK"] > page.after)
                   and (not page.types or row.get("service_type") in page.types)),
                  key=lambda row: row["GSI2SK"])
    if not rows:
        return [], False
    wanted = rows[:page.limit + 1]
    found = table.get_many([K.key_of(row) for row in wanted])
    items = [item for item in found.values() if item.get("completed_ms") is None
             and item.get("auto_complete_at", NEVER_MS) <= now and item.get("expires_ms", 0) > now]
    items.sort(key=lambda item: item["GSI2SK"])
    return items[:page.limit], len(items) > page.limit or len(rows) > len(wanted)


def list_key(service: ServiceItem) -> str:
    """The owner-list sort key of a service: where the next page resumes."""
    return K.time_sk(service.started_ms, service.service_id)


def find_active_service(tenant: str, customer_id: str | None, contact_key: str | None, service_type: Any,
                        now: int) -> ServiceItem | None:
    """The oldest active live service of an owner with exactly these keys (one Query, filtered)."""
    q = Query(K.owner_pk(tenant, customer_id, contact_key, Status.ACTIVE), index=K.OWNER_STATUS_INDEX)
    e = q.expr
    q.filters += [f"{e.name('expires_ms')} > {e.value(now)}", f"{e.name('auto_complete_at')} > {e.value(now)}"]
    for name, value in (("contact_key", contact_key), ("service_type", service_type)):
        q.filters += C.absent(e, name) if value is None else C.equals(e, name, value)
    for page in q.pages():
        for item in page:
            service = from_plain(item)
            if isinstance(service, ServiceItem):
                return service
    return None
