"""Growth cases: the same requests on a conversation of 1, 100 and 1,000 states and tasks, and on a
customer of 1, 100 and 1,000 services; round trips, items read per item returned, and latency
against the smallest size, measured in one loop that alternates the sizes.

Each size has its own tables (a conversation table and a customer table), built once through the
handlers and then swapped into moto under the table name the handlers use; a request that writes
runs on a deep copy, so every run of every size starts from the same data.
"""

from __future__ import annotations

import copy
import gc
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import data, latency, rule
from bench.calls import TRACKER, sequential
from bench.harness import TABLE, grant, label_case, median, raw_client, returned_items, settle
from bench.operations import backend, judge

# About 400 bytes of attached data on each state and task, so that a conversation of 1,000 states
# and 1,000 tasks holds more than DynamoDB's 1 MB Query page, as real ones with attached data do.
NOTE = "x" * 400
HEAVY_SECONDS = 20.0  # a case whose warm-up round (all sizes) took longer is timed once, not `reps` times
EMBED = "active_states=true&completed_states=true&active_tasks=true&completed_tasks=true"


@dataclass
class Outcome:
    status: int
    body: Any
    pages: int
    size: int


@dataclass
class Case:
    name: str
    kind: str  # "conversation" or "customer"
    request: str  # what it does, for the report
    call: Callable[[Any, dict[str, Any], int], Outcome]
    expect: int = 200
    writes: bool = False
    embedded_services: bool = False  # an embedded customer page: each service's collection is read too


def _one(reply: Any) -> Outcome:
    return Outcome(reply.status, reply.json if reply.text else None, 1, len(reply.text.encode()))


def _get(path: str) -> Callable[[Any, dict[str, Any], int], Outcome]:
    return lambda api, world, limit: _one(api.get(path.format(limit=limit, **world)))


def _all(path: str) -> Callable[[Any, dict[str, Any], int], Outcome]:
    def call(api: Any, world: dict[str, Any], limit: int) -> Outcome:
        items, pages, size = api.follow(path.format(limit=limit, **world))
        return Outcome(200, items, pages, size)

    return call


def _key() -> str:
    return f"growth-{time.perf_counter_ns()}"


