"""Erasing conversations (DELETE, purge, §8): the commit point deletes the service items (so every
reader stops seeing them at once) and records the erasure; the rest of their items are then removed
25 deletes a request across conversations. An interrupted erasure is finished by the scheduled
maintenance (its record is in the due index)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from lib.errors import Conflict
from lib.store import conditions as C
from lib.store import keys as K
from lib.store import table
from lib.store.concurrency import ATTEMPTS, Write, backoff
from lib.store.expressions import Expression, Query
from lib.store.items import Erasure, lock_of_reference
from lib.store.jobs import LeaseLost
from lib.store.services import not_found
from lib.store.table import TRANSACTION_LIMIT, ConcurrentChange, ConditionFailed

log = logging.getLogger(__name__)
ERASURE_DAYS = 14  # an erasure record outlives any retry of its erasure

PURGE_BATCH = TRANSACTION_LIMIT - 2  # services a purge step deletes: + the erasure record + the job's progress
Target = tuple[str, Callable[[Expression], list[str]]]  # a service id, and the conditions of its delete
Also = Callable[[list[str]], list[dict[str, Any]]]  # the services deleted -> more actions of the same transaction


def remove_services(w: Write, targets: list[Target], also: Also | None = None) -> tuple[list[str], Erasure | None]:
    """Commit point of deleting conversations (DELETE, purge): one transaction deletes up to 98
    service items under their conditions (so every reader stops seeing those conversations at
    once), records the erasure of the rest of their items and, with `also`, commits more actions
    (a purge job's progress, built for the services this attempt deletes). Targets whose condition
    fails are left out and the rest tried again. Returns the service ids deleted and the erasure
    record. Raises LeaseLost when an `also` action's condition fails (the job is no longer ours)."""
    pending = list(targets)
    for attempt in range(ATTEMPTS):
        if not pending:
            return [], None
        ids = [sid for sid, _ in pending]
        extra = also(ids) if also is not None else []
        erasure = Erasure(tenant=w.tenant, erasure_id=secrets.token_hex(12), created_ms=w.now, op=w.token,
                          pks=[K.conversation_pk(w.tenant, sid) for sid, _ in pending],
                          expire_at=w.now // 1000 + ERASURE_DAYS * 86400)
        actions = []
        for service_id, conditions in pending:
            e = Expression()
            actions.append(table.tx_delete(K.service_key(w.tenant, service_id), conditions(e), e))
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
            pending = [target for index, target in enumerate(pending) if not failed.failed(index)]
        except ConcurrentChange:
            backoff(attempt)
    raise Conflict("conversations changed concurrently; retry")


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
    """Delete a conversation: gone at once for every reader (commit point: the service item's
    conditional delete), then its other items are erased; an interrupted erasure is finished by the
    scheduled maintenance (due index)."""
    deleted, erasure = remove_services(w, [(service_id, lambda e: C.live(e, w.now))])
    if not deleted:
        raise not_found(service_id)
    try:
        finish_erasure(erasure)
    except Exception:  # after the commit point nothing may fail the request
        log.warning("conversation %s deleted, erasure of its items left to maintenance", service_id, exc_info=True)
