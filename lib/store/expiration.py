"""Expiration (§7) as the store keeps it: the expiration clauses of every service write, and the
children's TTL (`expire_at` on states, tasks and lock references, the service's `children_ttl`), which
is never earlier than the service's expiration. Raising it happens before the write that extends the
expiration (only TTLs change: invisible). Lowering it is due work: the write that sets an earlier
explicit expiration records it (a TtlLowering, in the same transaction) and the scheduled maintenance
lowers the children (readers never see an expired conversation anyway: every read of a child checks
its service)."""

from __future__ import annotations

from typing import Any

from lib.settings import settings
from lib.store import conditions as C
from lib.store import keys as K
from lib.store import table
from lib.store.concurrency import Write, new_token
from lib.store.expressions import Expression, Query, Update
from lib.store.items import Expiry, ServiceItem, from_plain
from lib.store.records import TtlLowering
from lib.store.table import TRANSACTION_LIMIT, ConditionFailed

LOWERING_DAYS = 30  # a lowering record lasts at least this long (see _record_ttl)


def expiration_clauses(u: Update, wanted: Expiry | None, known: ServiceItem | None, now: int) -> Expiry | None:
    """Expiration clauses of a service write; returns the expiration it sets (None: unchanged).

    Explicit request: set it. Otherwise the default slides to `now + DEFAULT_EXPIRATION`, unless an
    explicit expiration was set earlier, which then stays. The children's TTL must never be earlier
    than the service's expiration: the write assumes it is not (condition), and when it is, the
    children are raised before the write is tried again."""
    e = u.expr
    expiry = written(wanted, known, now)
    if expiry is None:
        u.conditions += [f"attribute_exists({e.name('expiry_explicit')})"]
        return None
    if wanted is None:
        u.conditions += C.absent(e, "expiry_explicit")
    u.sets["expires_ms"] = expiry.expires_ms
    u.sets[K.TTL_ATTRIBUTE] = expiry.ttl(now)
    u.sets["expiry_explicit"] = True if expiry.explicit else None  # None: REMOVE
    u.conditions += C.at_least(e, "children_ttl", expiry.ttl(now))
    return expiry


def written(wanted: Expiry | None, known: ServiceItem | None, now: int) -> Expiry | None:
    """The expiration a service write sets, as far as `known` (the item, or None: not read) tells:
    the request's; else None when the item has an explicit one, which stays; else the sliding default."""
    if wanted is None and known is not None and known.expiry_explicit:
        return None
    return wanted or sliding(now)


def sliding(now: int) -> Expiry:
    """The expiration a write sets when it slides it: the default from now."""
    return Expiry(now + settings().default_expiration_seconds * 1000, False)


def lowering(w: Write, service_id: str, expiry: Expiry | None, known: ServiceItem | None) -> dict[str, Any] | None:
    """The transaction action recording that the children's TTL is to come down to an explicit
    expiration this write sets (None: nothing to lower, as far as the write knows). Written unread
    (a PUT does not read the service): the schedule finds out whether the children are above it."""
    if expiry is None or not expiry.explicit:
        return None
    if known is not None and known.children_ttl <= expiry.children_ttl(w.now):
        return None
    record = TtlLowering(tenant=w.tenant, service_id=service_id, expires_ms=expiry.expires_ms, created_ms=w.now,
                         op=new_token(), expire_at=_record_ttl(expiry, w.now))
    return table.tx_put(record.to_item())


