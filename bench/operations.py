"""Every operation once, measured four ways in one interleaved loop:

* moto column: the request through lambda_handler on the in-process moto, then the same DynamoDB
  calls made directly with boto3 from the same table state (the table is copied before the request
  and put back before the direct calls, untimed);
* zero-latency column: the request through lambda_handler again, and the same calls made directly
  with botocore, both answered at once by the responses moto gave the first request (bench/calls.py
  answers botocore's `before-send`; moto is switched off meanwhile): the difference is what the
  handler adds, with nothing of the backend left in it;
* latency: the request again, its calls answered from the same recording after a simulated round
  trip each (bench/latency.py): the chain of round trips the caller waits.
"""

from __future__ import annotations

import copy
import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import data, latency, reasons, rule
from bench.calls import TRACKER, bare_call, sequential, untraced
from bench.harness import TABLE, label_case, median, raw_client, returned_items

EVERYTHING = "active_states=true&completed_states=true&active_tasks=true&completed_tasks=true&extensions=*"


@dataclass
class Op:
    name: str
    call: Callable[[Any], Any]  # ctx -> Reply
    prepare: Callable[[], Any] = lambda: None
    expect: int = 200
    list_route: bool = False


def operations(api: Any, found: dict[str, Any]) -> list[Op]:
    active = found["active"]
    sid, state, task = active["service_id"], active["state_id"], active["task_id"]
    fresh = lambda: data.conversation(api)
    key = lambda: f"key-{time.perf_counter_ns()}"

    def with_key(ctx: dict[str, Any]) -> dict[str, str]:
        return {"Idempotency-Key": ctx["key"]}

    def composite(customer: str) -> dict[str, Any]:
        return data.composite_body(customer, state_type="a")

    ops = [
        Op("start_service", lambda _: api.post("/services/start", {"customer_id": "new", "service_type": 1, "a": 1}),
           expect=201),
        Op("start_service_with_idempotency_key",
           lambda ctx: api.post("/services/start", {"customer_id": "new"}, headers={"Idempotency-Key": ctx}),
           prepare=key, expect=201),
        Op("start_service_idempotent_repeat",
           lambda ctx: api.post("/services/start", {"customer_id": "new"}, headers={"Idempotency-Key": ctx}),
           prepare=lambda: _first(api, "/services/start", {"customer_id": "new"}), expect=201),
        Op("get_service", lambda _: api.get(f"/services/{sid}")),
        Op("get_service_embedded", lambda _: api.get(f"/services/{sid}?{EVERYTHING}")),
        Op("end_service", lambda ctx: api.post(f"/services/{ctx['service_id']}/end", {"disposition": 1}),
           prepare=fresh, expect=204),
        # An end that keeps the conversation a day (shorter than the default: its children's TTL comes down).
        Op("end_service_with_ttl", lambda ctx: api.post(f"/services/{ctx['service_id']}/end",
                                                        {"disposition": 1, "ttl": 86400}), prepare=fresh, expect=204),
        Op("delete_service", lambda ctx: api.delete(f"/services/{ctx['service_id']}"), prepare=fresh, expect=204),
        Op("associate_service", lambda ctx: api.post(f"/customers/bench-new/services/{ctx['service_id']}", {"x": 1}),
           prepare=lambda: data.conversation(api, customer=None, contact="anon-assoc"), expect=204),
        Op("put_service", lambda ctx: api.put(f"/services/{ctx['service_id']}", {"ttl": 86400}), prepare=fresh),
        Op("put_service_extension", lambda _: api.put(f"/services/{sid}/extensions/note", {"v": 1})),
        Op("start_composite_create", lambda ctx: api.post("/services_composite/start", composite(ctx)),
           prepare=lambda: f"composite-{time.perf_counter_ns()}"),
        Op("start_composite_create_with_idempotency_key",
           lambda ctx: api.post("/services_composite/start", composite(ctx["customer"]), headers=with_key(ctx)),
           prepare=lambda: {"customer": f"composite-{time.perf_counter_ns()}", "key": key()}),
        Op("start_composite_reuse", lambda _: api.post("/services_composite/start", composite("bench-composite"))),
        Op("start_state", lambda _: api.post(f"/services/{sid}/states/start", {"state_type": "x"}), expect=201),
        Op("start_state_with_idempotency_key",
           lambda ctx: api.post(f"/services/{sid}/states/start", {"state_type": "x"}, headers={"Idempotency-Key": ctx}),
           prepare=key, expect=201),
        Op("transition_state",
           lambda ctx: api.post(f"/services/{ctx['service_id']}/states/transition",
                                {"from": {"state_id": ctx["state_id"]}, "to": {"state_type": "next"}}),
           prepare=fresh, expect=201),
        Op("transition_state_with_idempotency_key",
           lambda ctx: api.post(f"/services/{ctx['service_id']}/states/transition",
                                {"from": {"state_id": ctx["state_id"]}, "to": {"state_type": "next"}},
                                headers=with_key(ctx)),
           prepare=lambda: {**fresh(), "key": key()}, expect=201),
        Op("end_state", lambda ctx: api.post(f"/services/{ctx['service_id']}/states/{ctx['state_id']}/end", {}),
           prepare=fresh, expect=204),
        Op("get_state", lambda _: api.get(f"/services/{sid}/states/{state}")),
        Op("get_state_embedded", lambda _: api.get(f"/services/{sid}/states/{state}?active_tasks=true"
                                                   "&completed_tasks=true&extensions=*")),
        Op("put_state_extension", lambda _: api.put(f"/services/{sid}/states/{state}/extensions/k", 1)),
        Op("start_task", lambda _: api.post(f"/services/{sid}/tasks/start", {"task_type": "y"}), expect=201),
        Op("start_task_in_state", lambda _: api.post(f"/services/{sid}/tasks/start", {"state_id": state}), expect=201),
        Op("start_task_with_idempotency_key",
           lambda ctx: api.post(f"/services/{sid}/tasks/start", {"task_type": "y"}, headers={"Idempotency-Key": ctx}),
           prepare=key, expect=201),
        Op("end_task", lambda ctx: api.post(f"/services/{ctx['service_id']}/tasks/{ctx['task_id']}/end", {}),
           prepare=fresh, expect=204),
        Op("get_task", lambda _: api.get(f"/services/{sid}/tasks/{task}")),
        Op("put_task_extension", lambda _: api.put(f"/services/{sid}/tasks/{task}/extensions/k", 1)),
    ]
    for label, suffix in (("all", ""), ("active", "/active"), ("completed", "/completed")):
        ops.append(Op(f"list_customer_services_{label}",
                      lambda _, s=suffix: api.get(f"/customers/bench-customer/services{s}?limit=100"), list_route=True))
        ops.append(Op(f"list_anonymous_services_{label}",
                      lambda _, s=suffix: api.get(f"/services/anonymous/bench-contact{s}?limit=100"), list_route=True))
        ops.append(Op(f"list_states_{label}", lambda _, s=suffix: api.get(f"/services/{sid}/states{s}"),
                      list_route=True))
        ops.append(Op(f"list_tasks_{label}", lambda _, s=suffix: api.get(f"/services/{sid}/tasks{s}"),
                      list_route=True))
    return ops


