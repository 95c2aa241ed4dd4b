"""What a service's completion cascades to (§4 service end, §7 auto-complete): its states and tasks
still active, for the change feed's StateCompleted / TaskCompleted events (lib.store.events).

Reads only when the service's `open` count says there is something to read (it is 0 for most
completions without children, unknown on items written before the count); then two consistent
Queries of the status index (active states, active tasks) at once. A task of a state whose big
end is still completing its tasks (`cascading`) is completed already: its event was committed with
its state's end, so it is left out. The write that uses the result is conditional on the service's
`seq` being the one read with `service`, so no start or end can slip in between."""

from __future__ import annotations

from lib.status import Status
from lib.store import keys as K
from lib.store.concurrency import parallel
from lib.store.expressions import Query
from lib.store.items import ServiceItem, StateItem, TaskItem, from_plain

Active = tuple[list[StateItem], list[TaskItem]]


def _query(service: ServiceItem, kind: str) -> Query:
    low, high = K.status_range(kind, Status.ACTIVE)
    return Query(service.pk, index=K.STATUS_INDEX, sk_from=low, sk_to=high, consistent=True)


def active_children(service: ServiceItem) -> Active:
    """The service's active states and tasks (read only when its `open` count is not known to be 0).
    Read the service first: a child change after that read moves its `seq`."""
    return active_children_of([service])[0]


def active_children_of(services: list[ServiceItem]) -> list[Active]:
    """active_children of several services, their Queries run at once."""
    reads = [(index, kind) for index, service in enumerate(services) if service.open != 0 for kind in ("state", "task")]
    results = parallel(*[lambda i=i, kind=kind: _query(services[i], kind).all() for i, kind in reads])
    found: list[Active] = [([], []) for _ in services]
    for (index, kind), items in zip(reads, results):
        entities = [from_plain(item) for item in items]
        if kind == "state":
            found[index][0].extend(e for e in entities if isinstance(e, StateItem))
        else:
            cascading = services[index].cascading
            found[index][1].extend(e for e in entities if isinstance(e, TaskItem)
                                   and not (e.state_id is not None and str(e.state_id) in cascading))
    return found
