"""Maintenance (§8) and the recording of auto-completions (§7): the export stream, export files,
purge, and the jobs that carry an export or a purge past one request.

Every operation is a run of small steps (a page of at most 100 services). A request runs steps for
its budget (MAINTENANCE_BUDGET_MS, and never past its Lambda's remaining time); what is not done by
then becomes a job: its checkpoint is saved, the request answers 202 with the job's Location, and
the job continues outside the request (deployed: a message on the jobs queue, consumed by the same
function; locally without a queue: a background thread), resuming from its last checkpoint after
any interruption.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from lib import clock, paging
from lib.clock import format_ms, parse_timestamp
from lib.errors import NotFound, ValidationError
from lib.rules.conversation import Conversation, Selection, fill_page
from lib.rules.services import parse_types, time_window
from lib.settings import settings
from lib.store import due, erasure, jobs, queue, windows
from lib.store.concurrency import Write
from lib.store.files import ExportFile
from lib.store.items import Child, JobItem, ServiceItem, StateItem

log = logging.getLogger(__name__)
STEP = 100  # services a step handles
KINDS = ("services", "states", "tasks")
EVERYTHING = Selection(active_states=True, completed_states=True, active_tasks=True, completed_tasks=True,
                       own={"*"}, state={"*"}, task={"*"})
ATTACHED = Selection(own={"*"})


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Filters:
    """The export filters of §8, checked: a window [low, high), the events, the state filter."""

    low: int
    high: int
    events: str
    content: bool
    state: str
    open_end: bool = False  # no time_to: the window ends "now", wherever a later page reads it
    types: list[Any] | None = None  # service_types (§5), each as sent and, when numeric, as a number
    started_low: int | None = None  # started_from (§5), inclusive
    started_high: int | None = None  # started_to (§5), exclusive

    @classmethod
    def parse(cls, time_from: str, time_to: str | None, filter_events: str, export_content: bool,
              filter_state: str | None, now: int, files: bool = False, service_types: list[str] | None = None,
              started_from: str | None = None, started_to: str | None = None) -> Filters:
        low = parse_timestamp(time_from, "time_from")
        high = parse_timestamp(time_to, "time_to") if time_to is not None else now
        if low > high:
            raise ValidationError("time_from: the window starts after time_to")
        if filter_state is not None and not export_content and not files:
            raise ValidationError("filter_state: only with export_content=true")
        started_low, started_high = time_window(started_from, started_to)
        return cls(low, high, filter_events, export_content or files, filter_state or "any", time_to is None,
                   parse_types(service_types, "service_types") or None, started_low, started_high)

    @property
    def selects(self) -> windows.Select:
        """What the window Queries keep besides the event window (filters on projected attributes)."""
        return windows.Select(self.types, self.started_low, self.started_high)

    def keeps(self, service: ServiceItem, now: int) -> bool:
        done = service.completed_at(now) is not None
        return self.state == "any" or (self.state == "inactive") == done

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


# ---------------------------------------------------------------- the export stream


def stream(tenant: str, filters: Filters, limit: int, page_token: str | None) -> tuple[list[Any], str | None]:
    """One page of the export stream: service ids, or whole conversations (§8)."""
    now = clock.now_ms()
    scope = paging.fingerprint(tenant, "stream", {**filters.as_dict(), "high": None if filters.open_end else filters.high})
    cursor = paging.decode(page_token, scope)
    found, rest = windows.window(tenant, filters.events, filters.low, filters.high, now, cursor, limit,
                                filters.selects)
    if not filters.content:
        return [service_id for service_id, _ in found], (paging.encode(rest, scope) if rest else None)
    by_id = {s.service_id: (s, c) for s, c in windows.conversations(tenant, [sid for sid, _ in found])}
    kept = [(sid, after) for sid, after in found if sid in by_id and filters.keeps(by_id[sid][0], now)]
    views, cut = fill_page(kept, lambda entry: _whole(*by_id[entry[0]], now),
                           lambda entry: f"GET /services/{entry[0]}/states (or /tasks)")
    if cut:
        rest = kept[len(views) - 1][1]  # right after the last one shown: the rest on the next page
    return views, (paging.encode(rest, scope) if rest else None)


def _whole(service: ServiceItem, children: list[Child], now: int) -> dict[str, Any]:
    return Conversation(service, now).add(children).service_view(EVERYTHING)


# ---------------------------------------------------------------- runs: export files and purge


class Run:
    """A maintenance operation as steps, resumable from `state` (a job's checkpoint)."""

    kind = ""

    def __init__(self, tenant: str, params: dict[str, Any], state: dict[str, Any] | None = None):
        self.tenant, self.params = tenant, params
        self.state: dict[str, Any] = dict(state or {})

    def step(self) -> bool:
        """Do one step; True when nothing is left."""
        raise NotImplementedError

    def checkpoint(self) -> dict[str, Any]:
        return dict(self.state)

    def counts(self) -> dict[str, int]:
        return dict(self.state.get("counts", {}))

    def result(self) -> dict[str, Any]:
        raise NotImplementedError


CSV_COLUMNS = {
    "services": ["service_id", "service_type", "customer_id", "contact_key", "est_duration", "started", "completed",
                 "duration", "disposition", "disposition_desc", "expiration_time", "started_event",
                 "completed_event", "attached_data"],
    "states": ["service_id", "state_id", "state_type", "previous_state_id", "est_duration", "started", "completed",
               "duration", "disposition", "disposition_desc", "started_event", "completed_event", "attached_data"],
    "tasks": ["service_id", "task_id", "task_type", "state_id", "est_duration", "started", "completed", "duration",
              "disposition", "disposition_desc", "started_event", "completed_event", "attached_data"],
}


def file_names(at_ms: int, fmt: str) -> dict[str, str]:
    """`export<yyyyMMdd>_<HHmmss>_<SSS>_<kind>.<jsonl|csv>` (§8), at the request's time (UTC)."""
    stamp = format_ms(at_ms)  # 2026-11-27T21:07:00.000Z
    prefix = f"export{stamp[0:4]}{stamp[5:7]}{stamp[8:10]}_{stamp[11:13]}{stamp[14:16]}{stamp[17:19]}_{stamp[20:23]}"
    return {kind: f"{prefix}_{kind}.{'csv' if fmt == 'csv' else 'jsonl'}" for kind in KINDS}


def csv_row(kind: str, view: dict[str, Any], ext: dict[str, str]) -> str:
    """One CSV line: the columns of the kind; events and attached data as JSON text (documented).
    `ext` is the record's own attached data (key -> JSON text as sent): the attached_data column is
    built from it, never by telling attached keys from field names in the view (an attached key may
    be named like a column)."""
    started, completed = view.get("started") or {}, view.get("completed") or {}
    fields = {k: v for k, v in view.items() if k not in ext or k in ("started", "completed")}
    attached = "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{v}" for k, v in ext.items()) + "}"
    values = {**fields, "started": started.get("timestamp"), "completed": completed.get("timestamp"),
              "started_event": json.dumps(started, ensure_ascii=False),
              "completed_event": json.dumps(completed, ensure_ascii=False) if completed else "",
              "attached_data": attached}
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(["" if values.get(c) is None else values[c]
                                                    for c in CSV_COLUMNS[kind]])
    return line.getvalue()


