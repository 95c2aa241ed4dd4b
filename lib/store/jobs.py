"""Maintenance jobs (§8): the record of an export or purge that continues outside its request. One
worker at a time holds a job (its lease: `lease_ms`, and its token in `op`); every save is
conditional on holding it. A running job is also due work (GSI5, at `check_ms`): one that nothing
moves on (never queued, its worker gone, its messages lost) is found by the scheduled maintenance."""

from __future__ import annotations

from typing import Any

from lib.store import conditions as C
from lib.store import keys as K
from lib.store import table
from lib.store.concurrency import Write, new_token
from lib.store.expressions import Expression, Update
from lib.store.items import from_plain
from lib.store.records import JobItem
from lib.store.table import ConditionFailed

JOB_DAYS = 7  # a job's record (its status and result) is kept this long
LEASE_MARGIN_MS = 30_000  # past its worker's budget, before another may take it
STALL_MS = 10 * 60_000  # a released job that no worker took within this is queued again by the schedule


class LeaseLost(Exception):
    """This worker no longer holds the job (its lease ended and another took it, or it finished)."""


def create_job(job: JobItem, w: Write) -> None:
    """Record a new job, held by the request that creates it (kept JOB_DAYS). A lost reply is
    recognised by the token."""
    _prepare(job, w)
    e = Expression()
    table.confirmed(lambda: table.put(job.to_item(), C.new_item(e), e), job.key(), w.token)


def create_action(job: JobItem, w: Write) -> dict[str, Any]:
    """The same, as an action of the transaction that commits the job's first step."""
    _prepare(job, w)
    e = Expression()
    return table.tx_put(job.to_item(), C.new_item(e), e)


def _prepare(job: JobItem, w: Write) -> None:
    job.op = w.token
    job.expire_at = job.created_ms // 1000 + JOB_DAYS * 86400
    job.check_ms = max(job.lease_ms + LEASE_MARGIN_MS, w.now + STALL_MS)


def load_job(tenant: str, job_id: str) -> JobItem | None:
    job = from_plain(table.get(K.job_key(tenant, job_id)))
    return job if isinstance(job, JobItem) else None


def take_job(tenant: str, job_id: str, w: Write, lease_ms: int) -> JobItem | None:
    """Lease a running job for this worker until `lease_ms` (None: finished, gone, or leased by another)."""
    u = Update(key=K.job_key(tenant, job_id),
               sets={"lease_ms": lease_ms, "op": w.token, "GSI5SK": lease_ms + LEASE_MARGIN_MS,
                     "check_ms": lease_ms + LEASE_MARGIN_MS})
    e = u.expr
    u.conditions += C.exists(e) + C.equals(e, "status", "running") + [f"{e.name('lease_ms')} <= {e.value(w.now)}"]
    try:
        job = from_plain(table.update(u, token=w.token))
    except ConditionFailed as failed:
        if (failed.old or {}).get("op") == w.token:  # our own lease, applied before its reply was lost
            job = from_plain(failed.old)
            return job if isinstance(job, JobItem) else None
        return None
    return job if isinstance(job, JobItem) else None


def save_job(job: JobItem, w: Write, release: bool = False) -> None:
    """Save a job this worker holds (conditional on its token); `release` lets the next worker take it
    at once. Raises LeaseLost when the job is no longer this worker's."""
    if release:
        job.lease_ms = 0
    job.op, job.saved = w.token, new_token()  # a worker saves a job many times under one lease
    job.check_ms = job.lease_ms + LEASE_MARGIN_MS if job.lease_ms else job.updated_ms + STALL_MS
    e = Expression()
    try:
        table.confirmed(lambda: table.put(job.to_item(), C.exists(e) + C.equals(e, "op", w.token), e), job.key(),
                        job.saved, mark="saved")
    except ConditionFailed:
        raise LeaseLost(f"job {job.job_id} is no longer held by this worker") from None


def progress_action(job: JobItem, w: Write) -> dict[str, Any]:
    """A transaction action saving the job (its counts and checkpoint, or its end) together with the
    step's own writes, so a job's progress and its effects commit at once (exact counts on resume)."""
    job.op = w.token
    job.check_ms = job.lease_ms + LEASE_MARGIN_MS if job.lease_ms else job.updated_ms + STALL_MS
    e = Expression()
    return table.tx_put(job.to_item(), C.exists(e) + C.equals(e, "op", w.token), e)


def stalled(now: int, want: int = 25) -> list[tuple[str, str]]:
    """(tenant, job id) of running jobs that nothing has moved on by now (all tenants, GSI5)."""
    from lib.store.due import due  # due work of every kind is read the same way

    return [K.split_job_pk(row["PK"]) for row in due(K.JOB, now, want)]


def defer_check(tenant: str, job_id: str, now: int) -> None:
    """The schedule queued a stalled job again: look at it once more after STALL_MS if it still does
    not move (conditional: only while nobody holds it)."""
    u = Update(key=K.job_key(tenant, job_id), sets={"GSI5SK": now + STALL_MS, "check_ms": now + STALL_MS})
    e = u.expr
    u.conditions += C.exists(e) + C.equals(e, "status", "running") + [f"{e.name('lease_ms')} <= {e.value(now)}"]
    try:
        table.update(u)
    except ConditionFailed:
        pass  # taken or finished meanwhile
