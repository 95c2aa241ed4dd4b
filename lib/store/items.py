"""Typed items of the single table: each declares its keys and index keys once, carries an entity
type attribute (`type`), and is read back by one decoder (`decode`). See docs/DESIGN.md for the
table design and its access patterns.

Every key starts with the tenant (`<ContactCenterId>|<GroupId>`, an absent header being the empty
string, which no header value can be), so tenants never share a key. A conversation (a service, its
states, tasks) is one item collection:

    PK = <tenant>#C#<service_id>   SK = #SERVICE | S#<state_id:010> | T#<task_id:010>

so one Query reads a key range of it, and its two local indexes order the children by status
(LSI1) and the tasks by their state (LSI2).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from lib.clock import sortable_ms
from lib.settings import settings
from lib.store.codec import decode_item

SERVICE_SK = "#SERVICE"
LOCK_REF_PREFIX = "#LOCK#"  # sorts before SERVICE_SK: no range of children reaches it
STATE_PREFIX, TASK_PREFIX = "S#", "T#"
TTL_ATTRIBUTE = "expire_at"
# Shards of the maintenance time indexes and of the due-work index: a busy tenant's writes spread
# over this many index partitions (each takes ~1,000 writes a second).
SHARDS = 8
ACTIVE, COMPLETED = "A", "C"
# `aca_ms` of a service that never completes by itself: its `auto_complete_at` (last write + aca_ms)
# is then beyond any clock, so "active" is one comparison for every service, and every write can
# move the deadline inside its update expression (`auto_complete_at = aca_ms + :now`) without a read.
NEVER_MS = 2**53
CUSTOMER, ANONYMOUS = "CU", "AN"

OWNER_INDEX = "GSI1"  # a customer's / contact key's services, all statuses, by start time
OWNER_STATUS_INDEX = "GSI2"  # the same, active or completed
START_INDEX = "GSI3"  # a tenant's services by start time (sharded): exports, purge
END_INDEX = "GSI4"  # a tenant's completed services by end time (sharded): exports
DUE_INDEX = "GSI5"  # all tenants: services with work due at a time (auto-complete, unfinished deletes)
OWNER_DUE_INDEX = "GSI6"  # an owner's active services that complete by themselves, by deadline
TIMED = "T"  # owner partition of GSI6
STATUS_INDEX = "LSI1"  # a conversation's states / tasks by status, by id
STATE_TASKS_INDEX = "LSI2"  # the tasks of each state, by state then task


def tenant_key(contact_center: str | None, group: str | None) -> str:
    """Tenant prefix of every key (header values never contain '|' or '#')."""
    return f"{contact_center or ''}|{group or ''}"


def conversation_pk(tenant: str, service_id: str) -> str:
    return f"{tenant}#C#{service_id}"


def split_conversation_pk(pk: str) -> tuple[str, str]:
    """(tenant, service id) of a conversation's partition key."""
    tenant, service_id = pk.rsplit("#C#", 1)
    return tenant, service_id


def child_sk(kind: str, child_id: int) -> str:
    return f"{STATE_PREFIX if kind == 'state' else TASK_PREFIX}{child_id:010d}"