class ExportRun(Run):
    """Export files: one each for services, states and tasks, written as conversations are read."""

    kind = "export"

    def __init__(self, tenant: str, params: dict[str, Any], state: dict[str, Any] | None = None):
        super().__init__(tenant, params, state)
        self.filters = Filters(**params["filters"])
        self.fmt = params["format"]
        self.state.setdefault("names", file_names(params["at_ms"], self.fmt))
        self.state.setdefault("counts", {kind: 0 for kind in KINDS})
        files = self.state.get("files") or {}
        self.files = {kind: ExportFile(self.state["names"][kind], files.get(kind)) for kind in KINDS}
        if "files" not in self.state and self.fmt == "csv":
            for kind in KINDS:
                self.files[kind].write(",".join(CSV_COLUMNS[kind]) + "\n")

    def step(self) -> bool:
        now = clock.now_ms()
        found, rest = windows.window(self.tenant, self.filters.events, self.filters.low, self.filters.high, now,
                                    self.state.get("cursor"), STEP, self.filters.selects)
        for service, children in windows.conversations(self.tenant, [sid for sid, _ in found]):
            if self.filters.keeps(service, now):
                self._write(service, children, now)
        self.state["cursor"] = rest
        return rest is None

    def _write(self, service: ServiceItem, children: list[Child], now: int) -> None:
        conversation = Conversation(service, now).add(children)
        records = [("services", conversation.service_view(ATTACHED), service.ext)]
        records += [("states" if isinstance(c, StateItem) else "tasks", conversation.view(c, ATTACHED), c.ext)
                    for c in sorted(children, key=lambda c: (c.KIND, c.child_id))]
        for kind, view, ext in records:
            line = csv_row(kind, view, ext) if self.fmt == "csv" else json.dumps(view, ensure_ascii=False) + "\n"
            self.files[kind].write(line)
            self.state["counts"][kind] += 1

    def checkpoint(self) -> dict[str, Any]:
        self.state["files"] = {kind: f.checkpoint() for kind, f in self.files.items()}
        return dict(self.state)

    def result(self) -> dict[str, Any]:
        for f in self.files.values():
            f.close()
        return {"created": [self.state["names"][kind] for kind in KINDS]}


