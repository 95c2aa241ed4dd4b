"""The two maintenance operations that can outgrow a request (§8) as runs of small steps, each
resumable from a checkpoint: export files and purge.

A purge step commits its deletes and the job's progress (counts, checkpoint) in ONE transaction, so
a job's counts are exact whatever fails and whoever resumes it. An export step writes lines; its
checkpoint (file positions, counts, the window's cursor) is saved between steps, and a resume
rewrites what came after it. Finishing an export is idempotent: a close interrupted after it
finished the files (the job's final save failed) finds them finished."""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from lib import clock
from lib.clock import format_ms, parse_timestamp
from lib.errors import ValidationError
from lib.rules.conversation import Conversation, Selection
from lib.rules.services import parse_types, time_window
from lib.store import erasure, jobs, windows
from lib.store.concurrency import Write
from lib.store.files import ExportFile, forget_tails
from lib.store.items import Child, ServiceItem, StateItem
from lib.store.records import JobItem

log = logging.getLogger(__name__)
STEP = 100  # services an export step handles
KINDS = ("services", "states", "tasks")
ATTACHED = Selection(own={"*"})


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


# ---------------------------------------------------------------- runs


class Run:
    """A maintenance operation as steps, resumable from `state` (a job's checkpoint). `job` is its job
    record as this worker holds it (None while the operation lives only in its request); `w` the
    write context whose token holds the job."""

    kind = ""

    def __init__(self, tenant: str, params: dict[str, Any], state: dict[str, Any] | None = None):
        self.tenant, self.params = tenant, params
        self.state: dict[str, Any] = dict(state or {})
        self.job: JobItem | None = None
        self.committed = False  # a step changed something a reader can see (no undo: the answer is a success)

    def step(self, w: Write, job_id: str, lease_ms: int) -> bool:
        """Do one step; True when nothing is left."""
        raise NotImplementedError

    @property
    def finishing(self) -> bool:
        """Every step is done; only finishing is left (a resumed export whose close was interrupted)."""
        return bool(self.state.get("finishing"))

    def checkpoint(self) -> dict[str, Any]:
        return dict(self.state)

    def counts(self) -> dict[str, int]:
        return dict(self.state.get("counts", {}))

    def finish(self) -> dict[str, Any]:
        """The result, once every step is done (idempotent)."""
        raise NotImplementedError

    def abandon(self) -> None:
        """The run stops before anything was promised: leave nothing behind."""

    def ended(self) -> None:
        """Its end is recorded (the answer or the job's result): remove what only a resume needed."""

    def new_job(self, job_id: str, now: int, lease_ms: int) -> JobItem:
        return JobItem(tenant=self.tenant, job_id=job_id, kind=self.kind, params=self.params,
                       checkpoint=self.checkpoint(), counts=self.counts(), created_ms=now, updated_ms=now,
                       lease_ms=lease_ms)


# ---------------------------------------------------------------- export files


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
        self.state.setdefault("run", secrets.token_hex(6))  # this export's own checkpoint tails
        files = self.state.get("files") or {}
        self.files = {kind: ExportFile(self.state["names"][kind], files.get(kind), self.state["run"]) for kind in KINDS}
        if "files" not in self.state and self.fmt == "csv":
            for kind in KINDS:
                self.files[kind].write(",".join(CSV_COLUMNS[kind]) + "\n")

    def step(self, w: Write, job_id: str, lease_ms: int) -> bool:  # noqa: ARG002 - Run.step's signature; an export step needs no lease
        now = clock.now_ms()
        found, rest = windows.window(self.tenant, self.filters.events, self.filters.low, self.filters.high, now,
                                     self.state.get("cursor"), STEP, self.filters.selects)
        for service, children in windows.conversations(self.tenant, [sid for sid, _ in found]):
            if self.filters.keeps(service, now):
                self._write(service, children.children, now)
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

    def start_finishing(self) -> dict[str, Any]:
        """The checkpoint saved before the files are finished: a resume only finishes them."""
        self.state["finishing"] = True
        return self.checkpoint()

    def finish(self) -> dict[str, Any]:
        """Close the files. The first one closed is there for anyone to read: from then on the export
        is committed (a fault hands it to a job that finishes the rest, never an error)."""
        self.state["finishing"] = True
        for f in self.files.values():
            self.committed = True  # from its first call a close may have made the file visible
            f.close()
        return {"created": [self.state["names"][kind] for kind in KINDS]}

    def ended(self) -> None:
        forget_tails([f.name for f in self.files.values()], self.state["run"])

    def abandon(self) -> None:
        for f in self.files.values():
            try:
                f.abandon()
            except Exception:  # best effort: an unfinished upload expires by the bucket's lifecycle rule
                log.warning("export file %s not cleaned up", f.name, exc_info=True)


# ---------------------------------------------------------------- purge


class PurgeRun(Run):
    """Purge (§8): matching conversations deleted whole, 98 service items a transaction (with the
    erasure record and the job's progress), then their other items 25 a request."""

    kind = "purge"

    def step(self, w: Write, job_id: str, lease_ms: int) -> bool:
        operation, limit_ms = self.params["operation"], self.params["limit_ms"]
        found, rest = windows.purge_candidates(self.tenant, operation, limit_ms, w.now, self.state.get("cursor"),
                                               erasure.PURGE_BATCH)
        purged = self.state.get("counts", {}).get("purged", 0)
        saved: list[JobItem] = []

        def progress(ids: list[str]) -> list[dict[str, Any]]:
            """The job's progress in the deletes' transaction: created by the first step that leaves
            work for later; none for a purge that ends within its request."""
            if self.job is None and rest is None:
                return []
            after = {**self.state, "cursor": rest, "counts": {"purged": purged + len(ids)}}
            job = self._job_after(after, w, job_id, lease_ms)
            saved[:] = [job]
            return [jobs.progress_action(job, w) if self.job is not None else jobs.create_action(job, w)]

        deleted, record = erasure.remove_services(w, [(sid, windows.purge_conditions(operation, limit_ms, w.now))
                                                      for sid in found], progress)
        self.state = {**self.state, "cursor": rest, "counts": {"purged": purged + len(deleted)}}
        if deleted:
            self.committed = True
            if saved:
                self.job = saved[0]
        if record is not None:
            try:
                erasure.finish_erasure(record)
            except Exception:  # after the commit point nothing may fail the purge; the schedule finishes it
                log.warning("purged %d conversations; erasure of their items left to maintenance", len(deleted),
                            exc_info=True)
        return rest is None

    def _job_after(self, state: dict[str, Any], w: Write, job_id: str, lease_ms: int) -> JobItem:
        """The job record as it will be once this step commits."""
        job = (self.job.model_copy(deep=True) if self.job is not None
               else self.new_job(job_id, w.now, lease_ms))
        job.checkpoint, job.counts, job.updated_ms = state, dict(state["counts"]), clock.now_ms()
        job.attempts = 0  # its steps move on
        if state["cursor"] is None:
            job.status, job.result, job.checkpoint = "succeeded", {"purged": state["counts"]["purged"]}, {}
        return job

    def finish(self) -> dict[str, Any]:
        return {"purged": self.state.get("counts", {}).get("purged", 0)}


RUNS: dict[str, type[Run]] = {ExportRun.kind: ExportRun, PurgeRun.kind: PurgeRun}
