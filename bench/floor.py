"""The framework floor beside the handler, at zero latency (issue 20, point 3).

For a measured operation, three things are timed in one interleaved loop, each answered at once
from the DynamoDB responses recorded when the operation ran on moto (bench/calls.py):

* handler: the request through the project's lambda_handler (production settings, warm grant);
* floor: the same API Gateway event through bench/floor_app.py, a minimal Powertools REST app with
  the same features, making the same DynamoDB calls with the same parameters and answering the
  handler's reply;
* bare: the same calls made directly with botocore (no Powertools, no X-Ray patches);
* floor with the handler's client: the floor app again, its DynamoDB client built as the store builds
  its own (lib.store.table.new_client(): inside Lambda, as here, no client-side parameter validation,
  and the item operations' answers read as plain JSON, where a minimal app keeps botocore's
  validation and its walk of every answer), so that `handler_to_floor_same_client` is the project's
  own code alone and the two ratios side by side show what the client saves.

Times are the process's CPU time per request (bench/harness.TimedApi explains why), medians; the
order of the four rotates every round. `handler_to_floor` is what the targets are about (≤ 1.15
for a single item, ≤ 1.10 for a list page).

A second, shorter loop (`calls_in_place`) times the DynamoDB calls themselves inside the handler and
inside the floor (botocore's `_make_api_call`, with X-Ray's subsegment around each, as both trace): the same calls
with the same parameters, so what they cost more in the handler is the cost, to botocore, of the
project's code having run between them (caches), not a call the floor does not make. It is kept out
of the first loop so that its timer adds nothing to the figures the targets are about.
"""

from __future__ import annotations

import copy
import gc
import json
import statistics
import time
from typing import Any

from bench import client
from bench.calls import TRACKER, bare_call
from bench.harness import raw_client

SINGLE_TARGET, LIST_TARGET = 1.15, 1.10
PAGE_CUSTOMER, PAGE_SIZE = "bench-floor-page", 100


def hundred_service_page(api: Any, size: int = PAGE_SIZE) -> tuple[Any, list[Any], Any, Any]:
    """The list page the floor is measured on: a customer of `size` services (built through the
    handlers, each with a state, every other one ended), listed whole in one page of `limit=100`.
    Returns (the operation, its recorded calls, its context, its reply)."""
    from bench import data
    from bench.operations import Op

    data.customer_services(api, PAGE_CUSTOMER, size)
    op = Op("list_customer_services_all", lambda _: api.get(f"/customers/{PAGE_CUSTOMER}/services?limit=100"),
            list_route=True)
    TRACKER.start()
    try:
        reply = op.call(None)
    finally:
        calls = TRACKER.stop()
    if reply.status != 200 or len(reply.json) != size:
        raise RuntimeError(f"the floor's list page answered {reply.status} with {len(reply.json or [])} services")
    return op, calls, None, reply


def floor_event(api: Any, op: Any, ctx: Any) -> dict[str, Any]:
    """The API Gateway event the handler receives for `op` (TimedApi builds it, nothing is called)."""
    api.capturing = []
    try:
        op.call(ctx)
        [(event, _)] = api.capturing
    finally:
        api.capturing = None
    return event


