"""Running maintenance (§8): a request runs steps for its budget (MAINTENANCE_BUDGET_MS, and never past
its Lambda's remaining time); what is not done by then continues as a job outside the request
(deployed and in `make run`: a message on the jobs queue, consumed by the same function; without a
queue: a background thread), resuming from its last checkpoint after any interruption.

What survives faults, and how:
* A request answers an error only while nothing has changed. Once a step has committed anything (a
  purge's deletes), the answer is a success: 200 when it finished, else 202 with a job that carries
  on — also when a later step fails, or its hand-over (saving, queueing) fails: a job nothing moves
  on is found by the scheduled maintenance (lib.store.jobs.stalled) and queued again.
* A job step that meets a passing fault (throttling, an internal error, a timeout: lib.store.faults)
  is retried: the worker lets the job go (its last checkpoint stays) and queues it again after a
  pause. A fault that retrying does not cure fails the job, with its reason, after RETRIES tries.
* A purge's progress commits with its deletes (exact counts); an export saves its checkpoint between
  steps and finishes idempotently (lib.rules.runs).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from lib import clock
from lib.clock import format_ms
from lib.rules.runs import RUNS, Run
from lib.settings import settings
from lib.store import faults, jobs, queue
from lib.store.concurrency import Write
from lib.store.records import JobItem

log = logging.getLogger(__name__)
SAVE_EVERY_S = 5.0  # a worker saves an export's checkpoint this often: an interrupted worker loses little
RETRY_DELAY_S = 30  # a job that met a passing fault is queued again after this pause
RETRIES = 5  # tries of a step whose fault is not known to pass, before the job is failed with it


@dataclass
class Outcome:
    """What a maintenance request answers: 200 with the result, or 202 with the job."""

    status: int
    body: dict[str, Any]
    job_id: str | None = None


class JobBusy(Exception):
    """The job is running under another worker's lease: its message must come back later (the
    holder may die before it finishes; its lease then ends and this message's worker takes over)."""


class Retry(Exception):
    """The job met a passing fault: it must be tried again later (its checkpoint is safe)."""


# ---------------------------------------------------------------- in a request


def run_request(run: Run, remaining_ms: int | None) -> Outcome:
    """Run steps for the request's budget: 200 when done; otherwise (time up, or a fault once
    something was committed) 202 with the job that carries on."""
    budget = settings().maintenance_budget_ms
    if remaining_ms is not None:
        budget = min(budget, remaining_ms - 5_000)
    now = clock.now_ms()
    w, job_id = Write(run.tenant, now), secrets.token_hex(12)
    lease_ms = now + max(budget, 0) + 5_000  # held by this request; a worker may take over after it
    deadline = time.monotonic() + budget / 1000
    try:
        while not run.step(w, job_id, lease_ms):
            if time.monotonic() >= deadline:
                break
        else:
            return Outcome(200, _finish(run, w))
    except Exception:  # (an export that closed a file is committed: its job finishes the others)
        if not run.committed and run.job is None:
            run.abandon()
            raise  # nothing changed: the error is the answer
        log.warning("maintenance %s stopped after committing; it continues as job %s", run.kind, job_id,
                    exc_info=True)
        return _hand_over(run, w, job_id, saved=False)
    return _hand_over(run, w, job_id, saved=True)


def _hand_over(run: Run, w: Write, job_id: str, saved: bool) -> Outcome:
    """The request stops: the job (created now if no step created it) is let go and queued. Past the
    commit point nothing here may fail the request: a job not saved or not queued is found by the
    schedule."""
    if run.job is None:  # an export (a purge creates its job with its first commit)
        try:
            job = run.new_job(job_id, w.now, lease_ms=0)  # (an export's checkpoint saves its tails)
            jobs.create_job(job, w)
        except Exception:
            run.abandon()
            raise  # nothing was promised yet: the error is the answer
        run.job = job
    elif saved:
        _save(run, w, release=True, quiet=True)
    else:
        _release(run.job, w)
    try:
        enqueue(run.job)
    except Exception:
        log.warning("job %s not queued; the scheduled maintenance will queue it", run.job.job_id, exc_info=True)
    return Outcome(202, job_view(run.job), run.job.job_id)


def _finish(run: Run, w: Write) -> dict[str, Any]:
    """Every step is done: finish (an export closes its files, after saving that only this is left)
    and record the result on the job, if there is one."""
    job = run.job
    if job is not None and job.status == "running" and not run.finishing and hasattr(run, "start_finishing"):
        job.checkpoint, job.counts, job.updated_ms = run.start_finishing(), run.counts(), clock.now_ms()
        jobs.save_job(job, w)
    result = run.finish()
    if job is not None and job.status == "running":
        job.status, job.result, job.checkpoint = "succeeded", result, {}
        job.counts, job.updated_ms = run.counts(), clock.now_ms()
        jobs.save_job(job, w, release=True)
    _ended(run)
    return result


def _ended(run: Run) -> None:
    try:
        run.ended()
    except Exception:  # nothing reads them; the bucket's lifecycle rule removes what is left
        log.warning("maintenance %s ended; its checkpoint files were not removed", run.kind, exc_info=True)


def _save(run: Run, w: Write, release: bool = False, quiet: bool = False) -> None:
    job = run.job
    assert job is not None
    job.checkpoint, job.counts, job.updated_ms = run.checkpoint(), run.counts(), clock.now_ms()
    job.attempts = 0  # its steps move on
    try:
        jobs.save_job(job, w, release=release)
    except Exception:
        if not quiet:
            raise
        log.warning("job %s not saved; it resumes from its last checkpoint", job.job_id, exc_info=True)


