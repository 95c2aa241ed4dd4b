"""One import (§11): read a source batch by batch, check every conversation, find what the target
holds already, write the rest, and move the checkpoint once a batch is wholly stored.

For each batch (a page of the stream, or 100 lines of the services file):
1. every record is checked; a conversation with any bad record is skipped whole (nothing partial is
   ever written, so fixing the file and running again imports it), each bad record reported where
   it was read;
2. the records become the items the API would have stored (lib.migration.mapping);
3. the target is asked which service ids exist (one BatchGetItem a batch); an id whose conversation
   was deleted and is still being erased gets that erasure finished first (its old items removed,
   the pending erasure stopped: lib.store.erasure.take_over); the existing ones are read whole and
   compared as the API shows them: the same conversation is "already present" (or, carrying this
   run's token, imported by an interrupted attempt of this run); anything else is another
   conversation and is never overwritten;
4. the rest goes to the writer (lib.store.imported), which sends 25 items a request across
   conversations, every conversation's children before its service item.
Batches overlap in the writer (its requests stay full); the checkpoint moves past a batch only when
every conversation of it, and of the batches before, is stored or refused.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from lib import clock
from lib.migration import mapping
from lib.migration.checkpoint import Checkpoint
from lib.migration.mapping import Imported, Policy, Unfit
from lib.migration.pace import Pace
from lib.migration.progress import Progress
from lib.migration.records import RecordProblem, ServiceRecord, StateRecord, TaskRecord, Unit, check
from lib.migration.report import BAD, CONFLICT, EXPIRED, FAILED, PRESENT, UNATTACHED, Report, Tally
from lib.migration.source import Source
from lib.store import imported as store

BATCH = 100


@dataclass
class Job:
    """An import to run: from where, into which tenant (its key), how."""

    source: Source
    tenant: str
    policy: Policy
    report: Report
    checkpoint: Checkpoint | None = None  # None: none kept (a dry run writes nothing, not even a checkpoint)
    dry_run: bool = False
    pace: Pace = field(default_factory=Pace)
    progress: Progress | None = None
    batch: int = BATCH


@dataclass
class _Open:
    """A batch whose conversations are not all stored yet."""

    position: dict[str, Any] | None
    tally: Tally = field(default_factory=Tally)
    outstanding: int = 0  # conversations handed to the writer and not yet stored or refused
    sealed: bool = False  # every conversation of it has been handled (written, skipped or queued)
    ids: set[str] = field(default_factory=set)


class _Run:
    def __init__(self, job: Job):
        self.job = job
        self.committed = job.report.tally
        self.open: deque[_Open] = deque()
        self.writer = None if job.dry_run else store.ConversationWriter(job.pace)
        self.began = time.monotonic()
        self.before = self.committed.read

    # ---- the loop

    def run(self) -> None:
        job = self.job
        job.source.prepare()
        job.report.unattached = [{"reason": UNATTACHED, "service_id": part.service_id, "where": part.where,
                                  "problem": part.problem} for part in job.source.unattached]
        if job.progress is not None:
            job.progress.total = job.source.total
            job.progress.done_before = self.before
        position = job.checkpoint.position if job.checkpoint else None
        for batch in job.source.batches(position, job.batch):
            current = _Open(batch.position)
            self.open.append(current)
            self._handle(batch.units, current)
            current.sealed = True
            self._settle()
        if self.writer is not None:
            self.writer.flush()
        self._settle()
        if job.checkpoint is not None:
            job.checkpoint.finished = True
            job.checkpoint.tally = self.committed.as_dict()
            job.checkpoint.save()

    def finish(self) -> None:
        """Whatever happened: the report gets the committed counts and the writer's numbers."""
        report = self.job.report
        report.seconds = time.monotonic() - self.began
        report.run_conversations = self.committed.read - self.before
        if self.writer is not None:
            report.writes = self.writer.stats.as_dict()
        report.throttles = self.job.pace.throttles
        report.slowed_to = self.job.pace.lowest
        report.rate_limit = self.job.pace.limit

    def show(self, final: bool = False) -> None:
        progress = self.job.progress
        if progress is None:
            return
        tallies = [self.committed, *(batch.tally for batch in self.open)]
        progress.show(sum(t.read for t in tallies), sum(t.imported for t in tallies),
                      sum(sum(t.skipped.values()) for t in tallies), sum(t.failed for t in tallies),
                      self.job.dry_run, final)

    def _settle(self) -> None:
        """Commit the leading batches that are wholly stored; save the checkpoint after the last."""
        moved = False
        while self.open and self.open[0].sealed and self.open[0].outstanding == 0:
            done = self.open.popleft()
            self.committed.add(done.tally)
            if self.job.checkpoint is not None:
                self.job.checkpoint.position = done.position
            moved = True
        if moved and self.job.checkpoint is not None:
            self.job.checkpoint.tally = self.committed.as_dict()
            self.job.checkpoint.save()
        self.show()

    # ---- one batch

    def _handle(self, units: list[Unit], batch: _Open) -> None:
        job, tally, now = self.job, batch.tally, clock.now_ms()
        ready: dict[str, tuple[Imported, str]] = {}
        for unit in units:
            tally.read += 1
            tally.records["service"] += 1
            for part in unit.children:
                tally.records[part.kind] += 1
            conversation = self._prepared(unit, tally, now)
            if conversation is None:
                continue
            service_id = conversation.service.service_id
            if service_id in ready:
                tally.skip(BAD, service_id, unit.service.where,
                           f"a second record of service {service_id} (first: {ready[service_id][1]})")
                continue
            if conversation.service.expires_ms <= now:
                tally.skip(EXPIRED, service_id, unit.service.where, "its expiration_time has passed")
                continue
            ready[service_id] = (conversation, unit.service.where)
        if self.writer is not None and any(sid in b.ids for b in self.open for sid in ready):
            self.writer.flush()  # the same id is still being written: let it land before looking
            self._settle()
        existing, erased = store.look_up(job.tenant, list(ready))
        whole = store.stored_conversations(job.tenant, list(existing))
        for service_id, (conversation, where) in ready.items():
            if service_id in existing:
                self._compare(conversation, whole.get(service_id), where, tally, now)
            elif service_id in erased and self.writer is not None and not self._took_over(service_id, where, tally):
                continue
            elif self.writer is None:
                tally.imported += 1
                tally.imported_items += conversation.items
                tally.imported_events += len(conversation.events or ())
            else:
                self._write(conversation, where, batch)

    def _took_over(self, service_id: str, where: str, tally: Tally) -> bool:
        """A deleted conversation with this id is still being erased: finish its erasure here (its old
        items removed, its pending erasure stopped) before writing, so that it never erases what this
        import writes. False: a service holds the id again (written meanwhile), not overwritten."""
        try:
            removed = store.take_over_erasure(self.job.tenant, service_id, self.job.policy.token)
        except store.ErasureHeld as held:
            tally.skip(CONFLICT, service_id, where, "a deleted conversation with this id ended less than 25 hours "
                       "ago: its items are kept for the change feed until "
                       f"{clock.format_ms(held.until_ms)}; import it again after that")
            return False
        if removed is None:
            tally.skip(CONFLICT, service_id, where, "written in the target while being imported; not overwritten")
            return False
        tally.erasures_finished += 1
        tally.erased_items += removed
        return True

    def _prepared(self, unit: Unit, tally: Tally, now: int) -> Imported | None:
        """The conversation's items, or None (its problems reported, the conversation skipped)."""
        problems: list[tuple[str, str]] = []
        try:
            service = check(unit.service)
        except RecordProblem as problem:
            problems.append((unit.service.where, str(problem)))
            service = None
        states: list[tuple[str, StateRecord]] = []
        tasks: list[tuple[str, TaskRecord]] = []
        for part in unit.children:
            try:
                record = check(part)
            except RecordProblem as problem:
                problems.append((part.where, f"{part.kind}: {problem}"))
                continue
            if isinstance(record, StateRecord):
                states.append((part.where, record))
            elif isinstance(record, TaskRecord):
                tasks.append((part.where, record))
        if not problems and isinstance(service, ServiceRecord):
            try:
                return mapping.build(self.job.tenant, service, states, tasks, now, self.job.policy)
            except Unfit as unfit:
                problems.append((unfit.where or unit.service.where, unfit.message))
        tally.skipped[BAD] += 1
        for where, message in problems:
            tally.problem(BAD, unit.service_id, where, message)
        return None

    def _compare(self, conversation: Imported, stored: tuple[Any, list[Any]] | None, where: str, tally: Tally,
                 now: int) -> None:
        if stored is not None:
            service, children = stored
            same = mapping.shown(service, children, now) == mapping.shown(conversation.service,
                                                                          conversation.children, now)
            if same and service.op == self.job.policy.token:
                tally.imported += 1  # stored by this run before it was interrupted
                tally.imported_items += conversation.items
                tally.imported_events += len(conversation.events or ())
                return
            if same:
                tally.skip(PRESENT, conversation.service.service_id, where)
                return
            if service.op == self.job.policy.token:
                message = "this run stored it before the source changed it; not overwritten"
            else:
                message = "the target holds another conversation with this service id; not overwritten"
            tally.skip(CONFLICT, conversation.service.service_id, where, message)
            return
        tally.skip(CONFLICT, conversation.service.service_id, where, "deleted from the target while being compared")

    def _write(self, conversation: Imported, where: str, batch: _Open) -> None:
        service_id = conversation.service.service_id
        batch.outstanding += 1
        batch.ids.add(service_id)

        def done() -> None:
            batch.tally.imported += 1
            batch.tally.imported_items += conversation.items
            batch.tally.imported_events += len(conversation.events or ())
            settled()

        def failed(reason: str) -> None:
            batch.tally.failed += 1
            batch.tally.problem(FAILED, service_id, where, reason)
            settled()

        def settled() -> None:
            batch.outstanding -= 1
            if batch.outstanding == 0 and batch.sealed:
                self._settle()  # the checkpoint moves as soon as a batch is wholly stored

        assert self.writer is not None  # (a dry run writes nothing)
        self.writer.add(conversation.service, conversation.children, done, failed, conversation.events)


def run(job: Job) -> Report:
    """Run the import; the report says how far it got. A fault or an interruption (KeyboardInterrupt)
    leaves the checkpoint at the last batch wholly stored and is raised again after the report is
    filled in."""
    worker = _Run(job)
    try:
        worker.run()
    finally:
        worker.finish()
        worker.show(final=True)
        job.source.close()
    return job.report