def _first(api: Any, path: str, body: dict[str, Any]) -> str:
    """A key whose first request has been made (so the measured request is a repeat)."""
    key = f"repeat-{time.perf_counter_ns()}"
    data.expect(api.post(path, body, headers={"Idempotency-Key": key}), 201)
    return key


def build(api: Any) -> dict[str, Any]:
    """The operations' data: a conversation to read, eight more of the same customer and contact
    key (half of them ended), and a composite-started service to reuse."""
    found = {"active": data.conversation(api)}
    for n in range(4):
        data.conversation(api, completed=n % 2 == 0)
        data.conversation(api, customer=None, contact="bench-contact", completed=n % 2 == 1)
    data.expect(api.post("/services_composite/start", data.composite_body("bench-composite", state_type="a")), 200)
    return found


# ---------------------------------------------------------------- measuring


@dataclass
class Samples:
    """Per comparison, CPU-time and wall-time samples."""

    handler: list[Any] = field(default_factory=list)  # Timing, moto
    direct: list[Any] = field(default_factory=list)
    zero_handler: list[Any] = field(default_factory=list)
    zero_bare: list[Any] = field(default_factory=list)


def backend() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]


class Moto:
    """Switches moto's botocore stub off while recorded responses answer (else it would run the
    request against its backend as well)."""

    def __enter__(self) -> None:
        from moto.core.models import botocore_stubber

        self.stubber = botocore_stubber
        self.was = botocore_stubber.enabled
        botocore_stubber.enabled = False

    def __exit__(self, *_: Any) -> None:
        self.stubber.enabled = self.was