def _release(job: JobItem, w: Write) -> bool:
    """Let the job go as last saved (a step that failed half-way leaves nothing worth saving)."""
    try:
        jobs.save_job(job, w, release=True)
        return True
    except Exception:
        log.warning("job %s not released; its lease ends by itself", job.job_id, exc_info=True)
        return False


# ---------------------------------------------------------------- outside the request


def enqueue(job: JobItem, delay_s: int = 0) -> None:
    """Let the job continue outside this request: a message on the jobs queue (deployed, and the local
    run's emulated queue), else a background thread of this process."""
    if queue.available():
        queue.send_job(job.tenant, job.job_id, delay_s)
        return

    def work() -> None:
        time.sleep(delay_s)
        while True:
            try:
                if continue_job(job.tenant, job.job_id, None):
                    return
            except (JobBusy, Retry):
                time.sleep(1.0)  # held by another worker, or a passing fault: try again shortly

    threading.Thread(target=work, daemon=True, name=f"job-{job.job_id}").start()


def continue_job_message(body: str, remaining_ms: int | None) -> None:
    """A job message from the queue: work on the job; one not finished (time up, or a passing fault)
    is queued again. Raises JobBusy when another worker holds it, and whatever stops the queueing
    (the message then comes back by itself)."""
    tenant, job_id = queue.job_of(body)
    try:
        finished = continue_job(tenant, job_id, remaining_ms)
        delay = 0
    except Retry:
        finished, delay = False, RETRY_DELAY_S
    if not finished:
        job = jobs.load_job(tenant, job_id)
        if job is not None and job.status == "running":
            enqueue(job, delay)


def continue_job(tenant: str, job_id: str, remaining_ms: int | None) -> bool:
    """Work on a job until it is done or the time is up. True: finished (or gone, or taken over by
    another worker). False: it must continue (saved and let go, so the next worker takes it at once).
    Raises JobBusy when another worker holds its lease, Retry after a passing fault."""
    budget_s = max(((remaining_ms - 15_000) / 1000) if remaining_ms is not None else 600.0, 0.0)
    now = clock.now_ms()
    w = Write(tenant, now)
    job = jobs.take_job(tenant, job_id, w, lease_ms=now + int(budget_s * 1000) + jobs.LEASE_MARGIN_MS)
    if job is None:
        current = jobs.load_job(tenant, job_id)
        if current is not None and current.status == "running":
            raise JobBusy(f"job {job_id} is leased by another worker until {format_ms(current.lease_ms)}")
        return True
    run = RUNS[job.kind](tenant, job.params, job.checkpoint)
    run.job = job
    try:
        return _work(run, w, budget_s)
    except jobs.LeaseLost:
        log.info("job %s was taken over by another worker", job_id)
        return True
    except Exception as fault:
        return _failed_step(run, w, fault)


def _work(run: Run, w: Write, budget_s: float) -> bool:
    assert run.job is not None
    deadline, saved_at = time.monotonic() + budget_s, time.monotonic()
    if not run.finishing:
        while not run.step(w, run.job.job_id, run.job.lease_ms):
            if time.monotonic() >= deadline:
                _save(run, w, release=True)
                return False
            if run.kind != "purge" and time.monotonic() - saved_at >= SAVE_EVERY_S:
                _save(run, w)  # a purge's steps save their progress themselves
                saved_at = time.monotonic()
    _finish(run, w)
    return True


def _failed_step(run: Run, w: Write, fault: Exception) -> bool:
    """A step failed. A passing fault: let the job go as last saved, and try again later. Another:
    count it; after RETRIES in a row the job fails with its reason."""
    job = run.job
    assert job is not None
    if job.status == "succeeded" and _release(job, w):
        # only the final save failed: saved again as it is (the work is done and its result known)
        log.warning("job %s: its end was saved again after a fault", job.job_id, exc_info=True)
        _ended(run)
        return True
    if faults.transient(fault):
        log.warning("job %s met a passing fault; it is retried", job.job_id, exc_info=True)
        _release(job, w)
        raise Retry(str(fault)) from fault
    job.attempts += 1
    if job.attempts < RETRIES:
        log.warning("job %s step failed (%d of %d tries)", job.job_id, job.attempts, RETRIES, exc_info=True)
        _release(job, w)
        raise Retry(str(fault)) from fault
    log.error("job %s failed", job.job_id, exc_info=True)
    job.status, job.error, job.updated_ms = "failed", f"{type(fault).__name__}: {faults.reason(fault)}", clock.now_ms()
    try:
        jobs.save_job(job, w, release=True)
    except Exception:
        log.warning("job %s: its failure was not saved", job.job_id, exc_info=True)
    return True


def job_view(job: JobItem) -> dict[str, Any]:
    view: dict[str, Any] = {"job_id": job.job_id, "kind": job.kind, "status": job.status, "counts": job.counts,
                            "created": format_ms(job.created_ms), "updated": format_ms(job.updated_ms)}
    if job.result is not None:
        view["result"] = job.result
    if job.error:
        view["error"] = job.error
    return view


def requeue_stalled(now: int) -> int:
    """The scheduled maintenance: queue again every running job nothing has moved on (never queued,
    its worker gone, its messages lost). Returns how many."""
    stalled = jobs.stalled(now)
    for tenant, job_id in stalled:
        job = jobs.load_job(tenant, job_id)
        if job is None or job.status != "running" or job.lease_ms > now:
            continue
        enqueue(job)
        jobs.defer_check(tenant, job_id, now)
    return len(stalled)
