"""Maintenance figures (contract §8): export stream, export files and purge at 1,000 and 10,000
conversations: round trips, items read per item exported, purge write requests per deleted item.

The routes do not exist yet. Each case first asks whether its route answers (template.yaml routes
it and a request is not a 404 / 405 / 501); until it does, the case reports "not available" and no
figure. Written so that it runs as is once the routes answer; jobs (202 + Location) are followed.
"""

from __future__ import annotations

import copy
import gc
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import data
from bench.calls import TRACKER
from bench.harness import TABLE, grant, raw_client, returned_items, settle
from bench.operations import EVERYTHING as EMBED
from bench.operations import backend

TENANT = "bench-maintenance"
ROUTES = {
    "export_stream": ("GET", "/maintenance/services/stream?time_from={time_from}&limit=1"),
    "export_files": ("POST", "/maintenance/services/files?time_from={future}&format=json"),
    "purge": ("POST", "/maintenance/purge"),
}
UNANSWERED = (404, 405, 501)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def availability(api: Any) -> dict[str, str]:
    """Per case: "available", or why not. The probes change nothing: the export window is in the
    past of any data, the purge request has an unknown operation (a 400 when the route exists)."""
    now = datetime.now(UTC)
    found = {}
    for name, (method, path) in ROUTES.items():
        target = path.format(time_from=_iso(now - timedelta(days=1)), future=_iso(now + timedelta(days=3650)))
        body = {"limit": _iso(now - timedelta(days=36500)), "operation": "bench.probe"} if name == "purge" else None
        try:
            reply = api.request(method, target, body)
        except LookupError as error:
            found[name] = f"not available: {error}"
            continue
        found[name] = "available" if reply.status not in UNANSWERED else \
            f"not available: {method} {target.split('?')[0]} answers {reply.status}"
    return found


POLL_SECONDS = 0.5


def _follow_job(api: Any, reply: Any, polls: list[int], deadline_s: float = 1800) -> Any:
    """A 202's job, polled until it is no longer running. The polls are the benchmark's, not the
    job's: their calls are not recorded and their handler time is not counted (`polls` counts them)."""
    location = reply.headers.get("Location") or reply.headers.get("location") or ""
    path = location.split("/genesys/1/cs", 1)[-1]
    started = time.time()
    while True:
        time.sleep(POLL_SECONDS)
        cpu, wall, requests = api.cpu, api.wall, api.requests
        TRACKER.excluded_thread = threading.get_ident()
        try:
            job = api.get(path)
        finally:
            TRACKER.excluded_thread = None
            api.cpu, api.wall, api.requests = cpu, wall, requests
        polls[0] += 1
        if job.status != 200 or (job.json or {}).get("status") != "running" or time.time() - started > deadline_s:
            return job


def _run(api: Any, method: str, path: str, body: Any = None, pages: bool = False) -> dict[str, Any]:
    polls = [0]
    TRACKER.start()
    api.reset()
    began = time.perf_counter()
    gc.disable()
    try:
        if pages:
            items, count, size = api.follow(path)
            status, body_out = 200, items
        else:
            reply = api.request(method, path, body)
            if reply.status == 202:
                reply = _follow_job(api, reply, polls)
            status, body_out, count, size = reply.status, reply.json, 1, len(reply.text)
    finally:
        gc.enable()
    elapsed = time.perf_counter() - began
    calls = TRACKER.stop()
    return {"status": status, "body": body_out, "requests": api.requests, "seconds": api.wall, "cpu_seconds": api.cpu,
            "elapsed": elapsed, "job_polls": polls[0], "calls": calls,
            "pages": count, "bytes": size}


def _figures(run: dict[str, Any], exported: int | None = None) -> dict[str, Any]:
    calls = run["calls"]
    read = sum(call.items_read for call in calls)
    writes = [call for call in calls if call.items_written]
    result = {
        "status": run["status"],
        "requests": run["requests"],
        "round_trips": len(calls),
        "http_attempts": sum(call.attempts for call in calls),
        "scans": sum(1 for call in calls if call.operation == "Scan"),
        "items_read": read,
        "write_requests": len(writes),
        "items_written": sum(call.items_written for call in calls),
        "handler_seconds": round(run["seconds"], 3),
        "handler_cpu_seconds": round(run["cpu_seconds"], 3),
        "elapsed_seconds": round(run["elapsed"], 3),  # first request to last answer (jobs: polled until done)
        "job_polls": run["job_polls"],  # GET /maintenance/jobs/{id} by the benchmark, not counted above
    }
    if exported is not None:
        result["items_exported"] = exported
        result["items_read_per_exported"] = round(read / exported, 3) if exported else None
    return result


