"""Every key of the table, built in one place: table keys, index keys, index names and the codes
inside them. The typed items (lib.store.items) derive their keys from these functions; nothing
else writes a key. See docs/DESIGN.md for the table design.

Every key of tenant data starts with the tenant (`<ContactCenterId>|<GroupId>`, an absent header
being the empty string, which no header value can be), so tenants never share a key. A
conversation (a service, its states, tasks) is one item collection:

    PK = <tenant>#C#<service_id>   SK = #SERVICE | S#<state_id:010> | T#<task_id:010>

so one Query reads a key range of it, and its two local indexes order the children by status
(LSI1) and the tasks by their state (LSI2).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lib.clock import sortable_ms
from lib.settings import settings
from lib.status import Status

SERVICE_SK = "#SERVICE"
LOCK_REF_PREFIX = "#LOCK#"  # sorts before SERVICE_SK: no range of children reaches it
STATE_PREFIX, TASK_PREFIX = "S#", "T#"
TTL_ATTRIBUTE = "expire_at"
# Status codes inside keys (LSI1, GSI2): a conversation's active / completed children and an owner's
# active / completed services.
ACTIVE_CODE, COMPLETED_CODE = "A", "C"
CODES = {Status.ACTIVE: ACTIVE_CODE, Status.COMPLETED: COMPLETED_CODE}
CUSTOMER, ANONYMOUS = "CU", "AN"  # owner kinds of the owner indexes
TIMED = "T"  # the owner partition of GSI6: services that complete by themselves
AUTO_COMPLETE, ERASE, JOB, LOWER = "A", "E", "J", "L"  # kinds of due work (GSI5); LOWER: children's TTL

OWNER_INDEX = "GSI1"  # a customer's / contact key's services, all statuses, by start time
OWNER_STATUS_INDEX = "GSI2"  # the same, active or completed
START_INDEX = "GSI3"  # a tenant's services by start time (sharded): exports, purge
END_INDEX = "GSI4"  # a tenant's completed services by end time (sharded): exports
DUE_INDEX = "GSI5"  # all tenants: services with work due at a time (auto-complete, unfinished deletes)
OWNER_DUE_INDEX = "GSI6"  # an owner's active services that complete by themselves, by deadline
STATUS_INDEX = "LSI1"  # a conversation's states / tasks by status, by id
STATE_TASKS_INDEX = "LSI2"  # the tasks of each state, by state then task
GRANTS_INDEX = OWNER_INDEX  # grants listed under one partition of GSI1 (never a tenant's: no '|')
GRANTS_PK = "ACCESS#GRANTS"

Key = dict[str, str]




def index_shards() -> int:
    """Shards of each tenant's time indexes (GSI3, GSI4): a busy tenant's writes spread over this many
    index partitions, each taking ~1,000 writes a second (INDEX_SHARDS; docs/DESIGN.md, Scale)."""
    return settings().index_shards


def due_shards() -> int:
    """Shards of the due-work index (GSI5), which all tenants share (DUE_SHARDS; docs/DESIGN.md, Scale)."""
    return settings().due_shards


def tenant_key(contact_center: str | None, group: str | None) -> str:
    """Tenant prefix of every key (header values never contain '|' or '#')."""
    return f"{contact_center or ''}|{group or ''}"


def digest(*parts: Any) -> str:
    """A fixed-length key part naming any values (composite keys, idempotency keys)."""
    return hashlib.sha256(json.dumps(list(parts), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:40]


# ---------------------------------------------------------------- conversations


def conversation_pk(tenant: str, service_id: str) -> str:
    return f"{tenant}#C#{service_id}"


def split_conversation_pk(pk: str) -> tuple[str, str]:
    """(tenant, service id) of a conversation's partition key."""
    tenant, service_id = pk.rsplit("#C#", 1)
    return tenant, service_id


def service_key(tenant: str, service_id: str) -> Key:
    return {"PK": conversation_pk(tenant, service_id), "SK": SERVICE_SK}


def child_sk(kind: str, child_id: int) -> str:
    return f"{STATE_PREFIX if kind == 'state' else TASK_PREFIX}{child_id:010d}"


def child_key(tenant: str, service_id: str, kind: str, child_id: int) -> Key:
    """The key of a state or task (kind "state" | "task")."""
    return {"PK": conversation_pk(tenant, service_id), "SK": child_sk(kind, child_id)}


def children_range(kind: str) -> tuple[str, str]:
    """Base-table sort-key range of a conversation's states or tasks."""
    prefix = child_sk(kind, 0)[:2]
    return prefix, prefix + "~"


def status_sk(kind: str, completed: bool, child_id: int) -> str:
    """LSI1 sort key of a state or task: kind, status, id."""
    return f"{kind[0].upper()}#{COMPLETED_CODE if completed else ACTIVE_CODE}#{child_id:010d}"


