"""Due work of the scheduled maintenance (§7, §8), across all tenants from the due index (GSI5):
auto-completions to record, erasures a request could not finish."""

from __future__ import annotations

from typing import Any

from lib.store import conditions as C
from lib.store import keys as K
from lib.store import table
from lib.store.expressions import Query, Update
from lib.store.items import Completion, Erasure, from_plain
from lib.store.services import complete_clauses
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
    already): a transaction of up to 25 updates each conditional on the deadline read; a batch that
    meets a change meanwhile is done one by one. Returns how many were recorded."""
    recorded = 0
    rows = due(K.AUTO_COMPLETE, now, want)
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
    tenant, service_id = K.split_conversation_pk(row["PK"])
    deadline = row["GSI5SK"]
    u = Update(key=K.key_of(row))
    # Never before its start (started_ms is projected into the due index): no negative duration.
    complete_clauses(u, tenant, service_id, Completion({}, max(deadline, int(row.get("started_ms", deadline)))))
    e = u.expr
    u.conditions += C.exists(e) + C.absent(e, "completed_ms") + C.equals(e, "auto_complete_at", deadline)
    return u


def unfinished_erasures(now: int, grace_ms: int = 60_000, want: int = 25) -> list[Erasure]:
    """Erasures older than `grace_ms` still recorded: their request stopped before finishing."""
    rows = due(K.ERASE, now - grace_ms, want)
    found = [from_plain(table.get(K.key_of(row))) for row in rows]
    return [erasure for erasure in found if isinstance(erasure, Erasure)]
