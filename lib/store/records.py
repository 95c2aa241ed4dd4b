"""Typed items that are not a conversation's: Idempotency-Key records, erasures in progress and what
a deleted service leaves at its key, pending lowerings of the children's TTL, maintenance jobs. Each
derives its keys from lib.store.keys; lib.store.items decodes them with the rest."""

from __future__ import annotations

from typing import Any, ClassVar

from lib.store import keys as K
from lib.store.entity import Entity


class IdempotencyRecord(Entity):
    """The reply of a creating request, kept 24 h under (tenant, operation, Idempotency-Key)."""

    TYPE: ClassVar[str] = "idempotency"

    digest: str  # of (tenant, operation, key)
    payload: str  # digest of the request body and path
    status: int
    body: str  # the reply body (JSON text)
    headers: dict[str, str] = {}
    expires_ms: int

    def key(self) -> dict[str, str]:
        return K.idempotency_key(self.digest)


class Erasure(Entity):
    """Conversations whose service items are deleted and whose other items are being erased: written
    in the transaction that deletes the service items, removed when the erasure is done; the due
    index brings an interrupted erasure to the scheduled maintenance."""

    TYPE: ClassVar[str] = "erasure"

    tenant: str
    erasure_id: str
    pks: list[str]
    created_ms: int
    ev: list[dict[str, Any]] = []  # the change feed's ServiceDeleted / ServicePurged (lib.store.events)

    def key(self) -> dict[str, str]:
        return K.erasure_key(self.tenant, self.erasure_id)

    def index_keys(self) -> dict[str, Any]:
        return {"GSI5PK": K.due_pk(K.ERASE, str(int(self.erasure_id[:8], 16))), "GSI5SK": self.created_ms}


class TtlLowering(Entity):
    """A conversation whose children's TTL is to come down to its service's explicit expiration (§7:
    erased together): written in the transaction of the write that set an expiration earlier than the
    children's TTL (PUT /services/{id}, an end with `ttl` / `expiration_time`), one per service (a later
    one replaces it). The due index (GSI5) brings it to the scheduled maintenance, which lowers the
    children and removes it (lib.store.expiration.finish_lowering)."""

    TYPE: ClassVar[str] = "ttl_lowering"

    tenant: str
    service_id: str
    expires_ms: int  # the expiration it was written for (a service with another one is not lowered to it)
    created_ms: int

    def key(self) -> dict[str, str]:
        return K.lowering_key(self.tenant, self.service_id)

    def index_keys(self) -> dict[str, Any]:
        return {"GSI5PK": K.due_pk(K.LOWER, self.service_id), "GSI5SK": self.created_ms}


class ErasedService(Entity):
    """What a DELETE or purge leaves at a service's key until its conversation is erased: no service
    for any read (no fields, no index keys), and the fence of the erasure it names: the erasure removes
    the conversation's items only while this still names it, and an import of the same id takes it
    over (a new `erasure_id`) before erasing the old items itself and writing its own."""

    TYPE: ClassVar[str] = "erased"

    tenant: str
    service_id: str
    erasure_id: str

    def key(self) -> dict[str, str]:
        return K.service_key(self.tenant, self.service_id)


class JobItem(Entity):
    """A maintenance job that continues outside the request that started it."""

    TYPE: ClassVar[str] = "job"

    tenant: str
    job_id: str
    kind: str  # "export" | "purge"
    params: dict[str, Any] = {}
    status: str = "running"  # running | succeeded | failed
    counts: dict[str, int] = {}
    checkpoint: dict[str, Any] = {}
    result: dict[str, Any] | None = None
    lease_ms: int = 0  # a worker holds the job until then (its token is `op`)
    check_ms: int = 0  # while running: when the schedule looks at it if nothing has moved it on
    attempts: int = 0  # steps in a row that failed for a reason not known to be passing
    error: str | None = None
    saved: str | None = None  # token of its last save (`op` stays the holder's for all its saves)
    created_ms: int
    updated_ms: int

    def key(self) -> dict[str, str]:
        return K.job_key(self.tenant, self.job_id)

    def index_keys(self) -> dict[str, Any]:
        """A running job is due work (GSI5): the schedule finds one that stopped moving."""
        if self.status != "running":
            return {}
        return {"GSI5PK": K.due_pk(K.JOB, str(int(self.job_id[:8], 16))), "GSI5SK": self.check_ms}