def _record_ttl(expiry: Expiry, now: int) -> int:
    """The record goes by itself a day after the conversation's own erasure (nothing is left to lower
    by then), or after LOWERING_DAYS if that is later (a schedule that stopped for a while finds it)."""
    return max(expiry.ttl(now) + 86_400, now // 1000 + LOWERING_DAYS * 86_400)


def finish_lowering(record: TtlLowering, now: int) -> bool:
    """Bring a conversation's children down to the explicit expiration `record` was written for, if its
    service still has it and the children are above it; then remove the record, unless a later write
    replaced it meanwhile (that one is done by a later run). True when the children were lowered.
    Also once that expiration has passed (an expiration already past, a ttl shorter than the schedule's
    period): the children then come down to now and the change feed's hold, not to the TTL they had
    before (years, under a sliding default)."""
    service = from_plain(table.get(K.service_key(record.tenant, record.service_id)))
    lowered = False
    if isinstance(service, ServiceItem) and service.expiry_explicit and service.expires_ms == record.expires_ms:
        target = Expiry(service.expires_ms, True).children_ttl(now)
        if service.children_ttl > target:
            _lower_children(service, target)
            lowered = True
    e = Expression()
    try:
        table.delete(record.key(), C.equals(e, "op", record.op), e)
    except ConditionFailed:
        pass  # replaced by a later write: its own record
    return lowered


def raise_children_ttl(service: ServiceItem, target: int) -> int:
    """Before a commit that extends the expiration: give every child at least `target`, record it,
    then look once more: a child lowered meanwhile by an earlier expiration's lowering (which stops
    as soon as the record moves) is raised again. Returns the children's TTL the item records now
    (`target`, or more when another write raised it meanwhile)."""
    _raise_children(service, target)
    record = Update(key=service.key(), sets={"children_ttl": target})
    record.conditions += C.exists(record.expr)
    record.conditions += [f"{record.expr.name('children_ttl')} < {record.expr.value(target)}"]
    recorded = target
    try:
        table.update(record)
    except ConditionFailed as failed:  # raised meanwhile by another write (or the item is gone)
        recorded = max(target, int((failed.old or {}).get("children_ttl") or target))
    _raise_children(service, target)
    return recorded


def _raise_children(service: ServiceItem, target: int) -> None:
    low = [item for item in _children_ttls(service) if (item.get(K.TTL_ATTRIBUTE) or 0) < target]
    for start in range(0, len(low), TRANSACTION_LIMIT):
        _try_transact([_child_ttl(item, target) for item in low[start:start + TRANSACTION_LIMIT]])


def _lower_children(service: ServiceItem, target: int) -> None:
    """Due work after an explicit expiration earlier than the children's TTL: record the lower TTL first (on
    condition that the expiration is still the one written), then lower the children in batches,
    each conditional on that record: a later write that extends the expiration raises the record
    (and the children) first, and no batch of this lowering lands after it."""
    record = Update(key=service.key(), sets={"children_ttl": target})
    e = record.expr
    record.conditions += C.exists(e) + C.equals(e, "expires_ms", service.expires_ms)
    record.conditions += [f"{e.name('children_ttl')} > {e.value(target)}"]
    try:
        table.update(record)
    except ConditionFailed:
        return  # the expiration changed meanwhile: that write looks after the children
    high = [item for item in _children_ttls(service) if (item.get(K.TTL_ATTRIBUTE) or 0) != target]
    for start in range(0, len(high), TRANSACTION_LIMIT - 1):
        e = Expression()
        check = table.tx_check(service.key(), C.equals(e, "children_ttl", target), e)
        try:
            table.transact([check] + [_child_ttl(item, target) for item in high[start:start + TRANSACTION_LIMIT - 1]])
        except ConditionFailed as failed:
            if failed.failed(0):
                return  # the record moved: a later expiration owns the children's TTL now


def _children_ttls(service: ServiceItem) -> list[dict[str, Any]]:
    return Query(service.pk, sk_after=K.SERVICE_SK, consistent=True, attributes=("PK", "SK", K.TTL_ATTRIBUTE)).all()


def _child_ttl(item: dict[str, Any], target: int) -> dict[str, Any]:
    op = Update(key=K.key_of(item), sets={K.TTL_ATTRIBUTE: target})
    op.conditions += C.exists(op.expr)
    return table.tx_update(op)


def _try_transact(actions: list[dict[str, Any]]) -> None:
    try:
        table.transact(actions)
    except ConditionFailed:
        pass  # a child deleted meanwhile: nothing to give a TTL to