@dataclass
class Timing:
    cpu: float  # seconds of the process's CPU time
    wall: float


def direct(calls: list[Any], bare: Callable[[str, dict[str, Any]], Any]) -> Timing:
    """The recorded calls made directly; time taken. Parameters are copied before the clock starts
    (botocore may add to them)."""
    from botocore.exceptions import ClientError

    prepared = [(call.operation, copy.deepcopy(call.params)) for call in calls]
    with untraced():
        gc.disable()
        started, cpu = time.perf_counter(), time.process_time()
        try:
            for operation, params in prepared:
                try:
                    bare(operation, params)
                except ClientError:
                    pass  # the request met the same refusal (a failed condition) and so does its replay
        finally:
            timing = Timing(time.process_time() - cpu, time.perf_counter() - started)
            gc.enable()
    return timing


def timed(api: Any, op: Op, ctx: Any) -> tuple[Any, Timing]:
    api.reset()
    gc.disable()
    try:
        reply = op.call(ctx)
    finally:
        gc.enable()
    return reply, Timing(api.cpu, api.wall)


def measure(api: Any, op: Op, reps: int, zero_per_rep: int,
            latency_runs: int = 1) -> tuple[dict[str, Any], list[Any], Any, Any]:
    """One operation: (its entry, the recorded calls, the reply of its last run, and the context that
    run was prepared with)."""
    bare = bare_call(raw_client())
    moto = backend()
    samples = Samples()
    label_case(op.name)
    last: tuple[list[Any], Any] | None = None
    trips: list[int] = []
    for rep in range(reps + 1):  # the first round warms up and is not timed
        ctx = op.prepare()
        snapshot = copy.deepcopy(moto.tables[TABLE])
        TRACKER.start()
        reply, handler = timed(api, op, ctx)
        calls = TRACKER.stop()
        if reply.status != op.expect:
            raise RuntimeError(f"{op.name}: expected {op.expect}, got {reply.status} {reply.text[:500]}")
        moto.tables[TABLE] = snapshot
        direct_timing = direct(calls, bare)
        zero_handler, zero_bare = [], []
        with Moto():
            for n in range(zero_per_rep):
                order = (0, 1) if (rep + n) % 2 == 0 else (1, 0)  # alternate which goes first
                for which in order:
                    with TRACKER.replaying(calls):
                        if which == 0:
                            again, timing = timed(api, op, ctx)
                            if again.status != reply.status:
                                raise RuntimeError(f"{op.name}: replayed request answered {again.status} "
                                                   f"({TRACKER.unexpected[-1:]}) {again.text[:300]}")
                            zero_handler.append(timing)
                        else:
                            zero_bare.append(direct(calls, bare))
        trips.append(len(calls))
        last = (calls, reply)
        if rep == 0:
            continue
        samples.handler.append(handler)
        samples.direct.append(direct_timing)
        samples.zero_handler += zero_handler
        samples.zero_bare += zero_bare
    assert last is not None
    calls, reply = last
    result = entry(calls, reply, samples)
    result.update(latency.measure(api, lambda: op.call(ctx), calls, lambda again: again.status == reply.status,
                                  latency_runs))
    body_size = len(reply.text.encode()) if reply.text else 0
    result.update(judge(op.name, rule.TOUCHES.get(op.name), len(calls), result["items_read"],
                        result["items_returned"], body_size, chain=result["latency_round_trips"]))
    if len(set(trips)) > 1:
        result["round_trips_per_run"] = trips  # the warm-up run first
    return result, calls, reply, ctx


