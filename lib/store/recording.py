"""How a write of the service item records the change feed's events (lib.store.events) and keeps
its counts of active children: the events (`ev`, `seq`, `cx`), `open`, `open_sum` and the summary
of active children (`act`, `ax`, lib.store.summary).

`open` on the service item counts its active states and tasks (starts +1, ends -1, cascades
-k, a service's completion 0), so that a service's completion knows without a read whether it
cascades. Items written before the counter have none: their count is unknown and is never trusted
(events.UNKNOWN_OPEN stands for it in arithmetic, so it never reaches 0).

Beside the count, `open_sum`: the sum of a 63-bit hash of each active state's and task's kind and id,
moved by the same writes from the events they commit (a start adds its child's hash, a completion
subtracts it). Two different sets of children have the same sum only by a hash collision (about
2^-63 for a given pair), so the feed's publisher can check that the children it reads for an end
are the ones the item counted (lib.store.events.cascade_read). Items written before the sum have
none, and events.UNKNOWN_OPEN_SUM (far below any sum) keeps it unknown.

The summary (lib.store.summary) is kept by the same writes: a start adds its child's entry, an end
removes its child's, conditional on the summary still being trusted (`ax`), or the write removes
`ax` when it cannot keep it exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.store import conditions as C
from lib.store import events, summary
from lib.store.events import Event
from lib.store.expressions import Raw, Update
from lib.store.items import FEED_HOLD_S, Child, ServiceItem, StateItem, TaskItem


def record(u: Update, entries: list[Event], token: str) -> None:
    """A write of the service item that commits `entries`: `seq` grows by their number, `ev` holds
    them, and the write carries the request's token and is conditional on not carrying it already,
    so that a retry of the same write after a lost reply fails and is recognised (no event twice)."""
    if not entries:
        return
    e = u.expr
    u.sets["seq"] = Raw(f"if_not_exists({e.name('seq')}, {e.value(0)}) + {e.value(len(entries))}")
    u.sets["ev"] = entries
    u.sets["op"] = token
    u.conditions += C.not_written_by(e, token)


def record_new(item: dict[str, Any], entries: list[Event], open_children: int) -> dict[str, Any]:
    """A new service item (its first write) with its events, its count of active children and their
    checksum (an import's are counted from its children: record_whole)."""
    return {**item, "seq": len(entries), "ev": entries, "open": open_children, "open_sum": events.sum_moved(entries),
            **summary.new(entries)}


def record_whole(service: ServiceItem, children: Sequence[Child]) -> dict[str, Any]:
    """The counts of a service item written whole after its children (an import): `open` and
    `open_sum` of its active states and tasks (none once it is completed, as its end leaves them),
    and their summary when it fits, exactly as the API's own writes would have kept them; so that
    its end is one write and a task's end needs no read first (nothing else writes the conversation
    before its service item exists)."""
    if service.completed_ms is not None:
        return {"open": 0, "open_sum": 0}
    active = [c for c in children if c.completed_ms is None]
    states = [c for c in active if isinstance(c, StateItem)]
    tasks = [c for c in active if isinstance(c, TaskItem)]
    return {"open": len(active), "open_sum": events.open_sum(states, tasks), **summary.of_active(active)}


def count_open(u: Update, delta: int, entries: list[Event]) -> None:
    """The service's active states and tasks move by `delta` (a start +1, an end -1, a cascade -k),
    and their checksum by the hashes of the children `entries` start and complete."""
    e = u.expr
    if delta:
        u.sets["open"] = Raw(f"if_not_exists({e.name('open')}, {e.value(events.UNKNOWN_OPEN)}) + {e.value(delta)}")
    moved = events.sum_moved(entries)
    if moved:
        u.sets["open_sum"] = Raw(f"if_not_exists({e.name('open_sum')}, {e.value(events.UNKNOWN_OPEN_SUM)}) + "
                                 f"{e.value(moved)}")


def close_all(u: Update) -> None:
    """The service completed: none of its states and tasks is active any more."""
    u.sets["open"] = 0
    u.sets["open_sum"] = 0
    drop_all(u)


def track(u: Update, known: ServiceItem | None, entries: list[dict[str, Any]], drop: bool = False) -> None:
    """Keep the summary of a write that commits `entries` on the service item (read as `known`, or
    None when the writer did not read it): add the started children, remove the completed ones,
    conditional on the summary still being trusted; or start one when nothing was active; otherwise
    stop trusting it (`drop`, a summary that would not fit, one not trusted when read: one may have
    been started since, without this write's children)."""
    added, removed = summary.moves(entries)
    if not added and not removed:
        return
    e = u.expr
    if known is None or drop:
        u.removes.append(summary.EXACT)
        return
    if known.ax:
        if not summary.fits(known.act or {}, added, removed):
            u.removes.append(summary.EXACT)
            return
        u.removes += [(summary.ACT, name) for name in removed]
        for name, entry in added:
            u.sets[(summary.ACT, name)] = entry
        u.conditions += [f"attribute_exists({e.name(summary.EXACT)})"]
    elif known.open == 0 and not removed and summary.fits({}, added, []):
        # Nothing active: a new summary (conditional on that, as a start of the other kind may race).
        u.sets[summary.ACT] = dict(added)
        u.sets[summary.EXACT] = True
        u.conditions += C.equals(e, "open", 0) + C.absent(e, summary.EXACT)
    else:
        # Neither kept nor started: a summary started since the read (by a start that found nothing
        # active) would miss this write's children, so it is not trusted any more.
        u.removes.append(summary.EXACT)


def end_one(u: Update, kind: str, child_id: int) -> None:
    """An end that relies on the summary for its child: it removes the child's entry, on condition
    that the summary is trusted and holds it (the publisher takes the child from the old image)."""
    e = u.expr
    path = (summary.ACT, summary.key(kind, child_id))
    u.removes.append(path)
    u.conditions += [f"attribute_exists({e.name(summary.EXACT)})", f"attribute_exists({e.name(path)})"]


def end_all(u: Update, children_floor: int) -> None:
    """A service's completion whose cascade the publisher completes (lib.store.events.complete):
    from the summary, on condition that it is trusted and counts what `open` counts; or, without a
    trusted summary, from the active children the item counts, read by the publisher and checked
    against the item's `open` and `open_sum` (on condition that both are known: an item written
    before them is ended by a read of its children first; that there are at most CASCADE_MAX of
    them, which the publisher sends well within one invocation; and that the children's TTL is at least
    `children_floor`, so that they outlive the end by the change feed's hold). The events beyond the
    write's own are counted in `cx` (their number is `open`, which the writer does not know;
    lib.store.events)."""
    e = u.expr
    trusted = f"attribute_exists({e.name(summary.EXACT)}) AND size({e.name(summary.ACT)}) = {e.name('open')}"
    counted = (f"attribute_not_exists({e.name(summary.EXACT)}) AND {e.name('open')} <= {e.value(events.CASCADE_MAX)} "
               f"AND {e.name('open_sum')} >= {e.value(0)} AND {e.name('children_ttl')} >= {e.value(children_floor)}")
    u.conditions += [f"({trusted}) OR ({counted})"]
    u.sets["cx"] = Raw(f"if_not_exists({e.name('cx')}, {e.value(0)}) + {e.name('open')}")


def may_end_all(service: ServiceItem, children_floor: int) -> bool:
    """What end_all's condition says of this item (as read): whether an end written from it without
    reading its children can commit."""
    if service.ax:
        return len(service.act or {}) == service.open
    return (events.counts_known(service) and (service.open or 0) <= events.CASCADE_MAX
            and service.children_ttl >= children_floor)


def end_floor(now: int) -> int:
    """The least TTL of the children an end leaves the publisher to read: the change feed's hold
    from now (the stream keeps the end's record 24 hours). Their TTL is never below their service's
    either (lib.store.expiration), so under an expiration of at least the hold this never binds."""
    return now // 1000 + FEED_HOLD_S


def too_many_to_end(service: ServiceItem) -> bool:
    """More active children than an end completes at once (events.CASCADE_MAX), as the item counts them."""
    return not service.ax and events.counts_known(service) and (service.open or 0) > events.CASCADE_MAX


def drop_all(u: Update) -> None:
    """The service completed: no summary any more (the item shrinks back)."""
    u.removes += [summary.ACT, summary.EXACT]
