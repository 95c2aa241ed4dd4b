"""The rule for the least an operation can cost, derived from DynamoDB's API, and what each
operation must touch by the contract (docs/BENCHMARKS.md, "The rule for the minimum").

The rule:
1. Reads: one call per item collection or index partition whose items the answer needs (a GetItem
   or a Query; a Query returns at most 1 MB, so one more call per further MB the answer holds). A
   customer page with embedded states and tasks needs the owner's index partition and the item
   collection of each service on the page.
2. Changes: one call per atomic change (one TransactWriteItems, or one PutItem / UpdateItem /
   DeleteItem for a single item). A check needs no read of its own: it is a condition of the write.
   What the contract lets finish later (erasing a deleted conversation's children: "by a retry or by
   TTL", §2) is not part of the change.
3. Items read: no request reads more items than it returns, plus the items the contract makes it
   check without returning them (the service of a state or task it returns: whether it is live,
   whether its end completed them), plus one item per read call of the minimum (the look-ahead
   that tells a page whether another follows). A request that returns nothing (an end, a delete)
   reads nothing.
A request that follows pages (paging through a list) makes one request per page of `limit` items.
4. Latency (round trips a caller waits, one after the other): the reads a request needs at once are
   one round trip however many there are (they are independent: made in parallel, they wait
   together); a read whose key comes from another read's answer is one more (the services of an
   embedded customer page are named by the owner's page; the conversation of a composite reuse by
   the owner's lookup); each further MB of one Query is one more (it starts at the previous page's
   end); each atomic change is one more (a write conditioned on what it checks needs no read first).

`TOUCHES` says, per operation, what the contract makes it read and change, never how the code does
it; the minimum is computed from it and from the measured answer (its size, its item count).
Operations and growth cases with no entry get no minimum and are reported as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MB = 1_000_000  # DynamoDB's Query page limit is 1 MB of data read


@dataclass(frozen=True)
class Touches:
    reads: tuple[str, ...] = ()  # item collections / index partitions whose items the answer needs
    changes: int = 0  # atomic changes
    checks: int = 0  # items the answer needs without returning them (a child's service)
    read_steps: int = 1  # reads that each need the previous one's answer (1: all at once)


CONVERSATION = "the conversation's item collection"
OWNER_LIST = "the owner's index partition"
OWNER_LOOKUP = "the owner's active services of that type"
IDEMPOTENCY = "the idempotency record"

_create = Touches(changes=1)
_read_conversation = Touches(reads=(CONVERSATION,))
_read_children = Touches(reads=(CONVERSATION,), checks=1)  # states / tasks: with their service

TOUCHES: dict[str, Touches] = {
    "start_service": _create,
    "get_service": _read_conversation,
    "get_service_embedded": _read_conversation,
    "end_service": Touches(changes=1),  # the children complete with it: the same change, or applied on read
    "end_service_with_ttl": Touches(changes=1),  # and the expiration it sets (its lowering recorded with it)
    "delete_service": Touches(changes=1),  # one commit point; the children may be left to TTL (§2)
    "associate_service": Touches(changes=1),
    "put_service": Touches(changes=1),
    "put_service_extension": Touches(changes=1),
    "start_composite_create": _create,  # "no such active service" is a condition of the write
    "start_composite_reuse": Touches(reads=(OWNER_LOOKUP, CONVERSATION), checks=1, read_steps=2),
    "start_state": _create,
    "transition_state": Touches(changes=1),
    "end_state": Touches(changes=1),
    "get_state": _read_children,
    "get_state_embedded": _read_children,
    "put_state_extension": Touches(changes=1),
    "start_task": _create,
    "start_task_in_state": _create,
    "end_task": Touches(changes=1),
    "get_task": _read_children,
    "put_task_extension": Touches(changes=1),
    # Every create with an Idempotency-Key: the record is written with what it creates (one change).
    "start_service_with_idempotency_key": _create,
    "start_state_with_idempotency_key": _create,
    "transition_state_with_idempotency_key": Touches(changes=1),
    "start_task_with_idempotency_key": _create,
    "start_composite_create_with_idempotency_key": _create,
    # A repeat answers the first response again: the record is read.
    "start_service_idempotent_repeat": Touches(reads=(IDEMPOTENCY,)),
}
for _label in ("all", "active", "completed"):
    TOUCHES[f"list_customer_services_{_label}"] = Touches(reads=(OWNER_LIST,))
    TOUCHES[f"list_anonymous_services_{_label}"] = Touches(reads=(OWNER_LIST,))
    TOUCHES[f"list_states_{_label}"] = _read_children
    TOUCHES[f"list_tasks_{_label}"] = _read_children

# Growth cases (bench/growth.py): the same operations on bigger conversations and customers.
GROWTH_TOUCHES: dict[str, Touches] = {
    "get_service": _read_conversation,
    "get_service_embedded": _read_conversation,
    "get_state": _read_children,
    "get_task": _read_children,
    "list_states_first_page": _read_children,
    "list_states_active_first_page": _read_children,
    "list_states_completed_first_page": _read_children,
    "list_states_embedded_first_page": _read_children,
    "list_tasks_first_page": _read_children,
    "list_tasks_active_first_page": _read_children,
    "list_tasks_completed_first_page": _read_children,
    "list_states_paging_all": _read_children,  # per page
    "list_tasks_paging_all": _read_children,  # per page
    "start_composite_reuse": Touches(reads=(OWNER_LOOKUP, CONVERSATION), checks=1, read_steps=2),
    "start_state": _create,
    "start_state_with_idempotency_key": _create,
    "start_task_with_idempotency_key": _create,
    "end_service": Touches(changes=1),
    "put_service_ttl": Touches(changes=1),
    "delete_service": Touches(changes=1),
    "list_customer_services_first_page": Touches(reads=(OWNER_LIST,)),
    "list_customer_services_active_first_page": Touches(reads=(OWNER_LIST,)),
    "list_customer_services_embedded_first_page": Touches(reads=(OWNER_LIST,)),  # + each service's collection
    "list_customer_services_paging_all": Touches(reads=(OWNER_LIST,)),  # per page
}


def embedded_reads(returned_services: int) -> int:
    """An embedded customer page also needs each returned service's collection (its states and
    tasks): one read per service on the page."""
    return returned_services


@dataclass(frozen=True)
class Minimum:
    round_trips: int
    items_read: int  # allowed
    read_calls: int
    explained: str  # how the rule arrived at it
    latency_round_trips: int = 0  # rule 4


def minimum(touches: Touches, returned: int, response_bytes: int, pages: int = 1,
            extra_reads: int = 0) -> Minimum:
    """The rule applied to one operation: `pages` requests (paging through a list), each making the
    reads of `touches` (plus `extra_reads` collections in all) and its changes; one more read call
    per further MB of the answer."""
    pages = max(1, pages)
    reads = len(touches.reads) * pages + extra_reads
    if reads:
        reads += max(0, math.ceil(response_bytes / MB) - pages)  # Query pages of 1 MB
    trips = reads + touches.changes * pages
    parts = []
    if reads:
        parts.append(f"{reads} read{'s' if reads != 1 else ''}")
    if touches.changes:
        parts.append(f"{touches.changes * pages} change{'s' if touches.changes * pages != 1 else ''}")
    allowed = returned + (touches.checks * pages + reads if reads else 0)
    further_mb = max(0, math.ceil(response_bytes / MB) - pages) if reads else 0
    steps = (touches.read_steps if touches.reads else 0) + (1 if extra_reads else 0) + touches.changes
    return Minimum(trips, allowed, reads, " + ".join(parts) or "nothing", steps * pages + further_mb)
