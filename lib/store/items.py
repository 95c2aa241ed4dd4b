"""Typed items of the single table: each derives its keys and index keys from lib.store.keys, carries
an entity type attribute (`type`), and is read back by one decoder (`decode`). See docs/DESIGN.md
for the table design and its access patterns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from lib.settings import settings
from lib.status import Status
from lib.store import keys as K
from lib.store.codec import decode_fields, decode_item
from lib.store.concurrency import new_token

# `aca_ms` of a service that never completes by itself: its `auto_complete_at` (last write + aca_ms)
# is then beyond any clock, so "active" is one comparison for every service, and every write can
# move the deadline inside its update expression (`auto_complete_at = aca_ms + :now`) without a read.
NEVER_MS = 2**53


@dataclass(frozen=True)
class Completion:
    """An end event as stored: the event fields (with the timestamp), when, and attached data."""

    event: dict[str, Any]
    ms: int
    disposition: Any = None
    disposition_desc: str | None = None
    attached: dict[str, str] = field(default_factory=dict)  # key -> JSON text


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


class Entity(BaseModel):
    """An item of the table. Subclasses declare `TYPE`, `key()` and `index_keys()`."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    TYPE: ClassVar[str]

    expire_at: int | None = None  # the table's TTL attribute (epoch seconds)
    op: str | None = None  # token of the request that wrote it last (recognises our own retried write)

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """An entity of values the code computed from input already validated (the request's body by
        the resolver, the rest by the rules), built without validating them again: what
        `model_construct` builds, at the cost of a read's decoding (see `_Construct`)."""
        entity = _Construct.of(cls).build(values)
        assert isinstance(entity, cls)
        return entity

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
        return K.conversation_pk(self.tenant, self.service_id)


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
    # The change feed (lib.store.events): events committed so far, and active states and tasks
    # (None: written before the count was kept, unknown).
    seq: int = 0
    open: int | None = None
    open_sum: int | None = None  # checksum of the active states' and tasks' ids (lib.store.events)

    @classmethod
    def new(cls, *, tenant: str, service_id: str, expiry: Expiry, now: int, **fields: Any) -> ServiceItem:
        """A new service as stored: written now (its first write), its expiration and the TTLs that
        follow from it (its own, its children's)."""
        return cls(tenant=tenant, service_id=service_id, last_write_ms=now, expires_ms=expiry.expires_ms,
                   expiry_explicit=True if expiry.explicit else None, expire_at=expiry.ttl(now),
                   children_ttl=expiry.children_ttl(now), cascading={}, op=new_token(), **fields)

    def key(self) -> dict[str, str]:
        return K.service_key(self.tenant, self.service_id)

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

    def owner_pk(self, status: Status | None = None, timed: bool = False) -> str:
        """Its owner's partition of an owner index (all; by status; timed: GSI6)."""
        return K.owner_pk(self.tenant, self.customer_id, self.contact_key, status, timed)

    # ---- keys

    def index_keys(self) -> dict[str, Any]:
        status = Status.COMPLETED if self.completed_ms is not None else Status.ACTIVE
        start = K.time_sk(self.started_ms, self.service_id)
        keys = {
            "GSI1PK": self.owner_pk(),
            "GSI1SK": start,
            "GSI2PK": self.owner_pk(status),
            "GSI2SK": start,
            "GSI3PK": K.start_pk(self.tenant, self.service_id),
            "GSI3SK": start,
        }
        if self.completed_ms is not None:
            keys["GSI4PK"] = K.end_pk(self.tenant, self.service_id)
            keys["GSI4SK"] = K.time_sk(self.completed_ms, self.service_id)
        elif self.auto_complete_at is not None:
            keys["GSI5PK"] = K.due_pk(K.AUTO_COMPLETE, self.service_id)
            keys["GSI5SK"] = self.auto_complete_at
            keys["GSI6PK"] = self.owner_pk(timed=True)
            keys["GSI6SK"] = self.auto_complete_at
        # Where it moves when it completes: kept on the item so that an end is one UpdateItem
        # (`SET GSI2PK = owner_done_pk`), with no read first.
        keys["owner_done_pk"] = self.owner_pk(Status.COMPLETED)
        return keys

    def to_item(self) -> dict[str, Any]:
        item = super().to_item()
        item["aca_ms"] = self.aca_ms
        item["auto_complete_at"] = self.last_write_ms + self.aca_ms  # projected into the time indexes
        return item


class Child(Element):
    """A state or a task."""

    KIND: ClassVar[str]

    @property
    def child_id(self) -> int:
        raise NotImplementedError

    def key(self) -> dict[str, str]:
        return K.child_key(self.tenant, self.service_id, self.KIND, self.child_id)

    def status_sk(self) -> str:
        return K.status_sk(self.KIND, self.completed_ms is not None, self.child_id)


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
            keys["LSI2SK"] = K.state_tasks_sk(self.state_id, self.task_id)
        return keys


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
        return K.lock_key(self.tenant, self.digest)

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
        return K.lock_ref_key(self.tenant, self.service_id, self.digest)


