"""Reads of conversations with the children a read embeds (§5 `active_states` ... `completed_tasks`),
and whole conversations (the export stream with content, export files).

A conversation is one item collection, so what a read embeds lies in one or two key ranges of it:

* every status of one kind, or of both: one range of the base table (`S#…`, `T#…`, adjacent), and
  the service item sorts just before them (`#SERVICE`), so a single read can start at the service;
  the single read of a conversation (read_conversation) reads both kinds as two ranges at once
  instead, each with its own 1 MB page: one Query through both would be one call, but past 1 MB of
  stored items (mostly attached data a reply leaves out) a second page, asked after the first;
* one status of one kind, while the service is active: one range of the status index (LSI1);
* one status of each kind (or one status of one kind and every status of the other): two ranges,
  unless the conversation is small (the service item counts its children), when one Query of both
  kinds costs less than two (a read unit holds 4 KB) and reads at most SMALL_CONVERSATION more items;
* on a page, a small conversation's children are read by key instead (see children_of_services).

A completed service shows every child completed (read-time cascade: lib.rules.conversation), so for
it an active array is empty and a completed one is the whole base range; while a big state end is in
flight (`cascading`), the base range too. Every conversation of a page is read at once
(lib.store.concurrency.parallel, at most IN_FLIGHT Queries in flight).

Memory: each Query returns at most 1 MB (DynamoDB's page), each BatchGetItem at most 100 items
(of ≤ 400 KB; DynamoDB stops at 16 MB). A conversation whose children need more
pages is read on page by page only while their views (`weigh`, from lib.rules) stay within `limit`
(the reply's 5 MB), counted over all its ranges (Budget): past it the read stops and the
conversation is marked not whole (it cannot be shown: the single read answers 413, a page ends
before it). So a conversation holds at most about `limit` of views plus one page per range.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lib.status import Status
from lib.store import keys as K
from lib.store import table
from lib.store.codec import decode_item
from lib.store.concurrency import parallel
from lib.store.expressions import Query
from lib.store.items import Child, ServiceItem, from_plain
from lib.store.services import live_service

# Children ever started (state_seq + task_seq) up to which one Query of both kinds replaces two.
SMALL_CONVERSATION = 16

Wanted = dict[str, Status | None]  # kind ("state" | "task") -> the status embedded, None for both
Weigh = Callable[[ServiceItem, list[Child]], int]  # bytes the views of these children take in a reply


@dataclass(frozen=True)
class Range:
    """A key range of a conversation: of the base table (index None) or of the status index."""

    low: str
    high: str
    index: str | None = None

    def query(self, pk: str) -> Query:
        return Query(pk, index=self.index, sk_from=self.low, sk_to=self.high, consistent=True)


def _kind_range(kind: str) -> Range:
    return Range(*K.children_range(kind))


BOTH_KINDS = Range(K.children_range("state")[0], K.children_range("task")[1])  # S#… then T#…


def ranges(wanted: Wanted, done: bool, cascading: bool, small: bool) -> list[Range]:
    """The ranges that hold exactly the children `wanted` of a service that is completed (`done`)
    or not, with a state end in flight (`cascading`) or not; one range of both kinds when both are
    wanted whole (one call where two would read the same items: the single read of a conversation
    splits them itself, read_conversation), or when two would be needed and the conversation is
    `small`."""
    base, by_status = [], []
    for kind in ("state", "task"):
        if kind not in wanted:
            continue
        status = wanted[kind]
        if status == Status.ACTIVE and done:
            continue  # a completed service has no active child
        if status is None or done or cascading:
            base.append(kind)
        else:
            by_status.append(Range(*K.status_range(kind, status), index=K.STATUS_INDEX))
    if len(base) == 2 or (len(base) + len(by_status) == 2 and small):
        return [BOTH_KINDS]
    return [_kind_range(kind) for kind in base] + by_status


@dataclass
class Budget:
    """What the views of one conversation's children may weigh in a reply (`limit` bytes, by `weigh`;
    None: no bound), shared by the readings of its ranges, which run at once."""

    weigh: Weigh | None = None
    limit: int | None = None
    used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spend(self, service: ServiceItem, items: list[dict[str, Any]]) -> bool:
        """Count the views of the children among `items`; whether every view counted still fits."""
        if self.weigh is None or self.limit is None:
            return True
        cost = self.weigh(service, _children(items))
        with self.lock:
            self.used += cost
            return self.used <= self.limit


@dataclass
class Reading:
    """One range of one conversation, read a page (≤ 1 MB) at a time."""

    pk: str
    range: Range
    items: list[dict[str, Any]] = field(default_factory=list)
    start: dict[str, Any] | None = None  # the next page's ExclusiveStartKey (None: done, once read)
    pages: int = 0
    whole: bool = True  # False: stopped because its views would not fit the reply

    def page(self) -> None:
        request = self.range.query(self.pk).request()
        if self.start is not None:
            request["ExclusiveStartKey"] = self.start  # as DynamoDB returned it
        response = table.call("query", **request)
        self.items += [decode_item(raw) for raw in response.get("Items", [])]
        self.start = response.get("LastEvaluatedKey")
        self.pages += 1

    @property
    def more(self) -> bool:
        return self.pages == 0 or self.start is not None

    def rest(self, service: ServiceItem, budget: Budget) -> Reading:
        """Every page left; before each, the children read so far are weighed against `budget`
        (shared with the conversation's other readings), and the read stops once it is spent."""
        weighed = 0
        while self.more:
            if self.pages:
                fits = budget.spend(service, self.items[weighed:])
                weighed = len(self.items)
                if not fits:
                    self.whole = False
                    return self
            self.page()
        return self

    def children(self) -> list[Child]:
        return _children(self.items)


def _children(items: list[dict[str, Any]]) -> list[Child]:
    return [c for c in (from_plain(i) for i in items) if isinstance(c, Child)]


@dataclass
class Embedded:
    """A service's embedded children, and whether they were read whole (False: too big to show)."""

    children: list[Child]
    whole: bool = True


def _gather(readings: list[Reading]) -> Embedded:
    return Embedded([c for r in readings for c in r.children()], all(r.whole for r in readings))


def children_of_services(services: list[ServiceItem], wanted: Wanted, now: int, weigh: Weigh | None = None,
                         limit: int | None = None) -> list[Embedded]:
    """The embedded children of each service of a page (services read already), every read at once.

    A small conversation's children are read by key: its service item counts them (ids run from 1
    without gaps), so every small conversation of the page shares BatchGetItem calls of 100 keys
    instead of one Query each; a call costs more CPU than the items it returns, and a page of 100
    conversations would otherwise make 100 calls. A bigger one is read by Query (its ranges)."""
    plans: list[tuple[list[dict[str, str]], list[Reading]]] = []  # per service: keys, or ranges
    for service in services:
        done = service.completed_at(now) is not None
        kinds = [kind for kind, status in wanted.items() if not (status == Status.ACTIVE and done)]
        seqs = {kind: service.state_seq if kind == "state" else service.task_seq for kind in kinds}
        if sum(seqs.values()) <= SMALL_CONVERSATION:
            plans.append(([K.child_key(service.tenant, service.service_id, kind, n)
                           for kind, seq in seqs.items() for n in range(1, seq + 1)], []))
        else:
            small = service.state_seq + service.task_seq <= SMALL_CONVERSATION
            plans.append(([], [Reading(service.pk, r) for r in ranges(wanted, done, bool(service.cascading), small)]))
    keys = [key for plan_keys, _ in plans for key in plan_keys]
    chunks = [keys[start:start + table.BATCH_GET_LIMIT] for start in range(0, len(keys), table.BATCH_GET_LIMIT)]
    readings = [(service, r, budget) for service, (_, plan) in zip(services, plans)
                for budget in (Budget(weigh, limit),) for r in plan]
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for got in parallel(*[lambda chunk=chunk: table.get_many(chunk) for chunk in chunks],
                        *[lambda s=s, r=r, b=b: r.rest(s, b) for s, r, b in readings])[:len(chunks)]:
        found.update(got)
    return [Embedded(_children([found[k] for k in ((key["PK"], key["SK"]) for key in plan_keys) if k in found]))
            if not plan else _gather(plan) for plan_keys, plan in plans]


def read_conversation(tenant: str, service_id: str, wanted: Wanted, now: int, weigh: Weigh | None = None,
                      limit: int | None = None) -> tuple[ServiceItem, Embedded]:
    """A live service (404 otherwise) with the children `wanted`:

    * every status of each kind embedded, states among them: one Query from the service item
      through the states (the service sorts just before them); with the tasks, their range is read
      at the same time (one more call, in the same round trip): each kind then has its own 1 MB
      page, so a conversation whose stored items pass 1 MB (mostly the children's attached data,
      which the reply leaves out) is still read in one round trip while neither kind's stored
      items pass it. A service that turns out absent or expired (404) has had its tasks' first
      page read in vain, as the read of the tasks alone (below) has;
    * every status of the tasks only: the service (GetItem) and the tasks' range, at once;
    * one status of a kind: which range holds it depends on the service (completed: none active,
      every child completed), so that range is read once the service is (a guess read first would
      read a whole range in vain whenever the service turned out completed); the ranges that do not
      depend on it are read with the service."""
    pk = K.conversation_pk(tenant, service_id)
    if "state" in wanted and all(status is None for status in wanted.values()):
        plan = [Reading(pk, Range(K.SERVICE_SK, _kind_range("state").high))]
        plan += [Reading(pk, _kind_range("task"))] if "task" in wanted else []
        parallel(*[r.page for r in plan])
        head = plan[0].items
        service = live_service(head[0] if head and head[0]["SK"] == K.SERVICE_SK else None, service_id, now)
        _rest(service, plan, Budget(weigh, limit))
        return service, _gather(plan)
    independent = [Reading(pk, _kind_range(kind)) for kind, status in wanted.items() if status is None]
    raw, *_ = parallel(lambda: table.get(K.service_key(tenant, service_id)), *[r.page for r in independent])
    service = live_service(raw, service_id, now)
    needed = ranges(wanted, service.completed_at(now) is not None, bool(service.cascading), small=False)
    kept = {r.range: r for r in independent}
    plan = [kept.get(r) or Reading(pk, r) for r in needed]
    _rest(service, plan, Budget(weigh, limit))
    return service, _gather(plan)


def _rest(service: ServiceItem, plan: list[Reading], budget: Budget) -> None:
    """The pages left of each reading of one conversation, at once (none: nothing to do)."""
    parallel(*[lambda r=r: r.rest(service, budget) for r in plan if r.more])


def whole_conversations(tenant: str, service_ids: list[str], weigh: Weigh | None = None,
                        limit: int | None = None) -> list[tuple[ServiceItem, Embedded]]:
    """Whole conversations (service, states, tasks) that exist, in the order asked: one Query each from
    the service item through the tasks, every one at once (with `weigh`, a conversation's read stops
    once its children weigh more than `limit`: not whole)."""
    readings = [Reading(K.conversation_pk(tenant, sid), Range(K.SERVICE_SK, BOTH_KINDS.high)) for sid in service_ids]
    parallel(*[lambda r=r: _whole(r, weigh, limit) for r in readings])
    found = []
    for reading in readings:
        service = _service_of(reading)
        if service is not None:
            found.append((service, _gather([reading])))
    return found


def _service_of(reading: Reading) -> ServiceItem | None:
    first = from_plain(reading.items[0]) if reading.items else None
    return first if isinstance(first, ServiceItem) else None


def _whole(reading: Reading, weigh: Weigh | None, limit: int | None) -> None:
    reading.page()
    service = _service_of(reading)
    if service is not None:
        reading.rest(service, Budget(weigh, limit))