def status_range(kind: str, status: Status) -> tuple[str, str]:
    """LSI1 key range of a conversation's states or tasks of one status."""
    prefix = f"{kind[0].upper()}#{CODES[status]}#"
    return prefix, prefix + "~"


def state_tasks_sk(state_id: int, task_id: int | None = None) -> str:
    """LSI2 sort key of a task in a state (`B#<state>#<task>`); with no task, the state's prefix."""
    return f"B#{state_id:010d}" + (f"#{task_id:010d}" if task_id is not None else "")


def state_tasks_range(first_state: int, last_state: int | None = None) -> tuple[str, str]:
    """LSI2 key range of the tasks of the states first..last (inclusive)."""
    return state_tasks_sk(first_state) + "#", state_tasks_sk(last_state or first_state) + "#~"


def lock_ref_key(tenant: str, service_id: str, lock_digest: str) -> Key:
    return {"PK": conversation_pk(tenant, service_id), "SK": LOCK_REF_PREFIX + lock_digest}


def lock_digest_of_reference(key: Key) -> str | None:
    """The composite lock digest a conversation's item refers to (None: not a lock reference)."""
    return key["SK"][len(LOCK_REF_PREFIX):] if key["SK"].startswith(LOCK_REF_PREFIX) else None


# ---------------------------------------------------------------- owners and time indexes


def time_sk(ms: int, service_id: str) -> str:
    """Sort key that orders services by a timestamp, then by service id."""
    return f"{sortable_ms(ms)}#{int(service_id):020d}"


def time_bound(ms: int | None) -> str | None:
    """A time-ordered sort key's bound for a moment (the prefix every key at that moment extends)."""
    return sortable_ms(ms) if ms is not None else None


def owner_kind(customer_id: str | None) -> str:
    return CUSTOMER if customer_id is not None else ANONYMOUS


def owner_pk(tenant: str, customer_id: str | None, contact_key: str | None, status: Status | None = None,
             timed: bool = False) -> str:
    """Partition of an owner's services (a customer's, else a contact key's anonymous ones): all
    (GSI1), by status (GSI2), or those that complete by themselves (GSI6, `timed`)."""
    kind = owner_kind(customer_id)
    owner = customer_id if customer_id is not None else (contact_key or "")
    suffix = TIMED if timed else (CODES[status] if status is not None else "")
    return f"{tenant}#{kind}{suffix}#{owner}"


def _shard(service_id: str) -> int:
    return int(service_id) % index_shards()


def start_pk(tenant: str, service_id: str) -> str:
    return f"{tenant}#S#{_shard(service_id)}"


def end_pk(tenant: str, service_id: str) -> str:
    return f"{tenant}#E#{_shard(service_id)}"


def time_index_pk(tenant: str, source: str, shard: int) -> str:
    """A shard of a tenant's time index: source "start" (GSI3) or "end" (GSI4)."""
    return f"{tenant}#{'S' if source == 'start' else 'E'}#{shard}"


def due_pk(kind: str, shard_of: str) -> str:
    """Partition of the due-work index: auto-completions (A), unfinished erasures (E), running jobs (J),
    children's TTL to lower (L), by shard."""
    return f"DUE#{kind}#{int(shard_of) % due_shards()}"


def due_shard_pk(kind: str, shard: int) -> str:
    return f"DUE#{kind}#{shard}"


# ---------------------------------------------------------------- records outside conversations


def lock_key(tenant: str, lock_digest: str) -> Key:
    return {"PK": f"{tenant}#COMPOSITE#{lock_digest}", "SK": "#LOCK"}


def idempotency_key(record_digest: str) -> Key:
    return {"PK": f"IDEMPOTENCY#{record_digest}", "SK": "#IDEMPOTENCY"}


def lowering_key(tenant: str, service_id: str) -> Key:
    """The record of a conversation whose children's TTL is to come down (one per service)."""
    return {"PK": f"{tenant}#LOWER#{service_id}", "SK": "#LOWER"}


def erasure_key(tenant: str, erasure_id: str) -> Key:
    return {"PK": f"{tenant}#ERASE#{erasure_id}", "SK": "#ERASE"}


def job_key(tenant: str, job_id: str) -> Key:
    return {"PK": f"{tenant}#JOB#{job_id}", "SK": "#JOB"}


def split_job_pk(pk: str) -> tuple[str, str]:
    """(tenant, job id) of a job's partition key."""
    tenant, job_id = pk.rsplit("#JOB#", 1)
    return tenant, job_id


def grant_key(principal: str) -> Key:
    return {"PK": f"ACCESS#{principal}", "SK": "#GRANT"}


def key_of(item: dict[str, Any]) -> Key:
    """The table key of a stored item."""
    return {"PK": item["PK"], "SK": item["SK"]}
