"""Erasing conversations (DELETE, purge, §8): the commit point deletes the service items (so every
reader stops seeing them at once) and records the erasure; the rest of their items are then removed
25 deletes a request across conversations: by the scheduled maintenance for a DELETE (its record is
in the due index: the request answers at its commit point), by the purge step itself for a purge
(an interrupted one is finished by the scheduled maintenance too).

The erasure record carries the change feed's events (lib.store.events): one ServiceDeleted or
ServicePurged per service deleted, with the service's sequence; each service item's delete is
conditional on its `seq` being the one read, so no event is committed between."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from lib.errors import Conflict
from lib.store import conditions as C
from lib.store import events, table
from lib.store import keys as K
from lib.store.concurrency import ATTEMPTS, Write, backoff
from lib.store.expressions import Expression, Query
from lib.store.items import Erasure, ServiceItem, lock_of_reference
from lib.store.jobs import LeaseLost
from lib.store.services import decode_service, live_service, not_found
from lib.store.table import TRANSACTION_LIMIT, ConcurrentChange, ConditionFailed

ERASURE_DAYS = 14  # an erasure record outlives any retry of its erasure

PURGE_BATCH = TRANSACTION_LIMIT - 2  # services a purge step deletes: + the erasure record + the job's progress
Target = tuple[str, Callable[[Expression], list[str]]]  # a service id, and the conditions of its delete
Also = Callable[[list[str]], list[dict[str, Any]]]  # the services deleted -> more actions of the same transaction


def remove_services(w: Write, targets: list[Target], also: Also | None = None, event: str = events.SERVICE_PURGED,
                    read: dict[str, ServiceItem] | None = None) -> tuple[list[str], Erasure | None]:
    """Commit point of deleting conversations (DELETE, purge): one transaction deletes up to 98
    service items under their conditions and the `seq` read (so every reader stops seeing those
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
            actions.append(table.tx_delete(K.service_key(w.tenant, service_id), conditions(e) + C.seq_is(e, service.seq),
                                           e))
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


def finish_erasure(erasure: Erasure) -> int:
    """After the commit point: remove every remaining item of the erased conversations, 25 deletes a
    request across conversations, the erasure record last. Returns the items removed."""
    keys = [K.key_of(item) for pk in erasure.pks
            for item in Query(pk, consistent=True, attributes=("PK", "SK")).all()]
    for key in keys:  # a composite lock naming an erased conversation goes with it
        lock = lock_of_reference(key)
        if lock is not None:
            e = Expression()
            try:
                table.delete(lock.key(), C.equals(e, "service_id", lock.service_id), e)
            except ConditionFailed:
                pass  # the lock names another service now
    table.delete_keys(keys + [erasure.key()])
    return len(keys)


def delete_service(w: Write, service_id: str) -> None:
    """Delete a conversation: one read (the service's `seq` and owner, for its ServiceDeleted event),
    then the commit point (§2): the service item's conditional delete with the erasure recorded, in
    one transaction. Every read of a child checks its service, so the conversation is gone at once
    for every reader; its other items are erased by the scheduled maintenance (the erasure is due
    work, GSI5), not in the request."""
    service = live_service(table.get(K.service_key(w.tenant, service_id)), service_id, w.now)
    deleted, _ = remove_services(w, [(service_id, lambda e: C.live(e, w.now))], event=events.SERVICE_DELETED,
                                 read={service_id: service})
    if not deleted:
        raise not_found(service_id)