def floor_calls(calls: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    from botocore import xform_name

    return [(xform_name(call.operation), copy.deepcopy(call.params)) for call in calls]


def measure(api: Any, op: Any, ctx: Any, calls: list[Any], reply: Any, runs: int) -> dict[str, Any]:
    """handler, floor and bare, `runs` rounds each (plus one warm-up), at zero latency."""
    from bench import floor_app
    from bench.operations import Moto, direct

    bare = bare_call(raw_client())
    event = floor_event(api, op, ctx)
    body = json.loads(reply.text) if reply.text else None
    headers = {k: v for k, v in reply.headers.items() if k.lower() in ("location", "link")} or None
    floor_app.REPLY = (reply.status, body, headers)
    context = client.context("floor")
    samples: dict[str, list[float]] = {"handler": [], "floor": [], "bare": [], "same_client": []}
    statuses: set[int] = set()
    minimal = floor_app.client
    with Moto():
        same_client = _client_like_handler()
        for run in range(runs + 1):
            order = ["handler", "floor", "bare", "same_client"]
            order = order[run % 4:] + order[:run % 4]
            for which in order:
                with TRACKER.replaying(calls):
                    if which == "handler":
                        spent = _handler_once(api, op, ctx, reply.status)
                    elif which in ("floor", "same_client"):
                        floor_app.client = minimal if which == "floor" else same_client
                        try:
                            spent, status = _floor_once(calls, event, context)
                        finally:
                            floor_app.client = minimal
                        statuses.add(status)
                    else:
                        spent = direct(calls, bare).cpu
                if run:
                    samples[which].append(spent * 1e6)
    if statuses != {reply.status}:
        raise RuntimeError(f"{op.name}: the floor app answered {statuses}, the handler {reply.status}")
    # Rounded first, so that every ratio below is the quotient of the figures printed beside it (a tool
    # that recomputes one from bench/results.json gets the same three decimals).
    handler_us, floor_us, bare_us, same_us = (round(statistics.median(samples[k]), 1)
                                              for k in ("handler", "floor", "bare", "same_client"))
    in_place = calls_in_place(api, op, ctx, calls, event, context, reply.status, max(runs // 2, 5))
    target = LIST_TARGET if op.list_route else SINGLE_TARGET
    ratio = round(handler_us / floor_us, 3)
    return {
        "handler_us": handler_us,
        "floor_us": floor_us,
        "bare_us": bare_us,
        "handler_to_floor": ratio,
        "floor_to_bare": round(floor_us / bare_us, 3),
        "handler_to_bare": round(handler_us / bare_us, 3),
        "handler_minus_floor_us": round(handler_us - floor_us, 1),
        # The floor app with the handler's client (see the module's docstring).
        "floor_same_client_us": same_us,
        "handler_to_floor_same_client": round(handler_us / same_us, 3),
        # The same calls timed where they are made (see calls_in_place): µs per request, medians.
        "handler_calls_us": in_place["handler"],
        "floor_calls_us": in_place["floor"],
        "calls_excess_us": round(in_place["handler"] - in_place["floor"], 1),
        # The whole requests of that loop (its timer in them), which hold those calls.
        "calls_loop_handler_us": in_place["handler_total"],
        "calls_loop_floor_us": in_place["floor_total"],
        "target_handler_to_floor": target,
        "met": ratio <= target,
        "runs": runs,
        "calls": [call.operation for call in calls],
        "items_returned": len(body) if isinstance(body, list) else 1,
    }


def _client_like_handler() -> Any:
    """A DynamoDB client as the store builds its own (lib.store.table.new_client: its settings, its parsers)."""
    from lib.store.table import new_client

    client = new_client()
    if not TRACKER.installed:  # (installed, it attaches itself to every client made: not twice)
        TRACKER.attach(client)
    return client


def calls_in_place(api: Any, op: Any, ctx: Any, calls: list[Any], event: dict[str, Any], context: Any,
                   status: int, runs: int) -> dict[str, float]:
    """The CPU time per request of the DynamoDB calls (botocore's `_make_api_call`) made by the handler
    and by the floor, `runs` interleaved rounds each (plus one warm-up), medians of the per-request
    sums; and the medians of the same requests' whole time (`<which>_total`: each request's calls are
    part of it, so each median of the calls is at most its total's)."""
    import botocore.client

    from bench.operations import Moto

    spent = [0.0]
    make_api_call = botocore.client.BaseClient._make_api_call

    def timed(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        started = time.process_time()
        try:
            return make_api_call(self, operation_name, api_params)
        finally:
            spent[0] += time.process_time() - started

    samples: dict[str, list[float]] = {"handler": [], "floor": [], "handler_total": [], "floor_total": []}
    botocore.client.BaseClient._make_api_call = timed  # type: ignore[method-assign]
    try:
        with Moto():
            for run in range(runs + 1):
                for which in (("handler", "floor") if run % 2 else ("floor", "handler")):
                    spent[0] = 0.0
                    with TRACKER.replaying(calls):
                        if which == "handler":
                            total = _handler_once(api, op, ctx, status)
                        else:
                            total, answered = _floor_once(calls, event, context)
                            if answered != status:
                                raise RuntimeError(f"{op.name}: the floor app answered {answered}, the handler {status}")
                    if run:
                        samples[which].append(spent[0] * 1e6)
                        samples[f"{which}_total"].append(total * 1e6)
    finally:
        botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
    return {which: round(statistics.median(values), 1) for which, values in samples.items()}


def _handler_once(api: Any, op: Any, ctx: Any, status: int) -> float:
    """One request through the handler (inside the recording's replay): its CPU seconds."""
    api.reset()
    gc.disable()
    try:
        again = op.call(ctx)
    finally:
        gc.enable()
    if again.status != status:
        raise RuntimeError(f"{op.name}: replayed request answered {again.status}")
    return float(api.cpu)


def _floor_once(calls: list[Any], event: dict[str, Any], context: Any) -> tuple[float, int]:
    """The same request through the floor app (inside the recording's replay): its CPU seconds and
    status."""
    from bench import floor_app
    from bench.harness import new_trace

    floor_app.PENDING = floor_calls(calls)
    copied = copy.deepcopy(event)
    new_trace()
    gc.disable()
    cpu = time.process_time()
    try:
        result = floor_app.lambda_handler(copied, context)
    finally:
        spent = time.process_time() - cpu
        gc.enable()
    return spent, int(result["statusCode"])