class PurgeRun(Run):
    """Purge (§8): matching conversations deleted whole, 99 service items a transaction, then their
    other items 25 a request."""

    kind = "purge"

    def step(self) -> bool:
        now = clock.now_ms()
        operation, limit_ms = self.params["operation"], self.params["limit_ms"]
        found, rest = windows.purge_candidates(self.tenant, operation, limit_ms, now, self.state.get("cursor"),
                                              erasure.ERASURE_BATCH)
        w = Write(self.tenant, now)
        conditions = windows.purge_conditions(operation, limit_ms, now)
        deleted, record = erasure.remove_services(w, [(sid, conditions) for sid in found])
        if record is not None:
            try:
                erasure.finish_erasure(record)
            except Exception:  # after the commit point nothing may fail the purge
                log.warning("purged %d conversations; erasure of their items left to maintenance", len(deleted),
                            exc_info=True)
        counts = self.state.setdefault("counts", {"purged": 0})
        counts["purged"] += len(deleted)
        self.state["cursor"] = rest
        return rest is None

    def result(self) -> dict[str, Any]:
        return {"purged": self.state.get("counts", {}).get("purged", 0)}


RUNS: dict[str, type[Run]] = {ExportRun.kind: ExportRun, PurgeRun.kind: PurgeRun}


# ---------------------------------------------------------------- requests and jobs


@dataclass
class Outcome:
    """What a maintenance request answers: 200 with the result, or 202 with the job."""

    status: int
    body: dict[str, Any]
    job_id: str | None = None


def export_files(tenant: str, filters: Filters, fmt: str, remaining_ms: int | None) -> Outcome:
    now = clock.now_ms()
    params = {"filters": filters.as_dict(), "format": fmt, "at_ms": now}
    return _request(ExportRun(tenant, params), remaining_ms)


def purge(tenant: str, operation: str, limit: str, remaining_ms: int | None) -> Outcome:
    if operation not in windows.PURGE_OPERATIONS:
        raise ValidationError(f"operation: must be one of {', '.join(windows.PURGE_OPERATIONS)}")
    limit_ms = parse_timestamp(limit, "limit")
    return _request(PurgeRun(tenant, {"operation": operation, "limit_ms": limit_ms}), remaining_ms)


def _request(run: Run, remaining_ms: int | None) -> Outcome:
    budget = settings().maintenance_budget_ms
    if remaining_ms is not None:
        budget = min(budget, remaining_ms - 5_000)
    deadline = time.monotonic() + budget / 1000
    while True:
        if run.step():
            return Outcome(200, run.result())
        if time.monotonic() >= deadline:
            break
    now = clock.now_ms()
    job = JobItem(tenant=run.tenant, job_id=secrets.token_hex(12), kind=run.kind, params=run.params,
                  checkpoint=run.checkpoint(), counts=run.counts(), created_ms=now, updated_ms=now)
    jobs.create_job(job)
    enqueue(job)
    return Outcome(202, job_view(job), job.job_id)


def job_view(job: JobItem) -> dict[str, Any]:
    view: dict[str, Any] = {"job_id": job.job_id, "kind": job.kind, "status": job.status, "counts": job.counts,
                            "created": format_ms(job.created_ms), "updated": format_ms(job.updated_ms)}
    if job.result is not None:
        view["result"] = job.result
    if job.error:
        view["error"] = job.error
    return view