def _median(timings: list[Any], clock: str, scale: float) -> float:
    return median([getattr(timing, clock) * scale for timing in timings])


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def entry(calls: list[Any], reply: Any, samples: Samples) -> dict[str, Any]:
    body = reply.json if reply.text else None
    returned = returned_items(body)
    read = sum(call.items_read for call in calls)
    zero_h, zero_b = _median(samples.zero_handler, "cpu", 1e6), _median(samples.zero_bare, "cpu", 1e6)
    wall_h, wall_b = _median(samples.zero_handler, "wall", 1e6), _median(samples.zero_bare, "wall", 1e6)
    moto_h, moto_d = _median(samples.handler, "cpu", 1e3), _median(samples.direct, "cpu", 1e3)
    moto_wh, moto_wd = _median(samples.handler, "wall", 1e3), _median(samples.direct, "wall", 1e3)
    result: dict[str, Any] = {
        "round_trips": len(calls),
        "sequential_round_trips": sequential(calls),
        "http_attempts": sum(call.attempts for call in calls),
        "calls": [call.operation for call in calls],
        "items_read": read,
        "items_returned": returned,
        "items_written": sum(call.items_written for call in calls),
        "handler_median_ms": round(moto_h, 3),
        "direct_median_ms": round(moto_d, 3),
        "overhead_ratio": _ratio(moto_h, moto_d),
        "handler_wall_median_ms": round(moto_wh, 3),
        "direct_wall_median_ms": round(moto_wd, 3),
        "wall_overhead_ratio": _ratio(moto_wh, moto_wd),
        "zero_latency_handler_us": round(zero_h, 1),
        "zero_latency_bare_us": round(zero_b, 1),
        "zero_latency_added_us": round(zero_h - zero_b, 1),
        "zero_latency_ratio": _ratio(zero_h, zero_b),
        "zero_latency_wall_handler_us": round(wall_h, 1),
        "zero_latency_wall_bare_us": round(wall_b, 1),
        "zero_latency_wall_added_us": round(wall_h - wall_b, 1),
        "zero_latency_wall_ratio": _ratio(wall_h, wall_b),
        "zero_latency_samples": len(samples.zero_handler),
    }
    return result


def judge(name: str, touches: rule.Touches | None, trips: int, read: int, returned: int, size: int,
          pages: int = 1, extra_reads: int = 0, reason_keys: tuple[str, ...] = (),
          chain: int | None = None) -> dict[str, Any]:
    """The rule's minimum for a measured operation (calls, items read, round trips of latency: the
    measured `chain`), and whether (and why) it is missed."""
    if touches is None:
        return {"minimum_round_trips": None, "minimum_latency_round_trips": None,
                "minimum_rule": "no entry in bench/rule.py TOUCHES", "missed": []}
    least = rule.minimum(touches, returned, size, pages, extra_reads)
    missed = []
    if trips > least.round_trips:
        missed.append("round_trips")
    if read > least.items_read:
        missed.append("items_read")
    if chain is not None and chain > least.latency_round_trips:
        missed.append("latency_round_trips")
    result: dict[str, Any] = {"minimum_round_trips": least.round_trips,
                              "minimum_latency_round_trips": least.latency_round_trips,
                              "minimum_rule": least.explained,
                              "items_read_allowed": least.items_read, "missed": missed}
    if missed:
        result["above_minimum_because"] = reasons.reason(*(reason_keys or (name,)))
        result["reason_key"] = reasons.key(*(reason_keys or (name,)))
    return result


def lists_entry(result: dict[str, Any]) -> dict[str, Any]:
    read, returned = result["items_read"], result["items_returned"]
    # consumed_capacity: kept for the shape of results.json; the benchmark no longer adds
    # ReturnConsumedCapacity to the handlers' requests (it measures them as they are made).
    return {"items_read": read, "items_returned": returned,
            "items_read_per_returned": round(read / returned, 3) if returned else None, "consumed_capacity": None,
            "latency_round_trips": result["latency_round_trips"],
            "minimum_latency_round_trips": result.get("minimum_latency_round_trips")}


def describe(calls: list[Any]) -> str:
    return json.dumps([call.operation for call in calls])
