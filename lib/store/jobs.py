"""Maintenance jobs (§8): the record of an export or purge that continues outside its request, leased
by one worker at a time, checkpointed as it goes."""

from __future__ import annotations

from lib.store import conditions as C
from lib.store import keys as K
from lib.store import table
from lib.store.concurrency import Write
from lib.store.expressions import Expression, Update
from lib.store.items import JobItem, from_plain
from lib.store.table import ConditionFailed

JOB_DAYS = 7  # a job's record (its status and result) is kept this long


def create_job(job: JobItem) -> None:
    """Record a new job (kept JOB_DAYS)."""
    job.expire_at = job.created_ms // 1000 + JOB_DAYS * 86400
    e = Expression()
    table.put(job.to_item(), C.new_item(e), e)


def load_job(tenant: str, job_id: str) -> JobItem | None:
    job = from_plain(table.get(K.job_key(tenant, job_id)))
    return job if isinstance(job, JobItem) else None


def take_job(tenant: str, job_id: str, w: Write, lease_ms: int) -> JobItem | None:
    """Lease a running job for one worker until `lease_ms` (None: finished, or leased by another)."""
    u = Update(key=K.job_key(tenant, job_id),
               sets={"lease_ms": lease_ms, "op": w.token})
    e = u.expr
    u.conditions += C.exists(e) + C.equals(e, "status", "running") + [f"{e.name('lease_ms')} <= {e.value(w.now)}"]
    try:
        job = from_plain(table.update(u))
    except ConditionFailed:
        return None
    return job if isinstance(job, JobItem) else None


def save_job(job: JobItem, w: Write) -> None:
    """Checkpoint a job this worker holds (conditional on its lease token)."""
    e = Expression()
    previous = job.op
    job.op = w.token
    table.put(job.to_item(), C.exists(e) + C.equals(e, "op", previous), e)
