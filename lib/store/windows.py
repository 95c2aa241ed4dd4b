"""Maintenance's reads (§8): services with an event in a time window (the export stream and export
files), whole conversations for export, and purge targets. Every read is a Query of an index
partition (never a Scan): the time indexes are spread over INDEX_SHARDS partitions per tenant, so a window
costs what it holds plus one Query per shard."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib.store import conditions as C
from lib.store import keys as K
from lib.store.concurrency import parallel
from lib.store.embedded import Embedded, Weigh, whole_conversations
from lib.store.expressions import Expression, Query
from lib.store.items import ServiceItem

STARTED, COMPLETED_EVENTS, ANY = "started", "completed", "any"


# ---------------------------------------------------------------- time windows


@dataclass(frozen=True)
class Phase:
    """One index partition a window is read from: the start index, the end index, or the due index
    (services past their auto-complete moment that the scheduler has not recorded yet: completed too)."""

    source: str  # "start" | "end" | "due"
    shard: int


@dataclass(frozen=True)
class Select:
    """The list filters (§5) a window also applies, on attributes projected into the time indexes:
    service types, and a start-time window [started_low, started_high)."""

    types: list[Any] | None = None
    started_low: int | None = None
    started_high: int | None = None


SOURCES = {STARTED: ["start"], COMPLETED_EVENTS: ["end", "due"], ANY: ["start", "end", "due"]}
DONE = "done"  # a shard's position once everything it holds in the window has been returned


def _phase_query(tenant: str, phase: Phase, events: str, low: int, high: int, now: int,
                 start_key: dict[str, Any] | None, select: Select = Select()) -> Query:
    if phase.source == "start":
        # The start index is ordered by start time: the start window narrows its key range.
        if select.started_low is not None:
            low = max(low, select.started_low)
        if select.started_high is not None:
            high = min(high, select.started_high)
    if phase.source == "due":
        # Deadlines in [low, min(high, now]] (numbers), all tenants' partition, this tenant's items.
        q = Query(K.due_shard_pk(K.AUTO_COMPLETE, phase.shard), index=K.DUE_INDEX, sk_from=low, sk_to=min(high, now + 1),
                  start_key=start_key)
        q.filters.append(f"begins_with({q.expr.name('PK')}, {q.expr.value(K.conversation_pk(tenant, ''))})")
    else:
        index = K.START_INDEX if phase.source == "start" else K.END_INDEX
        q = Query(K.time_index_pk(tenant, phase.source, phase.shard), index=index, sk_from=K.time_bound(low),
                  sk_to=K.time_bound(high), start_key=start_key)
    e = q.expr
    q.filters.append(f"{e.name('expires_ms')} > {e.value(now)}")
    if events == ANY and phase.source != "start":
        # Started in the window too: the start index returned it already.
        q.filters.append(f"{e.name('started_ms')} < {e.value(low)} OR {e.name('started_ms')} >= {e.value(high)}")
    if phase.source != "start":
        if select.started_low is not None:
            q.filters.append(f"{e.name('started_ms')} >= {e.value(select.started_low)}")
        if select.started_high is not None:
            q.filters.append(f"{e.name('started_ms')} < {e.value(select.started_high)}")
    if select.types:
        q.filters.append(f"{e.name('service_type')} IN ({', '.join(e.value(t) for t in select.types)})")
    return q


def window(tenant: str, events: str, low: int, high: int, now: int, cursor: dict[str, Any] | None,
           limit: int, select: Select = Select()) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any] | None]:
    """Up to `limit` services with an event of the kind asked in [low, high) that `select` keeps:
    (service id, cursor right after it) each, and the cursor of the rest (None: done).

    Order: by the time of the event the window is read on, then service id: the start index first
    (started in the window: `started.timestamp` order, as every list, §5), then for `completed` /
    `any` the ends (end time) and the auto-completions not yet recorded (deadline). Each index is
    spread over its shards (INDEX_SHARDS for the time indexes, DUE_SHARDS for the due index): their
    Queries run at once and are merged (a k-way merge; the cursor holds each shard's position), each
    reading about `limit / shards` items a call."""
    sources = SOURCES[events]
    index, positions = _resume(cursor, sources)
    found: list[tuple[str, dict[str, Any]]] = []
    while index < len(sources) and len(found) < limit:
        got, exhausted = _merge(tenant, sources[index], index, events, low, high, now, positions,
                                limit - len(found), select)
        found += got
        if not exhausted:
            return found, found[-1][1]
        index += 1
        positions = [None] * _shard_count(sources[index]) if index < len(sources) else []
    return found, ({"source": index, "keys": positions} if index < len(sources) else None)


def _shard_count(source: str) -> int:
    """Shards of the index a source is read from: the due index (DUE_SHARDS) or a time index (INDEX_SHARDS)."""
    return K.due_shards() if source == "due" else K.index_shards()


def _resume(cursor: dict[str, Any] | None, sources: list[str]) -> tuple[int, list[Any]]:
    if not cursor:
        return 0, [None] * _shard_count(sources[0])
    if "phase" in cursor:  # a cursor of the shard-by-shard order (job checkpoints written before)
        source, shard = divmod(cursor["phase"], K.index_shards())
        shards = _shard_count(sources[source]) if source < len(sources) else 0
        return source, [DONE] * shard + [cursor.get("key")] + [None] * (shards - shard - 1)
    # A cursor from before a shard count was raised: the new shards hold only services written since,
    # none of them returned yet, so they start from their beginning.
    keys = list(cursor["keys"])
    shards = _shard_count(sources[cursor["source"]]) if cursor["source"] < len(sources) else 0
    return cursor["source"], keys + [None] * (shards - len(keys))


def _merge(tenant: str, source: str, index: int, events: str, low: int, high: int, now: int,
           positions: list[Any], want: int, select: Select) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """Up to `want` services of one index, its shards merged by sort key then service id; True when
    every shard is exhausted."""
    shards = _shard_count(source)
    chunk = want // shards + 2
    queries: dict[int, Query] = {}
    buffers: dict[int, list[dict[str, Any]]] = {}
    more: dict[int, bool] = {}

    def fetch(shard: int, after: dict[str, Any] | None) -> None:
        q = _phase_query(tenant, Phase(source, shard), events, low, high, now, after, select)
        queries[shard] = q
        buffers[shard], more[shard] = q.first(chunk)

    live = [shard for shard in range(shards) if positions[shard] != DONE]
    parallel(*[lambda shard=shard: fetch(shard, positions[shard]) for shard in live])
    heap: list[tuple[Any, str, int]] = []
    position = list(positions)

    def push(shard: int) -> None:
        if buffers[shard]:
            item = buffers[shard][0]
            heapq.heappush(heap, (queries[shard].sort_value(item), item["PK"], shard))
        elif not more[shard]:
            position[shard] = DONE

    for shard in live:
        push(shard)
    found: list[tuple[str, dict[str, Any]]] = []
    left = False  # a shard holds more, not read yet (the page is full)
    while heap and len(found) < want:
        _, _, shard = heapq.heappop(heap)
        item = buffers[shard].pop(0)
        position[shard] = queries[shard].key_of(item)
        if not buffers[shard] and more[shard]:
            if len(found) + 1 < want:
                fetch(shard, position[shard])  # only when the page needs more
            else:
                left = True
        push(shard)  # its next item, or DONE once it has none
        found.append((K.split_conversation_pk(item["PK"])[1], {"source": index, "keys": list(position)}))
    return found, not heap and not left


def conversations(tenant: str, service_ids: list[str], weigh: Weigh | None = None,
                  limit: int | None = None) -> list[tuple[ServiceItem, Embedded]]:
    """Whole conversations (service, states, tasks), read at once: one Query each from the service
    item through its tasks, at most IN_FLIGHT in flight (lib.store.embedded, which says how `weigh`
    and `limit` bound what a read holds)."""
    return whole_conversations(tenant, service_ids, weigh, limit)


# ---------------------------------------------------------------- purge


PURGE_OPERATIONS = ("purge.service.all", "purge.service.started", "purge.service.started.anonymous",
                    "purge.service.completed", "purge.service.completed.anonymous")


def _purge_status(e: Expression, operation: str, now: int) -> list[str]:
    """The status and anonymity `operation` asks for (§8), as clauses of a condition or a filter."""
    clauses = []
    if ".started" in operation:
        clauses += C.active(e, now)
    elif ".completed" in operation:
        clauses += C.completed_by(e, now)
    if operation.endswith(".anonymous"):
        clauses += C.absent(e, "customer_id")
    return clauses


def purge_conditions(operation: str, limit_ms: int, now: int) -> Callable[[Expression], list[str]]:
    """What a service must be for `operation` (§8): started before `limit`, live, and its status."""

    def build(e: Expression) -> list[str]:
        return C.live(e, now) + [f"{e.name('started_ms')} < {e.value(limit_ms)}"] + _purge_status(e, operation, now)

    return build


def purge_candidates(tenant: str, operation: str, limit_ms: int, now: int, cursor: dict[str, Any] | None,
                     want: int) -> tuple[list[str], dict[str, Any] | None]:
    """Services of the tenant started before `limit` that match `operation` now: the start index,
    shard by shard, filtered on status and anonymity (the delete re-checks it under its condition)."""
    shard = cursor["shard"] if cursor else 0
    start_key = cursor.get("key") if cursor else None
    found: list[str] = []
    shards = K.index_shards()
    while shard < shards and len(found) < want:
        q = Query(K.time_index_pk(tenant, "start", shard), index=K.START_INDEX, sk_to=K.time_bound(limit_ms),
                  start_key=start_key)
        e = q.expr
        q.filters.append(f"{e.name('expires_ms')} > {e.value(now)}")
        q.filters += _purge_status(e, operation, now)
        items, more = q.first(want - len(found))
        found += [K.split_conversation_pk(item["PK"])[1] for item in items]
        if more:
            return found, {"shard": shard, "key": q.key_of(items[-1])}
        shard, start_key = shard + 1, None
    return found, ({"shard": shard, "key": None} if shard < shards else None)
