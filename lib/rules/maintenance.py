"""Maintenance (§8) and the recording of auto-completions (§7): the export stream, export files,
purge, jobs, and the scheduled maintenance. Export files and purge are runs of small steps
(lib.rules.runs) that a request starts and a job finishes when they outgrow it (lib.rules.jobs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lib import clock, paging
from lib.clock import parse_timestamp
from lib.errors import NotFound, ValidationError
from lib.rules.conversation import RESPONSE_LIMIT, Conversation, Page, Selection
from lib.rules.jobs import Outcome, job_view, requeue_stalled, run_request
from lib.rules.runs import ExportRun, Filters, PurgeRun
from lib.rules.services import weigher
from lib.store import due, erasure, expiration, jobs, windows
from lib.store.concurrency import IN_FLIGHT
from lib.store.items import Child, ServiceItem

EVERYTHING = Selection(active_states=True, completed_states=True, active_tasks=True, completed_tasks=True,
                       own={"*"}, state={"*"}, task={"*"})


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
    page, position = Page(), None
    weigh = weigher(EVERYTHING, now)
    for start in range(0, len(found), IN_FLIGHT):  # IN_FLIGHT conversations at once, while the reply has room
        window = found[start:start + IN_FLIGHT]
        by_id = {s.service_id: (s, c) for s, c in windows.conversations(tenant, [sid for sid, _ in window], weigh,
                                                                         RESPONSE_LIMIT)}
        for sid, after in window:
            if sid in by_id and filters.keeps(by_id[sid][0], now):
                service, children = by_id[sid]
                route = f"GET /services/{sid}/states (or /tasks)"
                if not (page.add(_whole(service, children.children, now), route) if children.whole
                        else page.refuse(route)):
                    return page, paging.encode(position, scope)  # right after the last one shown
            position = after
    return page, (paging.encode(rest, scope) if rest else None)


def _whole(service: ServiceItem, children: list[Child], now: int) -> dict[str, Any]:
    return Conversation(service, now).add(children).service_view(EVERYTHING)


# ---------------------------------------------------------------- export files, purge, jobs


def export_files(tenant: str, filters: Filters, fmt: str, remaining_ms: int | None) -> Outcome:
    now = clock.now_ms()
    params = {"filters": filters.as_dict(), "format": fmt, "at_ms": now}
    return run_request(ExportRun(tenant, params), remaining_ms)


def purge(tenant: str, operation: str, limit: str, remaining_ms: int | None) -> Outcome:
    if operation not in windows.PURGE_OPERATIONS:
        raise ValidationError(f"operation: must be one of {', '.join(windows.PURGE_OPERATIONS)}")
    limit_ms = parse_timestamp(limit, "limit")
    return run_request(PurgeRun(tenant, {"operation": operation, "limit_ms": limit_ms}), remaining_ms)


def get_job(tenant: str, job_id: str) -> dict[str, Any]:
    job = jobs.load_job(tenant, job_id) if job_id.isalnum() and len(job_id) <= 64 else None
    if job is None:
        raise NotFound(f"job {job_id[:64]} not found")
    return job_view(job)


# ---------------------------------------------------------------- the schedule


def scheduled(remaining_ms: int | None) -> dict[str, int]:
    """The scheduled maintenance: record due auto-completions, erase the items of deleted conversations
    (a DELETE answers at its commit point and leaves them here) and of interrupted purges, lower the
    children's TTL of conversations given an earlier explicit expiration, queue again the jobs nothing
    moves on."""
    deadline = time.monotonic() + ((remaining_ms - 10_000) / 1000 if remaining_ms else 50.0)
    done = {"auto_completed": 0, "erasures_finished": 0, "jobs_requeued": requeue_stalled(clock.now_ms())}
    while time.monotonic() < deadline:
        recorded = due.record_auto_completions(clock.now_ms())
        done["auto_completed"] += recorded
        if recorded < 100:
            break
    # Every DELETE leaves its erasure here; an earlier explicit expiration its children's TTL.
    # (One that holds a recently ended conversation for the change feed is due again later: not finished.)
    done["erasures_finished"] = sum(1 for removed in _drain(due.unfinished_erasures, erasure.finish_erasure, deadline)
                                    if removed is not None)
    done["children_ttl_lowered"] = sum(_drain(due.due_lowerings,
                                              lambda record: expiration.finish_lowering(record, clock.now_ms()),
                                              deadline))
    return done


def _drain(batch_of: Callable[[int], list[Any]], finish: Callable[[Any], Any], deadline: float) -> list[Any]:
    """Finish due records a batch of 25 at a time until none is due or the deadline passes: what
    `finish` returned for each record finished."""
    results: list[Any] = []
    while time.monotonic() < deadline:
        batch = batch_of(clock.now_ms())
        for record in batch:
            if time.monotonic() >= deadline:
                break
            results.append(finish(record))
        if len(batch) < 25:
            break
    return results