def lock_of_reference(key: dict[str, str]) -> CompositeLock | None:
    """The lock (its key and the service it should name) a conversation's item refers to (None:
    the item is no lock reference)."""
    lock_digest = K.lock_digest_of_reference(key)
    if lock_digest is None:
        return None
    tenant, service_id = K.split_conversation_pk(key["PK"])
    return CompositeLock(tenant=tenant, digest=lock_digest, service_id=service_id)


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


ENTITIES: dict[str, type[Entity]] = {cls.TYPE: cls for cls in
                                     (ServiceItem, StateItem, TaskItem, CompositeLock, LockReference,
                                      IdempotencyRecord, Erasure, ErasedService, JobItem, TtlLowering)}


def read_names(*classes: type[Entity], extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The stored attributes a read of these entities decodes: their fields, the type attribute and
    `extra` (keys a caller sorts, merges or resumes on). The rest of an item (its index keys, the
    events of its last write) is left undecoded."""
    return frozenset({"type", *extra, *(name for cls in classes for name in cls.model_fields)})




def decode(raw: dict[str, Any] | None) -> Entity | None:
    """The one decoder: a stored item (attribute values) -> its typed entity (None stays None); the
    attributes that are not its fields are not decoded."""
    if raw is None:
        return None
    kind = raw.get("type")
    cls = ENTITIES.get(kind.get("S", "") if kind else "")
    if cls is None:
        raise ValueError(f"item of unknown type {decode_item({'type': kind})['type'] if kind else None!r}")
    return _Construct.of(cls).decode(raw)


def from_plain(item: dict[str, Any] | None) -> Entity | None:
    """A decoded item (plain values) -> its typed entity, by its `type` attribute."""
    if item is None:
        return None
    cls = ENTITIES.get(item.get("type", ""))
    if cls is None:
        raise ValueError(f"item of unknown type {item.get('type')!r}")
    return _Construct.of(cls).build(item)


class _Construct:
    """pydantic's `model_construct` for one entity class, with the work that depends only on the
    class done once: which fields take a default, and which default must be made afresh. Every read
    builds its entities this way (a page builds a hundred), and `model_construct` re-derives that
    for every field of every entity. The result is the same: the same `__dict__` (fields in
    declaration order), fields set, no extra and no private attributes
    (tests/unit/test_items_construct.py compares the two for every entity class)."""

    _plans: ClassVar[dict[type[Entity], _Construct]] = {}

    def __init__(self, cls: type[Entity]):
        if cls.__pydantic_post_init__ or cls.model_config.get("extra") == "allow" or any(
                f.alias or f.validation_alias for f in cls.model_fields.values()):
            raise TypeError(f"{cls.__name__}: model_construct's other paths are not reproduced")
        self.cls = cls
        # (name, how its default is had, the default or what makes it), in declaration order
        self.fields: list[tuple[str, int, Any]] = []
        for name, info in cls.model_fields.items():
            default = info.default
            if info.is_required():
                self.fields.append((name, REQUIRED, None))
            elif info.default_factory is None and isinstance(default, _IMMUTABLE):
                self.fields.append((name, SHARED, default))
            elif info.default_factory is None and type(default) in (dict, list, set) and not default:
                self.fields.append((name, MADE, type(default)))  # pydantic copies an empty one: a new one
            else:
                self.fields.append((name, MADE, lambda info=info, values=None: info.get_default(
                    call_default_factory=True, validated_data=values or {})))
        self.names = frozenset(name for name, _, _ in self.fields)

    @classmethod
    def of(cls, entity: type[Entity]) -> _Construct:
        plan = cls._plans.get(entity)
        if plan is None:
            plan = cls._plans[entity] = cls(entity)
        return plan

    def build(self, item: dict[str, Any]) -> Entity:
        values: dict[str, Any] = {}
        for name, how, default in self.fields:
            if name in item:
                values[name] = item[name]
            elif how is SHARED:
                values[name] = default
            elif how is MADE:
                values[name] = default()
        return self._entity(values, item.keys() & self.names)

    def decode(self, raw: dict[str, Any]) -> Entity:
        """The entity of a stored item (attribute values), decoded field by field: what
        `build(decode_item(raw))` builds, without the intermediate dict of every attribute."""
        return self._entity(decode_fields(raw, self.fields), raw.keys() & self.names)

    def _entity(self, values: dict[str, Any], present: set[str]) -> Entity:
        entity = self.cls.__new__(self.cls)
        object.__setattr__(entity, "__dict__", values)
        object.__setattr__(entity, "__pydantic_fields_set__", present)
        object.__setattr__(entity, "__pydantic_extra__", None)
        object.__setattr__(entity, "__pydantic_private__", None)
        return entity


REQUIRED, SHARED, MADE = 0, 1, 2  # how a field's default is had (lib.store.codec.decode_fields reads them)
_IMMUTABLE = (str, int, float, bool, type(None), tuple, frozenset)