CASES = [
    Case("get_service", "conversation", "GET /services/{id}", _get("/services/{service_id}")),
    Case("get_service_embedded", "conversation", "GET /services/{id} with all four arrays and extensions=*",
         _get("/services/{service_id}?" + EMBED + "&extensions=*")),
    Case("get_state", "conversation", "GET /services/{id}/states/1", _get("/services/{service_id}/states/{state_id}")),
    Case("get_task", "conversation", "GET /services/{id}/tasks/1 (a task in an active state)",
         _get("/services/{service_id}/tasks/{task_id}")),
    Case("list_states_first_page", "conversation", "GET .../states?limit={limit}",
         _get("/services/{service_id}/states?limit={limit}")),
    Case("list_states_active_first_page", "conversation", "GET .../states/active?limit={limit}",
         _get("/services/{service_id}/states/active?limit={limit}")),
    Case("list_states_completed_first_page", "conversation", "GET .../states/completed?limit={limit}",
         _get("/services/{service_id}/states/completed?limit={limit}")),
    Case("list_states_embedded_first_page", "conversation", "GET .../states?limit={limit} with each state's tasks",
         _get("/services/{service_id}/states?limit={limit}&active_tasks=true&completed_tasks=true")),
    Case("list_tasks_first_page", "conversation", "GET .../tasks?limit={limit}",
         _get("/services/{service_id}/tasks?limit={limit}")),
    Case("list_tasks_active_first_page", "conversation", "GET .../tasks/active?limit={limit}",
         _get("/services/{service_id}/tasks/active?limit={limit}")),
    Case("list_tasks_completed_first_page", "conversation", "GET .../tasks/completed?limit={limit}",
         _get("/services/{service_id}/tasks/completed?limit={limit}")),
    Case("list_states_paging_all", "conversation", "every page of .../states?limit={limit}, following Link",
         _all("/services/{service_id}/states?limit={limit}")),
    Case("list_tasks_paging_all", "conversation", "every page of .../tasks?limit={limit}, following Link",
         _all("/services/{service_id}/tasks?limit={limit}")),
    Case("start_composite_reuse", "conversation",
         "POST /services_composite/start finding this service, its state 1 and task 1",
         lambda api, world, limit: _one(api.post("/services_composite/start", data.composite_body(world["conversation_customer"]))),
         writes=True),
    Case("start_state", "conversation", "POST .../states/start",
         lambda api, world, limit: _one(api.post(f"/services/{world['service_id']}/states/start",
                                                 {"state_type": "new"})), expect=201, writes=True),
    Case("start_state_with_idempotency_key", "conversation", "POST .../states/start with an Idempotency-Key",
         lambda api, world, limit: _one(api.post(f"/services/{world['service_id']}/states/start",
                                                 {"state_type": "new"}, headers={"Idempotency-Key": _key()})),
         expect=201, writes=True),
    Case("start_task_with_idempotency_key", "conversation", "POST .../tasks/start in state 1 with an Idempotency-Key",
         lambda api, world, limit: _one(api.post(f"/services/{world['service_id']}/tasks/start",
                                                 {"task_type": "new", "state_id": world["state_id"]},
                                                 headers={"Idempotency-Key": _key()})), expect=201, writes=True),
    Case("end_service", "conversation", "POST /services/{id}/end",
         lambda api, world, limit: _one(api.post(f"/services/{world['service_id']}/end", {})), expect=204, writes=True),
    Case("put_service_ttl", "conversation", "PUT /services/{id} {\"ttl\": 86400}",
         lambda api, world, limit: _one(api.put(f"/services/{world['service_id']}", {"ttl": 86400})), writes=True),
    Case("delete_service", "conversation", "DELETE /services/{id}",
         lambda api, world, limit: _one(api.delete(f"/services/{world['service_id']}")), expect=204, writes=True),
    Case("list_customer_services_first_page", "customer", "GET /customers/{c}/services?limit={limit}",
         _get("/customers/{customer}/services?limit={limit}")),
    Case("list_customer_services_active_first_page", "customer", "GET /customers/{c}/services/active?limit={limit}",
         _get("/customers/{customer}/services/active?limit={limit}")),
    Case("list_customer_services_embedded_first_page", "customer",
         "GET /customers/{c}/services?limit={limit} with all four arrays",
         _get("/customers/{customer}/services?limit={limit}&" + EMBED), embedded_services=True),
    Case("list_customer_services_paging_all", "customer", "every page of /customers/{c}/services?limit={limit}",
         _all("/customers/{customer}/services?limit={limit}")),
]