def time_sk(ms: int, service_id: str) -> str:
    """Sort key that orders services by a timestamp, then by service id."""
    return f"{sortable_ms(ms)}#{int(service_id):020d}"


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(list(parts), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Expiry:
    """When a conversation is erased, and whether a request set it (explicit) or it slides with writes."""

    expires_ms: int
    explicit: bool

    def ttl(self, now: int) -> int:
        """The TTL attribute value. DynamoDB ignores TTL values more than five years in the past, so a
        conversation given an old expiration_time is scheduled for erasure now instead."""
        return max(-(-self.expires_ms // 1000), now // 1000)

    def children_ttl(self, now: int) -> int:
        """TTL for the children: exactly the service's when explicit (erased together); with a margin of
        a tenth of the default when sliding, so that sliding rarely has to rewrite the children."""
        margin = 0 if self.explicit else settings().default_expiration_seconds // 10
        return self.ttl(now) + margin


def _shard(service_id: str) -> int:
    return int(service_id) % SHARDS


class Entity(BaseModel):
    """An item of the table. Subclasses declare `TYPE`, `key()` and `index_keys()`."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    TYPE: ClassVar[str]

    expire_at: int | None = None  # the table's TTL attribute (epoch seconds)
    op: str | None = None  # token of the request that wrote it last (recognises our own retried write)

    def key(self) -> dict[str, str]:
        raise NotImplementedError

    def index_keys(self) -> dict[str, str]:
        return {}

    def to_item(self) -> dict[str, Any]:
        """The stored form: keys, type, fields (absent when None) and index keys."""
        fields = {name: value for name, value in self.__dict__.items() if value is not None}
        return {**self.key(), "type": self.TYPE, **fields, **self.index_keys()}


# ---------------------------------------------------------------- conversation


class Element(Entity):
    """What services, states and tasks have in common (§3)."""

    tenant: str
    service_id: str
    est_duration: int | None = None
    started: dict[str, Any]
    started_ms: int
    completed: dict[str, Any] | None = None
    completed_ms: int | None = None
    disposition: int | str | None = None
    disposition_desc: str | None = None
    ext: dict[str, str] = {}  # attached data: key -> JSON text, kept exactly as sent

    @property
    def pk(self) -> str:
        return conversation_pk(self.tenant, self.service_id)


class ServiceItem(Element):
    TYPE: ClassVar[str] = "service"

    service_type: int | str | None = None
    customer_id: str | None = None
    contact_key: str | None = None
    auto_complete_after: int | None = None  # seconds without a write before it completes by itself
    last_write_ms: int
    expires_ms: int
    expiry_explicit: bool | None = None
    children_ttl: int  # TTL of its children: never earlier than the service's own expiration
    state_seq: int = 0
    task_seq: int = 0
    cascading: dict[str, int] = {}  # state id -> end ms, while a big state end completes its tasks

    def key(self) -> dict[str, str]:
        return {"PK": self.pk, "SK": SERVICE_SK}

    # ---- derived facts

    @property
    def aca_ms(self) -> int:
        return NEVER_MS if self.auto_complete_after is None else self.auto_complete_after * 1000

    @property
    def auto_complete_at(self) -> int | None:
        """When it completes by itself (§7): its last write plus `auto_complete_after`."""
        if self.auto_complete_after is None or self.completed_ms is not None:
            return None
        return self.last_write_ms + self.auto_complete_after * 1000

    def is_live(self, now: int) -> bool:
        return self.expires_ms > now

    def completed_at(self, now: int) -> int | None:
        """When it completed: its end event, or its auto-complete moment once that has passed."""
        if self.completed_ms is not None:
            return self.completed_ms
        due = self.auto_complete_at
        # Never before its start (a start event may carry a later timestamp than the server's clock):
        # no duration is negative (§1).
        return max(due, self.started_ms) if due is not None and due <= now else None

    @property
    def owner_kind(self) -> str:
        return CUSTOMER if self.customer_id is not None else ANONYMOUS

    @property
    def owner_id(self) -> str:
        return self.customer_id if self.customer_id is not None else (self.contact_key or "")

    # ---- keys

    def index_keys(self) -> dict[str, Any]:
        status = COMPLETED if self.completed_ms is not None else ACTIVE
        start = time_sk(self.started_ms, self.service_id)
        keys = {
            "GSI1PK": owner_pk(self.tenant, self.owner_kind, self.owner_id),
            "GSI1SK": start,
            "GSI2PK": owner_pk(self.tenant, self.owner_kind + status, self.owner_id),
            "GSI2SK": start,
            "GSI3PK": start_pk(self.tenant, self.service_id),
            "GSI3SK": start,
        }
        if self.completed_ms is not None:
            keys["GSI4PK"] = end_pk(self.tenant, self.service_id)
            keys["GSI4SK"] = time_sk(self.completed_ms, self.service_id)
        elif self.auto_complete_at is not None:
            keys["GSI5PK"] = due_pk(AUTO_COMPLETE, self.service_id)
            keys["GSI5SK"] = self.auto_complete_at
            keys["GSI6PK"] = owner_pk(self.tenant, self.owner_kind + TIMED, self.owner_id)
            keys["GSI6SK"] = self.auto_complete_at
        # Where it moves when it completes: kept on the item so that an end is one UpdateItem
        # (`SET GSI2PK = owner_done_pk`), with no read first.
        keys["owner_done_pk"] = owner_pk(self.tenant, self.owner_kind + COMPLETED, self.owner_id)
        return keys

    def to_item(self) -> dict[str, Any]:
        item = super().to_item()
        item["aca_ms"] = self.aca_ms
        item["auto_complete_at"] = self.last_write_ms + self.aca_ms  # projected into the time indexes
        return item


def owner_pk(tenant: str, kind: str, owner_id: str) -> str:
    """Partition of an owner's services: kind CU / AN (all), CUA / CUC / ANA / ANC (by status)."""
    return f"{tenant}#{kind}#{owner_id}"


AUTO_COMPLETE, ERASE = "A", "E"


def due_pk(kind: str, shard_of: str) -> str:
    """Partition of the due-work index: auto-completions (A) or unfinished erasures (E), by shard."""
    return f"DUE#{kind}#{int(shard_of) % SHARDS}"


def start_pk(tenant: str, service_id: str) -> str:
    return f"{tenant}#S#{_shard(service_id)}"


def end_pk(tenant: str, service_id: str) -> str:
    return f"{tenant}#E#{_shard(service_id)}"


class Child(Element):
    """A state or a task."""

    KIND: ClassVar[str]

    @property
    def child_id(self) -> int:
        raise NotImplementedError

    def key(self) -> dict[str, str]:
        return {"PK": self.pk, "SK": child_sk(self.KIND, self.child_id)}

    def status_sk(self) -> str:
        status = COMPLETED if self.completed_ms is not None else ACTIVE
        return f"{self.KIND[0].upper()}#{status}#{self.child_id:010d}"


class StateItem(Child):
    TYPE: ClassVar[str] = "state"
    KIND: ClassVar[str] = "state"

    state_id: int
    state_type: int | str | None = None
    previous_state_id: int | None = None
    attached: int = 0  # tasks ever attached: a state end is conditional on it (no task slips in)

    @property
    def child_id(self) -> int:
        return self.state_id

    def index_keys(self) -> dict[str, str]:
        return {"LSI1SK": self.status_sk()}


class TaskItem(Child):
    TYPE: ClassVar[str] = "task"
    KIND: ClassVar[str] = "task"

    task_id: int
    task_type: int | str | None = None
    state_id: int | None = None

    @property
    def child_id(self) -> int:
        return self.task_id

    def index_keys(self) -> dict[str, str]:
        keys = {"LSI1SK": self.status_sk()}
        if self.state_id is not None:
            keys["LSI2SK"] = state_tasks_sk(self.state_id, self.task_id)
        return keys


def state_tasks_sk(state_id: int, task_id: int | None = None) -> str:
    """LSI2 sort key of a task in a state (`B#<state>#<task>`); with no task, the state's prefix."""
    return f"B#{state_id:010d}" + (f"#{task_id:010d}" if task_id is not None else "")


def status_range(kind: str, status: str) -> tuple[str, str]:
    """LSI1 key range of a conversation's states or tasks of one status."""
    prefix = f"{kind[0].upper()}#{status}#"
    return prefix, prefix + "~"


# ---------------------------------------------------------------- composite start


class CompositeLock(Entity):
    """Names the service, states and tasks that composite starts with the same keys use, so that
    concurrent composite starts converge on one of each (conditional writes of this one item)."""

    TYPE: ClassVar[str] = "lock"

    tenant: str
    digest: str  # of (customer_id, contact_key, service_type)
    service_id: str | None = None
    states: dict[str, dict[str, Any]] = {}  # digest(state_type) -> {"id": n, "tasks": {digest(task_type): n}}
    tasks: dict[str, int] = {}  # digest(task_type) -> id, for tasks attached to no state

    def key(self) -> dict[str, str]:
        return {"PK": f"{self.tenant}#COMPOSITE#{self.digest}", "SK": "#LOCK"}

    def reference(self, service: ServiceItem) -> dict[str, Any]:
        """The item, in the conversation it names, that leads the conversation's erasure to this
        lock (its key holds the digest)."""
        return LockReference(tenant=self.tenant, service_id=service.service_id, digest=self.digest,
                             expire_at=service.children_ttl).to_item()


class LockReference(Entity):
    """In a conversation: the composite lock that names it, erased with it."""

    TYPE: ClassVar[str] = "lockref"

    tenant: str
    service_id: str
    digest: str

    def key(self) -> dict[str, str]:
        return {"PK": conversation_pk(self.tenant, self.service_id), "SK": LOCK_REF_PREFIX + self.digest}


def lock_of_reference(key: dict[str, str]) -> CompositeLock | None:
    """The lock (its key and the service it should name) a conversation's item refers to (None:
    the item is no lock reference)."""
    if not key["SK"].startswith(LOCK_REF_PREFIX):
        return None
    tenant, service_id = split_conversation_pk(key["PK"])
    return CompositeLock(tenant=tenant, digest=key["SK"][len(LOCK_REF_PREFIX):], service_id=service_id)


# ---------------------------------------------------------------- idempotency and jobs


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
        return {"PK": f"IDEMPOTENCY#{self.digest}", "SK": "#IDEMPOTENCY"}


class Erasure(Entity):
    """Conversations whose service items are deleted and whose other items are being erased: written
    in the transaction that deletes the service items, removed when the erasure is done; the due
    index brings an interrupted erasure to the scheduled maintenance."""

    TYPE: ClassVar[str] = "erasure"

    tenant: str
    erasure_id: str
    pks: list[str]
    created_ms: int

    def key(self) -> dict[str, str]:
        return {"PK": f"{self.tenant}#ERASE#{self.erasure_id}", "SK": "#ERASE"}

    def index_keys(self) -> dict[str, Any]:
        return {"GSI5PK": due_pk(ERASE, str(int(self.erasure_id[:8], 16))), "GSI5SK": self.created_ms}


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
    lease_ms: int = 0  # a worker holds the job until then
    error: str | None = None
    created_ms: int
    updated_ms: int

    def key(self) -> dict[str, str]:
        return {"PK": f"{self.tenant}#JOB#{self.job_id}", "SK": "#JOB"}


ENTITIES: dict[str, type[Entity]] = {cls.TYPE: cls for cls in
                                     (ServiceItem, StateItem, TaskItem, CompositeLock, LockReference,
                                      IdempotencyRecord, Erasure, JobItem)}


def decode(raw: dict[str, Any] | None) -> Entity | None:
    """The one decoder: a stored item (attribute values) -> its typed entity (None stays None)."""
    item = decode_item(raw)
    return from_plain(item)


def from_plain(item: dict[str, Any] | None) -> Entity | None:
    """A decoded item (plain values) -> its typed entity, by its `type` attribute."""
    if item is None:
        return None
    cls = ENTITIES.get(item.get("type", ""))
    if cls is None:
        raise ValueError(f"item of unknown type {item.get('type')!r}")
    return cls.model_construct(**{name: item[name] for name in cls.model_fields if name in item})
