"""What a service's completion cascades to (§4 service end, §7 auto-complete): its states and tasks
still active, for the change feed's StateCompleted / TaskCompleted events (lib.store.events).

After the service item (`active_children`: an auto-completion, or a service end that could not
leave its cascade to the publisher), reads only when the item's `open` count says there is something
to read (it is 0 for most completions without children, unknown on items written before the count);
then two consistent Queries of the status index (active states, active tasks) at once. A task of a
state whose big end is still completing its tasks (`cascading`) is completed already: its event was
committed with its state's end, so it is left out. The write that uses the result is conditional on
the service's `seq` being the one read with `service`, so no start or end can slip in between.
`active_items` is the feed's publisher's read of the same children (lib.store.events.cascade_read)."""

from __future__ import annotations

from typing import Any

from lib.status import Status
from lib.store import events
from lib.store import keys as K
from lib.store.concurrency import parallel
from lib.store.expressions import Query
from lib.store.items import ServiceItem, StateItem, TaskItem, from_plain

Active = tuple[list[StateItem], list[TaskItem]]


def _active_query(pk: str, kind: str) -> Query:
    low, high = K.status_range(kind, Status.ACTIVE)
    return Query(pk, index=K.STATUS_INDEX, sk_from=low, sk_to=high, consistent=True)


def active_children(service: ServiceItem) -> Active:
    """The service's active states and tasks (read only when its `open` count is not known to be 0).
    Read the service first: a child change after that read moves its `seq`."""
    return active_children_of([service])[0]


def active_children_of(services: list[ServiceItem]) -> list[Active]:
    """active_children of several services, their Queries run at once."""
    reads = [(index, kind) for index, service in enumerate(services) if service.open != 0 for kind in ("state", "task")]
    results = parallel(*[lambda i=i, kind=kind: _active_query(services[i].pk, kind).all() for i, kind in reads])
    found: list[Active] = [([], []) for _ in services]
    for (index, kind), items in zip(reads, results):
        entities = [from_plain(item) for item in items]
        if kind == "state":
            found[index][0].extend(e for e in entities if isinstance(e, StateItem))
        else:
            found[index][1].extend(e for e in entities if isinstance(e, TaskItem))
    return [_completing(service, active) for service, active in zip(services, found)]


def _completing(service: ServiceItem, active: Active) -> Active:
    """Leave out the tasks of a state whose big end is still completing them (`cascading`)."""
    return active[0], events.not_cascading(service, active[1])


def active_items(pk: str) -> list[dict[str, Any]]:
    """Every active state and task of a conversation as stored: two consistent Queries of the status
    index at once, every page (what the feed's publisher reads for an end without a trusted summary:
    lib.store.events.cascade_read)."""
    states, tasks = parallel(lambda: _active_query(pk, "state").all(), lambda: _active_query(pk, "task").all())
    return [*states, *tasks]