def build(api: Any, sizes: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    """For each size, a table with a conversation of that many states and tasks and a table with a
    customer of that many services, built through the handlers; returns the tables (moto objects)
    and what the cases need to address them."""
    from local import template

    moto = backend()
    label_case("growth: building")
    worlds: dict[int, dict[str, Any]] = {}
    saved = moto.tables.pop(TABLE)
    try:
        for size in sizes:
            template.create_table(raw_client(), TABLE, stream=False)
            grant(TABLE)
            conversation = data.big_conversation(api, size, note=NOTE)
            conversation_table = moto.tables.pop(TABLE)
            template.create_table(raw_client(), TABLE, stream=False)
            grant(TABLE)
            customer = f"growth-customer-{size}"
            data.customer_services(api, customer, size)
            customer_table = moto.tables.pop(TABLE)
            worlds[size] = {"service_id": conversation["service_id"], "state_id": conversation["state_id"],
                            "task_id": conversation["task_id"], "customer": customer,
                            "conversation_customer": conversation["customer"],
                            "tables": {"conversation": conversation_table, "customer": customer_table}}
    finally:
        moto.tables[TABLE] = saved
    return worlds


def measure(api: Any, worlds: dict[int, dict[str, Any]], limit: int, reps: int,
            only: set[str] | None = None, latency_runs: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every case at every size: (growth results, case descriptions). After the timed rounds, each
    size's last recorded calls are replayed under a simulated round trip (bench/latency.py)."""
    moto = backend()
    sizes = sorted(worlds)
    saved = moto.tables[TABLE]
    results: dict[str, Any] = {}
    described: dict[str, Any] = {}
    settle()
    try:
        for case in CASES:
            if only is not None and case.name not in only:
                continue
            samples: dict[int, list[float]] = {size: [] for size in sizes}
            walls: dict[int, list[float]] = {size: [] for size in sizes}
            last: dict[int, dict[str, Any]] = {}
            rounds, rep, began = reps + 1, 0, time.time()
            while rep < rounds:  # the first round warms up and is not timed
                if rep == 1 and time.time() - began > HEAVY_SECONDS:
                    rounds = 2  # a case whose warm-up took this long is timed once
                for size in (sizes if rep % 2 == 0 else list(reversed(sizes))):
                    label_case(f"growth.{case.name}.{size}")
                    pristine = worlds[size]["tables"][case.kind]
                    moto.tables[TABLE] = copy.deepcopy(pristine) if case.writes else pristine
                    TRACKER.start()
                    api.reset()
                    gc.disable()
                    try:
                        outcome = case.call(api, worlds[size], limit)
                    finally:
                        gc.enable()
                    calls = TRACKER.stop()
                    if outcome.status != case.expect:
                        raise RuntimeError(f"growth {case.name} at {size}: expected {case.expect}, got "
                                           f"{outcome.status} {str(outcome.body)[:300]}")
                    last[size] = {"calls": calls, "outcome": outcome, "requests": api.requests, "limit": limit}
                    if rep:
                        samples[size].append(api.cpu * 1000)
                        walls[size].append(api.wall * 1000)
                rep += 1
            for size in sizes:
                label_case(f"growth.{case.name}.{size} (latency)")
                last[size]["latency"] = latency.measure(
                    api, lambda size=size: case.call(api, worlds[size], limit), last[size]["calls"],
                    lambda outcome: outcome.status == case.expect, latency_runs)
            smallest, smallest_wall = median(samples[sizes[0]]), median(walls[sizes[0]])
            results[case.name] = {str(size): _entry(case, last[size], median(samples[size]), smallest,
                                                    median(walls[size]), smallest_wall) for size in sizes}
            described[case.name] = {"request": case.request.replace("{limit}", str(limit)), "timed_runs": rounds - 1,
                                    "size_is": "services of the customer" if case.kind == "customer"
                                    else "states and tasks (each) of the conversation"}
    finally:
        moto.tables[TABLE] = saved
    return results, described


def _entry(case: Case, last: dict[str, Any], median_ms: float, smallest_ms: float, wall_ms: float,
           smallest_wall_ms: float) -> dict[str, Any]:
    calls, outcome = last["calls"], last["outcome"]
    returned = returned_items(outcome.body)
    read = sum(call.items_read for call in calls)
    top = len(outcome.body) if isinstance(outcome.body, list) else 1
    extra = top if case.embedded_services else 0
    # Paging through a list needs one request per `limit` items, whatever the code does.
    pages = max(1, math.ceil(top / last["limit"])) if case.name.endswith("_paging_all") else 1
    result = {
        "round_trips": len(calls),
        "sequential_round_trips": sequential(calls),
        "http_attempts": sum(call.attempts for call in calls),
        "calls": dict(Counter(call.operation for call in calls)),
        "requests": last["requests"],
        "items_read": read,
        "items_returned": returned,
        "items_read_per_returned": round(read / returned, 3) if returned else None,
        "items_written": sum(call.items_written for call in calls),
        "response_bytes": outcome.size,
        "median_ms": round(median_ms, 3),
        "latency_ratio": round(median_ms / smallest_ms, 3) if smallest_ms else None,
        "median_wall_ms": round(wall_ms, 3),
        "wall_latency_ratio": round(wall_ms / smallest_wall_ms, 3) if smallest_wall_ms else None,
        **last["latency"],
    }
    result.update(judge(case.name, rule.GROWTH_TOUCHES.get(case.name), len(calls), read, returned, outcome.size,
                        pages=pages, extra_reads=extra, reason_keys=(f"growth.{case.name}", case.name),
                        chain=last["latency"]["latency_round_trips"]))
    return result
