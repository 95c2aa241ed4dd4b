"""Erasing conversations (DELETE, purge, §8): the commit point replaces the service items with the
erasure's fences (ErasedService: so every reader stops seeing them at once) and records the erasure;
the rest of their items are then removed, up to 100 actions a transaction across conversations,
each conversation's deletes under its fence: by the scheduled maintenance for a DELETE (its record
is in the due index: the request answers at its commit point), by the purge step itself for a purge
(an interrupted one is finished by the scheduled maintenance too). An import that writes the same id
again takes the fence over first (take_over), so an older deletion never erases what it writes.

The erasure record carries the change feed's events (lib.store.events): one ServiceDeleted or
ServicePurged per service deleted, with the service's sequence; each service item's replacement is
conditional on its `seq` being the one read, so no event is committed between."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from lib import clock
from lib.errors import Conflict
from lib.status import Status
from lib.store import conditions as C
from lib.store import events, recording, table
from lib.store import keys as K
from lib.store.concurrency import ATTEMPTS, Write, backoff, parallel
from lib.store.expressions import Expression, Query, Update
from lib.store.items import FEED_HOLD_S, ServiceItem, lock_of_reference
from lib.store.jobs import LeaseLost
from lib.store.records import ErasedService, Erasure
from lib.store.services import decode_service, not_found
from lib.store.table import TRANSACTION_LIMIT, ConcurrentChange, ConditionFailed

ERASURE_DAYS = 14  # an erasure record outlives any retry of its erasure
# How long after a service's end its active children stay, whatever erases the conversation: a
# service's end without a trusted summary leaves its cascade to the feed's publisher, which reads
# those children (lib.store.events.cascade_read) from the record of the end, at any time the stream
# still holds it (24 hours, a re-drive included), so they are kept that long and an hour more (and
# their TTL is as long past their service's expiration: lib.store.items.Expiry.children_ttl).
FEED_HOLD_MS = FEED_HOLD_S * 1000

PURGE_BATCH = TRANSACTION_LIMIT - 2  # services a purge step deletes: + the erasure record + the job's progress
Target = tuple[str, Callable[[Expression], list[str]]]  # a service id, and the conditions of its delete
Also = Callable[[list[str]], list[dict[str, Any]]]  # the services deleted -> more actions of the same transaction


def remove_services(w: Write, targets: list[Target], also: Also | None = None, event: str = events.SERVICE_PURGED,
                    read: dict[str, ServiceItem] | None = None) -> tuple[list[str], Erasure | None]:
    """Commit point of deleting conversations (DELETE, purge): one transaction replaces up to 98
    service items with the erasure's fences (ErasedService) under their conditions and the `seq` read (so every reader stops seeing those
    conversations at once), records the erasure of the rest of their items, with an `event`
    (ServicePurged, ServiceDeleted) for each, and, with `also`, commits more actions (a purge job's
    progress, built for the services this attempt deletes). The service items are read first (one
    BatchGetItem), unless given (`read`). A target whose item changed since it was read is tried
    again as it is now; one whose condition fails otherwise is left out. Returns the service ids
    deleted and the erasure record. Raises LeaseLost when an `also` action's condition fails (the
    job is no longer ours)."""
    found = read if read is not None else _read(w.tenant, [sid for sid, _ in targets])
    pending = [(sid, conditions, found[sid]) for sid, conditions in targets if sid in found]
    for attempt in range(ATTEMPTS):
        if not pending:
            return [], None
        ids = [sid for sid, _, _ in pending]
        extra = also(ids) if also is not None else []
        erasure = Erasure(tenant=w.tenant, erasure_id=secrets.token_hex(12), created_ms=w.now, op=w.token,
                          pks=[K.conversation_pk(w.tenant, sid) for sid, _, _ in pending],
                          ev=[events.erased(event, w.now, service) for _, _, service in pending],
                          expire_at=w.now // 1000 + ERASURE_DAYS * 86400)
        actions = []
        for service_id, conditions, service in pending:
            e = Expression()
            erased = ErasedService(tenant=w.tenant, service_id=service_id, erasure_id=erasure.erasure_id,
                                   expire_at=erasure.expire_at, op=w.token)
            # Its `seq` and `cx` stay (no event on the fence: the erasure record carries this one).
            fence = {**erased.to_item(), "seq": service.seq, **({"cx": service.cx} if service.cx else {}),
                     **({"ended_ms": service.ended_ms} if service.ended_ms is not None else {})}
            actions.append(table.tx_put(fence, conditions(e) + C.seq_is(e, service.seq), e))
        e = Expression()
        actions.append(table.tx_put(erasure.to_item(), C.new_item(e), e))
        actions += extra
        try:
            table.confirmed(lambda: table.transact(actions), erasure.key(), w.token)
            return ids, erasure
        except ConditionFailed as failed:
            if (failed.old_of(len(pending)) or {}).get("op") == w.token:
                return ids, erasure  # applied before its reply was lost
            if any(failed.failed(index) for index in range(len(pending) + 1, len(actions))):
                raise LeaseLost("the job's progress was refused: another worker holds it") from None
            pending = _still_pending(pending, failed)
        except ConcurrentChange:
            backoff(attempt)
    raise Conflict("conversations changed concurrently; retry")


def _read(tenant: str, service_ids: list[str]) -> dict[str, ServiceItem]:
    found = table.get_many([K.service_key(tenant, sid) for sid in service_ids])
    services = [decode_service(item) for item in found.values()]
    return {s.service_id: s for s in services if s is not None}


def _still_pending(pending: list[tuple[str, Callable[..., Any], ServiceItem]], failed: ConditionFailed) -> list[Any]:
    """After a refused transaction: the targets that did not fail, and those that failed because
    their item changed since it was read (their `seq` moved), as they are now."""
    kept = []
    for index, (service_id, conditions, service) in enumerate(pending):
        if not failed.failed(index):
            kept.append((service_id, conditions, service))
            continue
        now = decode_service(failed.old_of(index))
        if now is not None and now.seq != service.seq:
            kept.append((service_id, conditions, now))
    return kept


def finish_erasure(erasure: Erasure, now: int | None = None) -> int | None:
    """After the commit point: remove every remaining item of the erased conversations, then the
    erasure record. A conversation is erased only while its service key still holds the
    ErasedService naming this erasure (the fence): its items go in transactions of up to 100
    actions across conversations, each conversation's deletes beside a check of its fence, its last
    ones beside the fence's own delete. An import that took the id over meanwhile (take_over) moved
    the fence: that conversation is left out, so nothing the import writes is ever removed by an
    older deletion. A conversation whose service ended less than FEED_HOLD_MS ago with children
    still active is held: the feed's publisher may yet read them (`held_until`); the erasure record
    then stays, due again when the first hold ends. Returns the items removed, None when some
    conversation is held (the erasure is not finished)."""
    now = clock.now_ms() if now is None else now
    size = TRANSACTION_LIMIT - 1
    queues: dict[str, list[list[dict[str, str]]]] = {}
    fences = table.get_many([K.service_key(*K.split_conversation_pk(pk)) for pk in erasure.pks])
    releases = []
    for pk in erasure.pks:
        items = _children(pk)
        fence = fences.get((pk, K.SERVICE_SK))
        release = held_until(fence, items, now) if fence is not None and fence.get("erasure_id") == erasure.erasure_id \
            else None
        if release is not None:
            releases.append(release)
            continue
        keys = [K.key_of(item) for item in items]
        queues[pk] = [keys[start:start + size] for start in range(0, len(keys), size)] or [[]]
    removed = 0
    while any(queues.values()):
        batch, actions = [], 0
        for pk, chunks in queues.items():
            if chunks and actions + 1 + len(chunks[0]) <= TRANSACTION_LIMIT:
                batch.append(pk)
                actions += 1 + len(chunks[0])
        removed += _erase_fenced(erasure.erasure_id, batch, queues)
    if releases:
        _due_again(erasure, min(releases))
        return None
    table.delete_keys([erasure.key()])
    return removed


def held_until(service: dict[str, Any], children: list[dict[str, Any]], now: int) -> int | None:
    """When a deleted conversation's items may go (its fence or service item, and its children as
    _children reads them): None when they may go now; else the end of its hold (FEED_HOLD_MS after
    its service's end was written, `ended_ms`, while some child is still active: a service's end does
    not write its children, so they stay active in their items, and the publisher may read them for
    the end's cascade)."""
    ended = service.get("ended_ms")
    if ended is None or isinstance(ended, bool) or int(ended) + FEED_HOLD_MS <= now:
        return None  # no end whose cascade is read (true: it took it from the summary), or long ago
    prefixes = tuple(K.status_range(kind, Status.ACTIVE)[0] for kind in ("state", "task"))
    if not any(str(item.get("LSI1SK", "")).startswith(prefixes) for item in children):
        return None
    return int(ended) + FEED_HOLD_MS


def _due_again(erasure: Erasure, at_ms: int) -> None:
    """The erasure record is due again at `at_ms` (the due index's time), not before."""
    u = Update(key=erasure.key(), sets={"GSI5SK": at_ms})
    u.conditions += C.exists(u.expr)
    try:
        table.update(u)
    except ConditionFailed:
        pass  # finished meanwhile by another run


def _erase_fenced(erasure_id: str, batch: list[str], queues: dict[str, list[list[dict[str, str]]]]) -> int:
    """One transaction: the next chunk of each conversation of `batch`, under its fence. A
    conversation whose fence is gone (erased already, or taken over by an import) is dropped."""
    for attempt in range(ATTEMPTS):
        actions: list[dict[str, Any]] = []
        heads: list[int] = []
        for pk in batch:
            tenant, service_id = K.split_conversation_pk(pk)
            e = Expression()
            fence = C.equals(e, "erasure_id", erasure_id)
            fence_key = K.service_key(tenant, service_id)
            heads.append(len(actions))
            last = len(queues[pk]) == 1
            actions.append(table.tx_delete(fence_key, fence, e) if last else table.tx_check(fence_key, fence, e))
            actions += [table.tx_delete(key) for key in queues[pk][0]]
        try:
            table.transact(actions)
        except ConditionFailed as failed:
            gone = [pk for pk, head in zip(batch, heads) if failed.failed(head)]
            if not gone:
                raise
            for pk in gone:
                queues[pk] = []  # not ours any more: left alone
            return 0
        except ConcurrentChange:
            backoff(attempt)
            continue
        removed = 0
        for pk in batch:
            chunk = queues[pk].pop(0)
            _release_locks(chunk)
            removed += len(chunk)
        return removed
    raise Conflict("erasing conversations: changed concurrently; the schedule tries again")


def _children(pk: str) -> list[dict[str, Any]]:
    """Every item of a conversation but the one at its service key: its keys, and its status key (a
    state's or task's, to tell an active one)."""
    return [item for item in Query(pk, consistent=True, attributes=("PK", "SK", "LSI1SK")).all()
            if item["SK"] != K.SERVICE_SK]


def _release_locks(keys: list[dict[str, str]]) -> None:
    """A composite lock naming an erased conversation goes with it (its reference was among `keys`)."""
    for key in keys:
        lock = lock_of_reference(key)
        if lock is not None:
            e = Expression()
            try:
                table.delete(lock.key(), C.equals(e, "service_id", lock.service_id), e)
            except ConditionFailed:
                pass  # the lock names another service now


class ErasureHeld(Exception):
    """A deleted conversation's items are held for the change feed until `until_ms` (held_until)."""

    def __init__(self, until_ms: int):
        super().__init__(f"held for the change feed until {until_ms}")
        self.until_ms = until_ms


def take_over(tenant: str, service_id: str, token: str) -> int | None:
    """For an import that writes `service_id` again while a deleted conversation with that id is still
    being erased: move the fence to this import (`erasure_id` = its token; any erasure of the old
    conversation stops there), then remove the old conversation's items here, so that the import
    writes on an empty conversation. Returns the items removed; 0 when no deleted conversation holds
    the id any more (erased meanwhile); None when the key holds something else now (a service
    written meanwhile: not to be written over). ErasureHeld while the deleted conversation's items
    are held for the change feed (held_until): nothing is changed."""
    key = K.service_key(tenant, service_id)
    pk = K.conversation_pk(tenant, service_id)
    fence, children = parallel(lambda: table.get(key), lambda: _children(pk))
    if fence is not None and fence.get("type") == ErasedService.TYPE:
        release = held_until(fence, children, clock.now_ms())
        if release is not None:
            raise ErasureHeld(release)
    u = Update(key=key, sets={"erasure_id": f"import-{token}", "op": token})
    u.conditions += C.equals(u.expr, "type", ErasedService.TYPE)
    try:
        table.update(u)
    except ConditionFailed:
        return 0 if table.get(key) is None else None
    # The old items, as read before the fence moved (nothing adds to a fenced conversation; what this
    # import writes after the move is not among them).
    keys = [K.key_of(item) for item in children]
    table.delete_keys(keys)
    _release_locks(keys)
    return len(keys)


# A service item's attributes a DELETE removes when it turns the item into the erasure's fence: its
# index keys (no list, export, purge or due work finds it) and what makes it live or active for a
# condition (every write of a service is conditional on `expires_ms` / `auto_complete_at`), and the
# summary of its active children (lib.store.summary).
_SERVICE_ONLY = ("GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK", "GSI4PK", "GSI4SK", "GSI5PK", "GSI5SK",
                 "GSI6PK", "GSI6SK", "owner_done_pk", "expires_ms", "auto_complete_at", "aca_ms", "act", "ax")


def delete_service(w: Write, service_id: str) -> None:
    """Delete a conversation in one round trip, its commit point (§2): one transaction turns the
    service item into the erasure's fence (an update, no read first: `type` erased, index keys and
    expiration removed, `seq` advanced by one with ServiceDeleted in `ev`: the publisher completes
    the event from the record's new image, its owner and sequence) on condition that it is a live
    service of this tenant, and records the erasure. Every read of a child checks its service, so
    the conversation is gone at once for every reader; its other items are erased by the scheduled
    maintenance (the erasure is due work, GSI5), not in the request. A refused delete (missing,
    expired, deleted, another tenant's) changes nothing and publishes nothing."""
    for attempt in range(ATTEMPTS):
        erasure = Erasure(tenant=w.tenant, erasure_id=secrets.token_hex(12), created_ms=w.now, op=w.token,
                          pks=[K.conversation_pk(w.tenant, service_id)], expire_at=w.now // 1000 + ERASURE_DAYS * 86400)
        u = Update(key=K.service_key(w.tenant, service_id),
                   sets={"type": ErasedService.TYPE, "erasure_id": erasure.erasure_id, K.TTL_ATTRIBUTE: erasure.expire_at},
                   removes=list(_SERVICE_ONLY))
        u.conditions += C.live(u.expr, w.now) + C.equals(u.expr, "type", ServiceItem.TYPE)
        recording.record(u, [events.deleted(w.now)], w.token)
        e = Expression()
        actions = [table.tx_update(u), table.tx_put(erasure.to_item(), C.new_item(e), e)]
        try:
            table.confirmed(lambda: table.transact(actions), erasure.key(), w.token)
            return
        except ConditionFailed as failed:
            if (failed.old_of(0) or {}).get("op") == w.token:
                return  # applied before its reply was lost
            raise not_found(service_id) from None
        except ConcurrentChange:
            backoff(attempt)
    raise Conflict("the conversation changed concurrently; retry")
