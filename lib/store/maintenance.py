"""Maintenance's store operations (§7 auto-complete, §8): services with an event in a time window,
whole conversations for export, purge targets, due work (auto-completions to record, erasures to
finish) and maintenance jobs. Every read is a Query of an index partition (never a Scan): the time
indexes are spread over SHARDS partitions per tenant, so a window costs what it holds plus one Query
per shard."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib.clock import sortable_ms
from lib.store import conditions as C
from lib.store import table
from lib.store.conversations import Completion, Write, complete_clauses, conversation_pk, parallel, service_key
from lib.store.items import (
    AUTO_COMPLETE,
    DUE_INDEX,
    END_INDEX,
    ERASE,
    SHARDS,
    START_INDEX,
    Child,
    Erasure,
    JobItem,
    ServiceItem,
    due_pk,
    from_plain,
    split_conversation_pk,
)
from lib.store.table import ConcurrentChange, ConditionFailed, Expression, Query, Update

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
        q = Query(due_pk(AUTO_COMPLETE, str(phase.shard)), index=DUE_INDEX, sk_from=low, sk_to=min(high, now + 1),
                  start_key=start_key)
        q.filters.append(f"begins_with({q.expr.name('PK')}, {q.expr.value(tenant + '#C#')})")
    else:
        index = START_INDEX if phase.source == "start" else END_INDEX
        pk = f"{tenant}#{'S' if phase.source == 'start' else 'E'}#{phase.shard}"
        q = Query(pk, index=index, sk_from=sortable_ms(low), sk_to=sortable_ms(high), start_key=start_key)
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
    spread over SHARDS partitions: their Queries run at once and are merged (a k-way merge; the
    cursor holds each shard's position), each reading about `limit / SHARDS` items a call."""
    sources = SOURCES[events]
    index, positions = _resume(cursor)
    found: list[tuple[str, dict[str, Any]]] = []
    while index < len(sources) and len(found) < limit:
        got, exhausted = _merge(tenant, sources[index], index, events, low, high, now, positions,
                                limit - len(found), select)
        found += got
        if not exhausted:
            return found, found[-1][1]
        index, positions = index + 1, [None] * SHARDS
    return found, ({"source": index, "keys": [None] * SHARDS} if index < len(sources) else None)


def _resume(cursor: dict[str, Any] | None) -> tuple[int, list[Any]]:
    if not cursor:
        return 0, [None] * SHARDS
    if "phase" in cursor:  # a cursor of the shard-by-shard order (job checkpoints written before)
        source, shard = divmod(cursor["phase"], SHARDS)
        return source, [DONE] * shard + [cursor.get("key")] + [None] * (SHARDS - shard - 1)
    return cursor["source"], list(cursor["keys"])


def _merge(tenant: str, source: str, index: int, events: str, low: int, high: int, now: int,
           positions: list[Any], want: int, select: Select) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """Up to `want` services of one index, its shards merged by sort key then service id; True when
    every shard is exhausted."""
    chunk = want // SHARDS + 2
    queries: dict[int, Query] = {}
    buffers: dict[int, list[dict[str, Any]]] = {}
    more: dict[int, bool] = {}

    def fetch(shard: int, after: dict[str, Any] | None) -> None:
        q = _phase_query(tenant, Phase(source, shard), events, low, high, now, after, select)
        queries[shard] = q
        buffers[shard], more[shard] = q.first(chunk)

    live = [shard for shard in range(SHARDS) if positions[shard] != DONE]
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
        found.append((split_conversation_pk(item["PK"])[1], {"source": index, "keys": list(position)}))
    return found, not heap and not left


def conversations(tenant: str, service_ids: list[str]) -> list[tuple[ServiceItem, list[Child]]]:
    """Whole conversations (service, states, tasks), read at once (one Query each, bounded pool)."""
    def read(service_id: str) -> tuple[ServiceItem | None, list[Child]]:
        entities = [from_plain(i) for i in Query(conversation_pk(tenant, service_id), consistent=True).all()]
        service = next((e for e in entities if isinstance(e, ServiceItem)), None)
        return service, [e for e in entities if isinstance(e, Child)]

    return [(s, c) for s, c in parallel(*[lambda sid=sid: read(sid) for sid in service_ids]) if s is not None]


def services(tenant: str, service_ids: list[str]) -> list[ServiceItem]:
    """The service items of these ids (BatchGetItem, 100 a call), in the order given."""
    found: dict[str, ServiceItem] = {}
    for item in table.get_many([service_key(tenant, sid) for sid in service_ids]).values():
        service = from_plain(item)
        if isinstance(service, ServiceItem):
            found[service.service_id] = service
    return [found[sid] for sid in service_ids if sid in found]


# ---------------------------------------------------------------- purge


PURGE_OPERATIONS = ("purge.service.all", "purge.service.started", "purge.service.started.anonymous",
                    "purge.service.completed", "purge.service.completed.anonymous")


def purge_conditions(operation: str, limit_ms: int, now: int) -> Callable[[Expression], list[str]]:
    """What a service must be for `operation` (§8): started before `limit`, live, and its status."""

    def build(e: Expression) -> list[str]:
        conditions = C.live(e, now) + [f"{e.name('started_ms')} < {e.value(limit_ms)}"]
        if ".started" in operation:
            conditions += C.active(e, now)
        elif ".completed" in operation:
            conditions += [f"attribute_exists({e.name('completed_ms')}) OR {e.name('auto_complete_at')} <= {e.value(now)}"]
        if operation.endswith(".anonymous"):
            conditions += C.absent(e, "customer_id")
        return conditions

    return build


