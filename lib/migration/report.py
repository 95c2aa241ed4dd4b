"""What an import did (§11: read, imported, skipped with reasons, failed), as text for the terminal
and as JSON for a file. Counts are conversations unless named otherwise; every skipped or failed
conversation, and every record that belongs to no conversation, is listed with where it was read
(file and line, or stream page and item) and why.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

PRESENT = "already present"  # the same conversation is in the target (imported before)
CONFLICT = "exists with other content"  # another conversation has this service id there: never overwritten
EXPIRED = "expired"  # its expiration_time has passed: it would be gone at once
BAD = "bad record"  # a record that cannot be imported: the conversation is skipped whole
REASONS = (PRESENT, CONFLICT, EXPIRED, BAD)
FAILED = "failed"  # the store refused its items (it stays invisible)
UNATTACHED = "unattached record"  # a state or task whose service is not in the source
SHOWN = 20  # problems listed in the text report (all of them are in the JSON one)


@dataclass
class Tally:
    """Counts and problems of part of an import (a batch, or everything committed so far)."""

    read: int = 0  # conversations (service records, readable or not)
    records: Counter[str] = field(default_factory=Counter)  # service / state / task records read
    imported: int = 0
    imported_items: int = 0
    imported_events: int = 0  # change-feed events written with them (--emit-events)
    skipped: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    # Ids written where a deleted conversation with the same id was still being erased: its erasure
    # was finished by the import first (its old items removed) so that it never reaches the new one.
    erasures_finished: int = 0
    erased_items: int = 0

    def problem(self, reason: str, service_id: str | None, where: str | None, message: str) -> None:
        self.problems.append({"reason": reason, "service_id": service_id, "where": where, "problem": message})

    def skip(self, reason: str, service_id: str | None, where: str | None, message: str | None = None) -> None:
        self.skipped[reason] += 1
        if reason != PRESENT:
            self.problem(reason, service_id, where, message or reason)

    def add(self, other: Tally) -> None:
        self.read += other.read
        self.records.update(other.records)
        self.imported += other.imported
        self.imported_items += other.imported_items
        self.imported_events += other.imported_events
        self.skipped.update(other.skipped)
        self.failed += other.failed
        self.problems.extend(other.problems)
        self.erasures_finished += other.erasures_finished
        self.erased_items += other.erased_items

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "records": dict(self.records), "imported": self.imported,
                "imported_items": self.imported_items, "imported_events": self.imported_events, "skipped": dict(self.skipped), "failed": self.failed,
                "problems": self.problems, "erasures_finished": self.erasures_finished,
                "erased_items": self.erased_items}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tally:
        return cls(data.get("read", 0), Counter(data.get("records", {})), data.get("imported", 0),
                   data.get("imported_items", 0), data.get("imported_events", 0), Counter(data.get("skipped", {})),
                   data.get("failed", 0), list(data.get("problems", [])), data.get("erasures_finished", 0),
                   data.get("erased_items", 0))


@dataclass
class Report:
    """The whole import: what was committed, the records that belong to no conversation, the writes."""

    source: str
    target: str
    dry_run: bool = False
    events: bool = False  # asked to write change-feed events (--emit-events)
    tally: Tally = field(default_factory=Tally)
    unattached: list[dict[str, Any]] = field(default_factory=list)
    writes: dict[str, int] = field(default_factory=dict)
    throttles: int = 0
    slowed_to: float | None = None  # items a second, after throttling
    rate_limit: float | None = None
    seconds: float = 0.0
    run_conversations: int = 0  # handled by this run (a resumed run does not count the earlier ones)
    resumed_from: str | None = None
    checkpoint: str | None = None
    stopped: str | None = None  # why it stopped before the end (it resumes from the checkpoint)

    @property
    def finished(self) -> bool:
        return self.stopped is None

    @property
    def clean(self) -> bool:
        """Nothing refused: no bad record, no conflict, no failure, no unattached record."""
        t = self.tally
        return not (t.skipped[BAD] or t.skipped[CONFLICT] or t.failed or self.unattached)

    def items_per_write_request(self) -> float | None:
        requests = self.writes.get("requests", 0)
        return round(self.writes.get("items", 0) / requests, 2) if requests else None

    def conversations_per_second(self) -> float | None:
        return round(self.run_conversations / self.seconds, 1) if self.seconds > 0 else None

    def as_dict(self) -> dict[str, Any]:
        t = self.tally
        return {
            "source": self.source, "target": self.target, "dry_run": self.dry_run, "finished": self.finished,
            "stopped": self.stopped, "resumed_from": self.resumed_from, "checkpoint": self.checkpoint,
            "read": {"conversations": t.read, "records": dict(t.records)},
            "imported": {"conversations": t.imported, "items": t.imported_items},
            "change_feed_events": t.imported_events if self.events else None,
            "deleted_before": {"conversations": t.erasures_finished, "old_items_removed": t.erased_items},
            "skipped": {"total": sum(t.skipped.values()), **{reason: t.skipped[reason] for reason in REASONS}},
            "failed": t.failed,
            "unattached_records": len(self.unattached),
            "problems": t.problems + self.unattached,
            "writes": {**self.writes, "items_per_request": self.items_per_write_request(), "throttled": self.throttles,
                       "rate_limit": self.rate_limit,
                       "slowed_to": round(self.slowed_to, 1) if self.slowed_to is not None else None},
            "seconds": round(self.seconds, 3), "conversations_per_second": self.conversations_per_second(),
        }

    def json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False) + "\n"

    def text(self) -> str:
        t = self.tally
        verb = "would import" if self.dry_run else "imported"
        state = "dry run (nothing written)" if self.dry_run else "finished"
        if self.stopped:
            state = f"stopped: {self.stopped}; run the same command again to resume"
        records = ", ".join(f"{t.records[k]:,} {k}" for k in ("service", "state", "task") if t.records[k])
        lines = [f"import {self.source} -> {self.target}: {state}"]
        if self.resumed_from:
            lines.append(f"  resumed from {self.resumed_from}")
        lines += [f"  read      {t.read:,} conversations ({records or 'no records'})",
                  f"  {verb:9} {t.imported:,} conversations ({t.imported_items:,} items"
                  + (f", {t.imported_events:,} change-feed events)" if self.events else ")"),
                  f"  skipped   {sum(t.skipped.values()):,}" + "".join(
                      f"; {reason} {t.skipped[reason]:,}" for reason in REASONS if t.skipped[reason]),
                  f"  failed    {t.failed:,}"]
        if t.erasures_finished:
            lines.append(f"  deleted before: {t.erasures_finished:,} ids were still being erased after a DELETE or "
                         f"purge; the import finished those erasures first ({t.erased_items:,} old items removed)")
        if self.unattached:
            lines.append(f"  unattached records {len(self.unattached):,} (a state or task with no conversation to "
                         "belong to)")
        if self.writes.get("requests"):
            lines.append(f"  writes    {self.writes['requests']:,} BatchWriteItem requests, "
                         f"{self.items_per_write_request()} items a request"
                         + (f", at most {self.rate_limit:g} items a second" if self.rate_limit else "")
                         + (f"; throttled {self.throttles:,} times, slowed down to {self.slowed_to:,.0f} items a second"
                            if self.throttles else ""))
        rate = self.conversations_per_second()
        lines.append(f"  time      {self.seconds:.1f} s" + (f", {rate:,} conversations a second" if rate else ""))
        problems = t.problems + self.unattached
        if problems:
            lines.append(f"  problems ({min(SHOWN, len(problems))} of {len(problems)}"
                         f"{'; all in the JSON report (--report FILE)' if len(problems) > SHOWN else ''}):")
            for entry in problems[:SHOWN]:
                service = f"service {entry['service_id']}" if entry.get("service_id") else "no service id"
                lines.append(f"    {entry['reason']}: {service}, {entry.get('where') or '-'}: {entry['problem']}")
        if self.checkpoint and not self.dry_run:
            lines.append(f"  checkpoint {self.checkpoint}")
        return "\n".join(lines)