def _count(client: Any) -> int:
    total = 0
    for page in client.get_paginator("scan").paginate(TableName=TABLE, Select="COUNT"):
        total += page["Count"]
    return total


def _build(api: Any, start: int, stop: int) -> list[str]:
    """Conversations start..stop-1 of the maintenance tenant: a service, a state, a task in it;
    every other one ended. Returns their service ids."""
    ids = []
    for n in range(start, stop):
        service_id = data.expect(api.post("/services/start", {"customer_id": f"m-{n}", "service_type": "m"}),
                                 201)["service_id"]
        state = data.expect(api.post(f"/services/{service_id}/states/start", {"state_type": "a"}), 201)["state_id"]
        data.expect(api.post(f"/services/{service_id}/tasks/start", {"task_type": "b", "state_id": state}), 201)
        if n % 2:
            data.expect(api.post(f"/services/{service_id}/end", {}), 204)
        ids.append(service_id)
    return ids


def _grow(api: Any, built: list[str], size: int) -> tuple[list[str], str]:
    """`size` conversations from the `built` ones: copies of them under new ids (data.clone_services)
    when `size` is a multiple, each copy's reading checked through the API; else built one by one."""
    if size % len(built) == 0:
        copies = data.clone_services(raw_client(), TABLE, built, size // len(built) - 1)
        step = max(1, len(built) // 20)
        for original, copy_id in list(zip(built, copies))[::step]:  # first copies, read like their originals
            first, second = api.get(f"/services/{original}?{EMBED}"), api.get(f"/services/{copy_id}?{EMBED}")
            if second.status != 200 or _shape(first.json) != _shape(second.json):
                raise RuntimeError(f"copy {copy_id} of service {original} does not read like it: {second.text[:300]}")
        return built + copies, f"{len(built)} built through the handlers, {len(copies)} copies of them under new ids"
    more = _build(api, len(built), size)
    return built + more, f"{size} built through the handlers"


def _shape(service: Any) -> Any:
    """A service's representation without its ids (a copy differs from its original only there)."""
    return json.loads(json.dumps(service).replace(str(service.get("service_id")), "ID")) if service else None


def maintenance(api_class: Any, sizes: tuple[int, ...]) -> dict[str, Any]:
    from local import template

    api = api_class(headers={"ContactCenterId": TENANT})
    found = availability(api)
    result: dict[str, Any] = {"routes": found, "sizes": list(sizes)}
    cases = ("export_stream", "export_stream_ids", "export_files", "purge")
    for name in cases:
        route = "export_stream" if name == "export_stream_ids" else name
        result[name] = {str(size): None for size in sizes}
        result[name]["status"] = found[route]
    if all(value != "available" for value in found.values()):
        result["status"] = "not available: none of the maintenance routes (§8) answers yet"
        return result
    moto = backend()
    saved = moto.tables.pop(TABLE)
    client = raw_client()
    try:
        template.create_table(client, TABLE, stream=False)
        grant(TABLE)
        time_from = _iso(datetime.now(UTC) - timedelta(minutes=1))
        built: list[str] = []
        for size in sizes:
            if built:
                built, how = _grow(api, built, size)
            else:
                built, how = _build(api, 0, size), f"{size} built through the handlers"
            result.setdefault("data", {})[str(size)] = how
            settle()
            window = f"time_from={time_from}&limit=1000"
            if found["export_stream"] == "available":
                run = _run(api, "GET", f"/maintenance/services/stream?{window}&export_content=true", pages=True)
                result["export_stream"][str(size)] = _figures(run, returned_items(run["body"]))
                run = _run(api, "GET", f"/maintenance/services/stream?{window}", pages=True)
                result["export_stream_ids"][str(size)] = _figures(run, len(run["body"]))
            if found["export_files"] == "available":
                run = _run(api, "POST", f"/maintenance/services/files?time_from={time_from}&format=json")
                result["export_files"][str(size)] = {**_figures(run), "answer": run["body"]}
            if found["purge"] == "available":
                pristine = copy.deepcopy(moto.tables[TABLE])
                before = _count(client)
                limit = _iso(datetime.now(UTC) + timedelta(minutes=1))
                run = _run(api, "POST", "/maintenance/purge", {"limit": limit, "operation": "purge.service.all"})
                deleted = before - _count(client)
                figures = _figures(run)
                figures.update(items_before=before, items_deleted=deleted, answer=run["body"],
                               write_requests_per_deleted_item=round(figures["write_requests"] / deleted, 4)
                               if deleted else None)
                result["purge"][str(size)] = figures
                moto.tables[TABLE] = pristine
    finally:
        moto.tables[TABLE] = saved
    result["status"] = "measured where available"
    return result
