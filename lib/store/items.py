"""Typed items of the single table: each derives its keys and index keys from lib.store.keys, carries
an entity type attribute (`type`), and is read back by one decoder (`decode`). See docs/DESIGN.md
for the table design and its access patterns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from lib.settings import settings
from lib.status import Status
from lib.store import keys as K
from lib.store.codec import decode_item
from lib.store.concurrency import new_token
from lib.store.entity import Construct, Entity
from lib.store.records import ErasedService, Erasure, IdempotencyRecord, JobItem, TtlLowering

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


# How long the children outlive their service's expiration in the table (lib.store.erasure.FEED_HOLD_MS).
FEED_HOLD_S = 25 * 3600


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
        """TTL for the children: the service's and FEED_HOLD_S more, so that they outlive any end of the
        service by the change feed's hold (its publisher may read them for the end's cascade: see
        lib.store.erasure.FEED_HOLD_MS); when sliding, at least a tenth of the default more, so that
        sliding rarely has to rewrite the children. Reads never show them past the service's own
        expiration (every read of a child checks its service)."""
        margin = FEED_HOLD_S if self.explicit else max(FEED_HOLD_S, settings().default_expiration_seconds // 10)
        return self.ttl(now) + margin


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
    cx: int | None = None  # events of cascades committed by the summary, counted apart from `seq` (lib.store.events)
    act: dict[str, Any] | None = None  # summary of the active children, trusted with `ax` (lib.store.summary)
    ax: bool | None = None
    # When an end was written whose cascade the feed's publisher reads (lib.store.events.cascade_read):
    # the conversation's active children are held from then (lib.store.erasure.held_until); true for
    # an end that took its cascade from the summary (nothing read, nothing held).
    ended_ms: int | bool | None = None
    # Which incarnation of its id this conversation is, when the id may have been used before: an
    # import's run token (an import keeps ids, and one may have been deleted here). Part of the id of
    # every event of the conversation (lib.feed.events.FeedEvent.event_id); None for an id made here.
    inc: str | None = None

    @property
    def events_so_far(self) -> int:
        """Its events so far: the last one's sequence."""
        return self.seq + (self.cx or 0)

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
    return Construct.of(cls).decode(raw)


def from_plain(item: dict[str, Any] | None) -> Entity | None:
    """A decoded item (plain values) -> its typed entity, by its `type` attribute."""
    if item is None:
        return None
    cls = ENTITIES.get(item.get("type", ""))
    if cls is None:
        raise ValueError(f"item of unknown type {item.get('type')!r}")
    return Construct.of(cls).build(item)