def purge_candidates(tenant: str, operation: str, limit_ms: int, now: int, cursor: dict[str, Any] | None,
                     want: int) -> tuple[list[str], dict[str, Any] | None]:
    """Services of the tenant started before `limit` that match `operation` now: the start index,
    shard by shard, filtered on status and anonymity (the delete re-checks it under its condition)."""
    shard = cursor["shard"] if cursor else 0
    start_key = cursor.get("key") if cursor else None
    found: list[str] = []
    while shard < SHARDS and len(found) < want:
        q = Query(f"{tenant}#S#{shard}", index=START_INDEX, sk_to=sortable_ms(limit_ms), start_key=start_key)
        e = q.expr
        q.filters.append(f"{e.name('expires_ms')} > {e.value(now)}")
        if ".started" in operation:
            q.filters += C.active(e, now)
        elif ".completed" in operation:
            q.filters.append(f"attribute_exists({e.name('completed_ms')}) OR {e.name('auto_complete_at')} <= {e.value(now)}")
        if operation.endswith(".anonymous"):
            q.filters += C.absent(e, "customer_id")
        items, more = q.first(want - len(found))
        found += [split_conversation_pk(item["PK"])[1] for item in items]
        if more:
            return found, {"shard": shard, "key": q.key_of(items[-1])}
        shard, start_key = shard + 1, None
    return found, ({"shard": shard, "key": None} if shard < SHARDS else None)


# ---------------------------------------------------------------- due work


def due(kind: str, now: int, want: int) -> list[dict[str, Any]]:
    """Items of the due index whose moment has come (auto-completions, erasures), across shards."""
    found: list[dict[str, Any]] = []
    for shard in range(SHARDS):
        if len(found) >= want:
            break
        q = Query(due_pk(kind, str(shard)), index=DUE_INDEX, sk_to=now + 1)
        items, _ = q.first(want - len(found))
        found += items
    return found


def record_auto_completions(now: int, want: int = 100) -> int:
    """Record the completion of services past their auto-complete moment (reads show them completed
    already): a transaction of up to 25 updates each conditional on the deadline read; a batch that
    meets a change meanwhile is done one by one. Returns how many were recorded."""
    recorded = 0
    rows = due(AUTO_COMPLETE, now, want)
    for start in range(0, len(rows), 25):
        updates = [_auto_completion(row) for row in rows[start:start + 25]]
        try:
            table.transact([table.tx_update(u) for u in updates])
            recorded += len(updates)
        except (ConditionFailed, ConcurrentChange):
            for update in updates:
                try:
                    table.update(update)
                    recorded += 1
                except (ConditionFailed, ConcurrentChange):
                    pass  # written meanwhile: its deadline moved, or it completed
    return recorded


def _auto_completion(row: dict[str, Any]) -> Update:
    tenant, service_id = split_conversation_pk(row["PK"])
    deadline = row["GSI5SK"]
    u = Update(key={"PK": row["PK"], "SK": row["SK"]})
    # Never before its start (started_ms is projected into the due index): no negative duration.
    complete_clauses(u, tenant, service_id, Completion({}, max(deadline, int(row.get("started_ms", deadline)))))
    e = u.expr
    u.conditions += C.exists(e) + C.absent(e, "completed_ms") + C.equals(e, "auto_complete_at", deadline)
    return u


def unfinished_erasures(now: int, grace_ms: int = 60_000, want: int = 25) -> list[Erasure]:
    """Erasures older than `grace_ms` still recorded: their request stopped before finishing."""
    rows = due(ERASE, now - grace_ms, want)
    found = [from_plain(table.get({"PK": row["PK"], "SK": row["SK"]})) for row in rows]
    return [erasure for erasure in found if isinstance(erasure, Erasure)]


# ---------------------------------------------------------------- jobs


def create_job(job: JobItem) -> None:
    e = Expression()
    table.put(job.to_item(), C.new_item(e), e)


def load_job(tenant: str, job_id: str) -> JobItem | None:
    job = from_plain(table.get(JobItem(tenant=tenant, job_id=job_id, kind="", created_ms=0, updated_ms=0).key()))
    return job if isinstance(job, JobItem) else None


def take_job(tenant: str, job_id: str, w: Write, lease_ms: int) -> JobItem | None:
    """Lease a running job for one worker until `lease_ms` (None: finished, or leased by another)."""
    u = Update(key=JobItem(tenant=tenant, job_id=job_id, kind="", created_ms=0, updated_ms=0).key(),
               sets={"lease_ms": lease_ms, "op": w.token})
    e = u.expr
    u.conditions += C.exists(e) + C.equals(e, "status", "running") + [f"{e.name('lease_ms')} <= {e.value(w.now)}"]
    try:
        job = from_plain(table.update(u))
    except ConditionFailed:
        return None
    return job if isinstance(job, JobItem) else None


def save_job(job: JobItem, w: Write) -> None:
    """Checkpoint a job this worker holds (conditional on its lease token)."""
    e = Expression()
    previous = job.op
    job.op = w.token
    table.put(job.to_item(), C.exists(e) + C.equals(e, "op", previous), e)
