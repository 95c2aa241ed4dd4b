"""Expiration of conversations (§7).

The service item holds the authoritative expiration (`expires_ms`); every read compares it with the
clock, so an expired conversation is gone at once. Every item also carries the table's TTL
attribute (`expire_at`, epoch seconds) so DynamoDB erases it for free:

* the service item's TTL is its expiration;
* child items (states, tasks, locks) carry the service's `children_ttl`, never earlier than the
  expiration. With the default (sliding) expiration it is set with a margin of a tenth of the
  default, so a write that slides the expiration rewrites the children's TTL only when the margin
  is used up (with the 5-year default: a conversation written to over more than six months).
  An explicit `ttl` / `expiration_time` sets the children's TTL exactly, rewriting them, so that
  everything is erased together.

Rewrites of the children happen after the service item is written, and `children_ttl` is recorded
last; a write interrupted in between is repaired by the next write of the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lib import clock, store
from lib.clock import parse_timestamp
from lib.settings import settings


@dataclass(frozen=True)
class Expiry:
    expires_ms: int
    explicit: bool


def requested(ttl: int | None, expiration_time: str | None, now: int) -> Expiry | None:
    """The expiration a request asks for, if any (`ttl` wins over `expiration_time`)."""
    if ttl is not None:
        return Expiry(now + ttl * 1000, True)
    if expiration_time is not None:
        return Expiry(parse_timestamp(expiration_time, "expiration_time"), True)
    return None


def default(now: int) -> Expiry:
    return Expiry(now + settings().default_expiration_seconds * 1000, False)


def ttl_seconds(expires_ms: int, now: int) -> int:
    """TTL attribute value. DynamoDB ignores TTL values more than five years in the past, so a
    conversation given an old expiration_time is scheduled for erasure now instead."""
    return max(-(-expires_ms // 1000), now // 1000)


def children_ttl_for(expiry: Expiry, now: int) -> int:
    margin = 0 if expiry.explicit else settings().default_expiration_seconds // 10
    return ttl_seconds(expiry.expires_ms, now) + margin


def set_clauses(op: store.Update, expiry: Expiry, now: int) -> None:
    """SET the service item's expiration fields."""
    op.sets["expires_ms"] = expiry.expires_ms
    op.sets[store.TTL_ATTRIBUTE] = ttl_seconds(expiry.expires_ms, now)
    op.sets["expiry_explicit"] = True if expiry.explicit else None  # None -> REMOVE


def write_clauses(op: store.Update, wanted: Expiry | None, known: dict[str, Any] | None, now: int) -> list[str]:
    """Expiration part of a write to a service item; returns the conditions it relies on.

    Explicit request: set it. Otherwise the default slides to `now + DEFAULT_EXPIRATION`, unless
    an explicit expiration was set earlier, which then stays. Whether one was is only known from a
    previous failed attempt (`known`), so the first attempt assumes none and says so in its
    condition."""
    e = op.expr
    if wanted is not None:
        set_clauses(op, wanted, now)
        return []
    if known is not None and known.get("expiry_explicit"):
        return [f"attribute_exists({e.name('expiry_explicit')})"]
    set_clauses(op, default(now), now)
    return [f"attribute_not_exists({e.name('expiry_explicit')})"]


def sync_children(service: dict[str, Any], now: int | None = None) -> None:
    """Bring the TTL of every child item of a conversation in line with the service item's
    expiration, if it is not already (see module doc). No-op in the common case."""
    now = clock.now_ms() if now is None else now
    expiry = Expiry(service["expires_ms"], bool(service.get("expiry_explicit")))
    current = service.get("children_ttl")
    exact = ttl_seconds(expiry.expires_ms, now)
    if expiry.explicit and current == exact:
        return
    if not expiry.explicit and current is not None and current >= exact:
        return
    target = children_ttl_for(expiry, now)
    pk = service["PK"]
    stale = [item["SK"] for item in store.query_collection(pk)
             if item["SK"] != store.SERVICE_SK and item.get(store.TTL_ATTRIBUTE) != target]
    # Transactions of up to 100 actions: the last one also records children_ttl on the service item,
    # on condition that the expiration is still the one this sync was made for.
    batches = [stale[i:i + 99] for i in range(0, len(stale), 99)] or [[]]
    for number, batch in enumerate(batches):
        actions = []
        for sk in batch:
            op = store.Update(key={"PK": pk, "SK": sk}, sets={store.TTL_ATTRIBUTE: target})
            op.condition = f"attribute_exists({op.expr.name('PK')})"
            actions.append(store.tx_update(op))
        if number == len(batches) - 1:
            record = store.Update(key={"PK": pk, "SK": store.SERVICE_SK}, sets={"children_ttl": target})
            e = record.expr
            record.condition = f"{e.name('expires_ms')} = {e.value(service['expires_ms'])}"
            actions.append(store.tx_update(record))
        try:
            store.transact(actions)
        except store.ConditionFailed:
            # A child deleted meanwhile, or the expiration moved again (that write syncs the children
            # itself): nothing left to do here.
            return