def get_job(tenant: str, job_id: str) -> dict[str, Any]:
    job = jobs.load_job(tenant, job_id) if job_id.isalnum() and len(job_id) <= 64 else None
    if job is None:
        raise NotFound(f"job {job_id[:64]} not found")
    return job_view(job)


def enqueue(job: JobItem) -> None:
    """Let the job continue outside this request: a message on the jobs queue (deployed, and the local
    run's emulated queue), else a background thread of this process."""
    if queue.available():
        queue.send_job(job.tenant, job.job_id)
        return
    def work() -> None:
        while True:
            try:
                if continue_job(job.tenant, job.job_id, None):
                    return
            except JobBusy:
                time.sleep(1.0)  # another worker holds it: try again when its lease may have ended

    threading.Thread(target=work, daemon=True, name=f"job-{job.job_id}").start()


@dataclass
class Progress:
    """How a worker saves a job: every few seconds, so an interrupted worker loses little."""

    every_s: float = 5.0
    last: float = field(default_factory=time.monotonic)

    def due(self) -> bool:
        if time.monotonic() - self.last >= self.every_s:
            self.last = time.monotonic()
            return True
        return False


class JobBusy(Exception):
    """The job is running under another worker's lease: its message must come back later (the
    holder may die before it finishes; its lease then ends and this message's worker takes over)."""


def continue_job(tenant: str, job_id: str, remaining_ms: int | None) -> bool:
    """Work on a job until it is done or the time is up (a queue message, or a background thread).
    Returns True when it is finished (or gone); False when it must continue (the job is saved and its
    lease released, so the next worker takes it at once). Raises JobBusy when another worker holds
    its lease."""
    budget_s = max(((remaining_ms - 15_000) / 1000) if remaining_ms is not None else 600.0, 0.0)
    now = clock.now_ms()
    w = Write(tenant, now)
    job = jobs.take_job(tenant, job_id, w, lease_ms=now + int(budget_s * 1000) + 30_000)
    if job is None:
        current = jobs.load_job(tenant, job_id)
        if current is not None and current.status == "running":
            raise JobBusy(f"job {job_id} is leased by another worker until {format_ms(current.lease_ms)}")
        return True
    run = RUNS[job.kind](tenant, job.params, job.checkpoint)
    deadline, progress = time.monotonic() + budget_s, Progress()
    try:
        while True:
            if run.step():
                job.status, job.result = "succeeded", run.result()
                break
            if time.monotonic() >= deadline:
                break
            if progress.due():
                _save(job, run, w)
    except Exception as error:  # recorded on the job, which the client follows
        log.exception("maintenance job %s failed", job_id)
        job.status, job.error = "failed", f"{type(error).__name__}: internal error"
    # Finished, or stopping for time: either way this worker lets the job go (lease released).
    _save(job, run, w, final=job.status != "running", release=True)
    return job.status != "running"


def continue_job_message(body: str, remaining_ms: int | None) -> None:
    """A job message from the queue: work on the job; one not finished is queued again (its lease
    released, so the next message's worker takes it). Raises JobBusy when another worker holds it."""
    tenant, job_id = queue.job_of(body)
    if not continue_job(tenant, job_id, remaining_ms):
        job = jobs.load_job(tenant, job_id)
        if job is not None:
            enqueue(job)


def _save(job: JobItem, run: Run, w: Write, final: bool = False, release: bool = False) -> None:
    job.checkpoint = {} if final else run.checkpoint()
    job.counts = run.counts()
    job.updated_ms = clock.now_ms()
    if release:
        job.lease_ms = 0
    jobs.save_job(job, w)


def scheduled(remaining_ms: int | None) -> dict[str, int]:
    """The scheduled maintenance: record due auto-completions, finish interrupted erasures."""
    deadline = time.monotonic() + ((remaining_ms - 10_000) / 1000 if remaining_ms else 50.0)
    done = {"auto_completed": 0, "erasures_finished": 0}
    while time.monotonic() < deadline:
        recorded = due.record_auto_completions(clock.now_ms())
        done["auto_completed"] += recorded
        if recorded < 100:
            break
    for unfinished in due.unfinished_erasures(clock.now_ms()):
        if time.monotonic() >= deadline:
            break
        erasure.finish_erasure(unfinished)
        done["erasures_finished"] += 1
    return done
