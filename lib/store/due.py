"""Due work of the scheduled maintenance (§7, §8), across all tenants from the due index (GSI5):
auto-completions to record, erasures to finish (every DELETE's, and a purge step's that stopped),
children's TTL to lower (an earlier explicit expiration's)."""

from __future__ import annotations

from typing import Any

from lib.store import keys as K
from lib.store import recording, table
from lib.store.cascades import active_children_of
from lib.store.concurrency import new_token
from lib.store.expressions import Query, Update
from lib.store.items import ServiceItem, from_plain
from lib.store.records import Erasure, TtlLowering
from lib.store.services import auto_completion_clauses, decode_service
from lib.store.table import ConcurrentChange, ConditionFailed


def due(kind: str, now: int, want: int) -> list[dict[str, Any]]:
    """Items of the due index whose moment has come (auto-completions, erasures), across shards."""
    found: list[dict[str, Any]] = []
    for shard in range(K.due_shards()):
        if len(found) >= want:
            break
        q = Query(K.due_shard_pk(kind, shard), index=K.DUE_INDEX, sk_to=now + 1)
        items, _ = q.first(want - len(found))
        found += items
    return found


def record_auto_completions(now: int, want: int = 100) -> int:
    """Record the completion of services past their auto-complete moment (reads show them completed
    already): their items are read (one BatchGetItem) and, for those with active states or tasks,
    those children (at once), for the change feed's events; then a transaction of up to 25 updates
    each conditional on the deadline and the `seq` read; a batch that meets a change meanwhile is
    done one by one. Returns how many were recorded."""
    recorded = 0
    rows = due(K.AUTO_COMPLETE, now, want)
    found = table.get_many([K.key_of(row) for row in rows]) if rows else {}
    services = [s for s in (decode_service(item) for item in found.values()) if _still_due(s, now)]
    children = active_children_of(services)
    for start in range(0, len(services), 25):
        batch = list(zip(services[start:start + 25], children[start:start + 25]))
        try:
            table.transact([table.tx_update(_auto_completion(service, active, now)) for service, active in batch])
            recorded += len(batch)
        except (ConditionFailed, ConcurrentChange):
            for service, active in batch:  # each Update is built anew: a request's placeholders are its own
                try:
                    table.update(_auto_completion(service, active, now))
                    recorded += 1
                except (ConditionFailed, ConcurrentChange):
                    pass  # written meanwhile: its deadline moved, or it completed
    return recorded


def _still_due(service: ServiceItem | None, now: int) -> bool:
    return (service is not None and service.is_live(now) and service.completed_ms is None
            and service.completed_at(now) is not None)


def _auto_completion(service: ServiceItem, active: Any, now: int) -> Update:
    """The update recording one service's auto-completion, never before its start (no negative
    duration), with its events; conditional on the deadline and `seq` read."""
    u = Update(key=service.key())
    recording.record(u, auto_completion_clauses(u, service, now, active), new_token())
    return u


def unfinished_erasures(now: int, grace_ms: int = 60_000, want: int = 25) -> list[Erasure]:
    """Erasures older than `grace_ms` still recorded: a DELETE's (left to the schedule), or a purge
    step's that stopped before finishing (the grace lets a running purge step finish its own)."""
    rows = due(K.ERASE, now - grace_ms, want)
    found = [from_plain(table.get(K.key_of(row))) for row in rows]
    return [erasure for erasure in found if isinstance(erasure, Erasure)]


def due_lowerings(now: int, want: int = 25) -> list[TtlLowering]:
    """Recorded lowerings of children's TTL (lib.store.expiration.finish_lowering does them), read at
    once (one BatchGetItem)."""
    rows = due(K.LOWER, now, want)
    found = table.get_many([K.key_of(row) for row in rows]) if rows else {}
    return [record for record in (from_plain(item) for item in found.values()) if isinstance(record, TtlLowering)]
