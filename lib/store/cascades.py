"""What a service's completion cascades to (§4 service end, §7 auto-complete): its states and tasks
still active, for the change feed's StateCompleted / TaskCompleted events (lib.store.events).

After the service item (`active_children`: an auto-completion, a service end refused its one write
that does not read them, or one whose reads at once do not check out), reads only when the item's `open` count says there is something to read (it is 0
for most completions without children, unknown on items written before the count); then two
consistent Queries of the status index (active states, active tasks) at once. A task of a state whose big
end is still completing its tasks (`cascading`) is completed already: its event was committed with
its state's end, so it is left out. The write that uses the result is conditional on the service's
`seq` being the one read with `service`, so no start or end can slip in between.

A service's end with an expiration in its body reads the item and the two Queries at once
(`active_reads`; lib.store.services.end_service): the Queries may then
run before the item's read, and a child started or ended in between would be missed or counted
twice. `verified` accepts them only when they are exactly the children the item counts (`open` and
the checksum `open_sum`, lib.store.events); otherwise the end reads them again after the item."""

from __future__ import annotations

from collections.abc import Callable
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


def active_reads(tenant: str, service_id: str) -> list[Callable[[], tuple[list[dict[str, Any]], bool]]]:
    """The two Queries of a conversation's active states and tasks, one call each (a 1 MB page at
    most: what an end refused with 404 or 409 reads for nothing stays bounded), as calls to send
    together with its service item's read (one `parallel`, never nested: the pool is shared);
    `read_at_once` turns their answers into children, to be checked against the item by `verified`."""
    pk = K.conversation_pk(tenant, service_id)
    return [lambda: _active_query(pk, "state").one_call(), lambda: _active_query(pk, "task").one_call()]


def read_at_once(states: tuple[list[dict[str, Any]], bool], tasks: tuple[list[dict[str, Any]], bool]
                 ) -> Active | None:
    """The children of `active_reads`' answers (not yet checked against the service item); None when
    a kind holds more than its page (then they are read after the item)."""
    if states[1] or tasks[1]:
        return None
    return ([e for e in map(from_plain, states[0]) if isinstance(e, StateItem)],
            [e for e in map(from_plain, tasks[0]) if isinstance(e, TaskItem)])


def verified(service: ServiceItem, found: Active | None) -> Active | None:
    """`found` (read_at_once, in any order with `service`'s read) if it is exactly the set of active
    children that `service` counts: their number is its `open` and their checksum its `open_sum`
    (a child started or ended between the reads changes the sum). None when it is not, or when the
    item's count or sum is unknown: then read them after the item (active_children)."""
    return None if found is None else events.counted(service, *found)
