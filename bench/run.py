"""`make bench`: what each operation costs, and how cost grows. See docs/BENCHMARKS.md.

Everything runs in one process on the embedded DynamoDB (moto with local.embedded_dynamodb's
fidelity patches), except cold starts (fresh processes) and the throughput run (a local server
process loaded from a second process). DynamoDB calls are counted with botocore's event hooks on the
client the handlers use.

    python -m bench.run [--quick] [--output bench/results.json]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TABLE = "context-services-bench"
LISTS_TARGET = 1.1


def _environment() -> None:
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
        TABLE_NAME=TABLE, PAGE_TOKEN_SECRET="bench", POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_TRACE_DISABLED="true", POWERTOOLS_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "CRITICAL"),
    )
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", "AWS_LAMBDA_FUNCTION_NAME"):
        os.environ.pop(name, None)


# ---------------------------------------------------------------- counting DynamoDB calls


class Counter:
    """Records every DynamoDB API call of the handlers' client (botocore event hooks)."""

    def __init__(self, client: Any):
        self.client = client
        self.enabled = True
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.stats: list[dict[str, Any]] = []
        client.meta.events.register("provide-client-params.dynamodb.*", self._params)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.enabled:
            return
        if model.name == "Query":
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        # A reference, not a copy, so that counting costs the measured call nothing: the store builds
        # fresh parameters for every call and nothing changes them afterwards (replay copies them).
        self.calls.append((model.name, params))

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if self.enabled:
            consumed = parsed.get("ConsumedCapacity")
            capacity = consumed.get("CapacityUnits") if isinstance(consumed, dict) else None
            self.stats.append({"operation": model.name, "count": parsed.get("Count"),
                               "scanned": parsed.get("ScannedCount"), "capacity": capacity})

    def reset(self) -> None:
        self.calls, self.stats = [], []

    def replay(self, calls: list[tuple[str, dict[str, Any]]]) -> float:
        """Make the same calls directly with boto3 (nothing else around them); seconds taken."""
        from botocore.exceptions import ClientError

        self.enabled = False
        calls = copy.deepcopy(calls)  # botocore may fill in parameters; keep the recording intact
        started = time.perf_counter()
        try:
            for operation, params in calls:
                try:
                    self.client._make_api_call(operation, params)  # noqa: SLF001
                except ClientError:
                    pass  # the API call met the same conditional failure (e.g. a 409) and so does its replay
        finally:
            elapsed = time.perf_counter() - started
            self.enabled = True
        return elapsed


# ---------------------------------------------------------------- data


def conversation(api: Any, customer: str | None = "bench-customer", contact: str | None = None,
                 completed: bool = False) -> dict[str, Any]:
    """A realistic conversation: attached data, three states (two by transition), four tasks (two
    in a state), some of them ended."""
    body: dict[str, Any] = {"service_type": "billing", "media_type": "voice", "account": {"id": 42, "tier": "gold"},
                            "channel": "ivr"}
    if customer:
        body["customer_id"] = customer
    if contact:
        body["contact_key"] = contact
    service_id = api.post("/services/start", body).json["service_id"]
    base = f"/services/{service_id}"
    state = api.post(f"{base}/states/start", {"state_type": "identify", "step": 1}).json["state_id"]
    task_in_state = api.post(f"{base}/tasks/start", {"task_type": "lookup", "state_id": state}).json["task_id"]
    api.post(f"{base}/tasks/{task_in_state}/end", {"disposition": "found"})
    second = api.post(f"{base}/states/transition", {"from": {"state_id": state}, "to": {"state_type": "verify"}}).json
    api.post(f"{base}/tasks/start", {"task_type": "otp", "state_id": second["state_id"], "otp": "sent"})
    third = api.post(f"{base}/states/transition",
                     {"from": {"state_id": second["state_id"]}, "to": {"state_type": "pay"}}).json["state_id"]
    active_task = api.post(f"{base}/tasks/start", {"task_type": "charge", "state_id": third}).json["task_id"]
    api.post(f"{base}/tasks/start", {"task_type": "survey"})
    if completed:
        api.post(f"{base}/end", {"disposition": "done"})
    return {"service_id": service_id, "state_id": third, "task_id": active_task, "first_state": state}


def unrelated(client: Any, count: int, table: str = TABLE) -> None:
    """`count` conversations of other customers (service, two states, two tasks each), written
    directly in batches: they only have to be there."""
    from lib import clock, store
    from lib.ids import new_service_id
    from lib.models import ServiceStart
    from lib.rules import expiration, services

    now = clock.now_ms()
    expiry = expiration.default(now)
    items: list[dict[str, Any]] = []
    for n in range(count):
        service_id = new_service_id()
        body = ServiceStart(customer_id=f"other-{n}", service_type="billing")
        service = services.new_service_item(store.tenant_key(None, None), service_id, body, now - n, expiry, now)
        service["state_seq"], service["task_seq"] = 2, 2
        items.append(service)
        for child in (1, 2):
            for kind_sk, id_field in ((store.state_sk, "state_id"), (store.task_sk, "task_id")):
                items.append({"PK": service["PK"], "SK": kind_sk(child), id_field: child, "service_id": service_id,
                              "started": {"timestamp": "2026-01-01T00:00:00.000Z"}, "started_ms": now, "ext": {},
                              store.TTL_ATTRIBUTE: service["children_ttl"]})
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": store.to_item(item)}} for item in items[start:start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


# ---------------------------------------------------------------- operations


@dataclass
class Op:
    name: str
    minimum: int
    call: Callable[[Any], Any]  # ctx -> Reply
    prepare: Callable[[], Any] = lambda: None
    reason: str = ""
    expect: int = 200
    list_route: bool = False


def operations(api: Any, data: dict[str, Any]) -> list[Op]:
    active = data["active"]
    sid, state, task = active["service_id"], active["state_id"], active["task_id"]
    everything = "active_states=true&completed_states=true&active_tasks=true&completed_tasks=true&extensions=*"
    fresh = lambda: conversation(api)  # noqa: E731
    ops = [
        Op("start_service", 1, lambda _: api.post("/services/start", {"customer_id": "new", "service_type": 1, "a": 1}),
           expect=201),
        Op("start_service_with_idempotency_key", 1,
           lambda ctx: api.post("/services/start", {"customer_id": "new"}, headers={"Idempotency-Key": ctx}),
           prepare=lambda: f"key-{time.perf_counter_ns()}", expect=201,
           reason="Powertools Idempotency writes the record before (PutItem) and completes it after (UpdateItem)"),
        Op("get_service", 1, lambda _: api.get(f"/services/{sid}")),
        Op("get_service_embedded", 1, lambda _: api.get(f"/services/{sid}?{everything}")),
        Op("end_service", 1, lambda ctx: api.post(f"/services/{ctx['service_id']}/end", {"disposition": 1}),
           prepare=fresh, expect=204),
        Op("delete_service", 2, lambda ctx: api.delete(f"/services/{ctx['service_id']}"), prepare=fresh, expect=204,
           reason="the service item is deleted on its own first (conditional DeleteItem), so the conversation "
                  "disappears for every reader at once whatever the number of children; then one Query finds "
                  "the children and one BatchWriteItem per 25 deletes them"),
        Op("associate_service", 1, lambda ctx: api.post(f"/customers/bench-new/services/{ctx['service_id']}", {"x": 1}),
           prepare=lambda: conversation(api, customer=None, contact="anon-assoc"), expect=204),
        Op("put_service", 2, lambda ctx: api.put(f"/services/{ctx['service_id']}", {"ttl": 86400}), prepare=fresh,
           reason="the service item is updated first (the new expiration holds at once); then one Query finds the "
                  "children and one TransactWriteItems moves their TTL and records it on the service"),
        Op("put_service_extension", 1, lambda _: api.put(f"/services/{sid}/extensions/note", {"v": 1})),
        Op("start_composite_create", 2,
           lambda ctx: api.post("/services_composite/start", {"services": [
               {"service": {"customer_id": ctx, "service_type": "s"}, "state": {"state_type": "a"},
                "task": {"task_type": "t"}, "associate_state_task": True}]}),
           prepare=lambda: f"composite-{time.perf_counter_ns()}",
           reason="find-or-create at three levels: the service lock is read and the owner's active services "
                  "searched (one Query) before the service and its lock are written in one transaction; the state "
                  "and the task each take an id from the service counter (transactions cannot return values), "
                  "then are written with their lock in one transaction"),
        Op("start_composite_reuse", 2,
           lambda _: api.post("/services_composite/start", {"services": [
               {"service": {"customer_id": "bench-composite", "service_type": "s"}, "state": {"state_type": "a"},
                "task": {"task_type": "t"}, "associate_state_task": True}]}),
           reason="the service lock is read, then the conversation it names (one Query serves service, state and "
                  "task)"),
        Op("start_state", 1, lambda _: api.post(f"/services/{sid}/states/start", {"state_type": "x"}), expect=201,
           reason="the id comes from an UpdateItem of the service counter (transactions cannot return values); "
                  "the item is then written in a transaction that re-checks the service"),
        Op("transition_state", 1,
           lambda ctx: api.post(f"/services/{ctx['service_id']}/states/transition",
                                {"from": {"state_id": ctx["state_id"]}, "to": {"state_type": "next"}}),
           prepare=fresh, expect=201, reason="as start_state: id first, then one transaction (end old, put new)"),
        Op("end_state", 1, lambda ctx: api.post(f"/services/{ctx['service_id']}/states/{ctx['state_id']}/end", {}),
           prepare=fresh, expect=204),
        Op("get_state", 1, lambda _: api.get(f"/services/{sid}/states/{state}")),
        Op("get_state_embedded", 1, lambda _: api.get(f"/services/{sid}/states/{state}?active_tasks=true"
                                                      "&completed_tasks=true&extensions=*")),
        Op("put_state_extension", 1, lambda _: api.put(f"/services/{sid}/states/{state}/extensions/k", 1)),
        Op("start_task", 1, lambda _: api.post(f"/services/{sid}/tasks/start", {"task_type": "y"}), expect=201,
           reason="as start_state"),
        Op("start_task_in_state", 1, lambda _: api.post(f"/services/{sid}/tasks/start", {"state_id": state}),
           expect=201, reason="as start_state (the transaction also checks the state)"),
        Op("end_task", 1, lambda ctx: api.post(f"/services/{ctx['service_id']}/tasks/{ctx['task_id']}/end", {}),
           prepare=fresh, expect=204,
           reason="the task is read first: if it belongs to a state, the transaction must check that state"),
        Op("get_task", 1, lambda _: api.get(f"/services/{sid}/tasks/{task}"),
           reason="an active task of a state also needs its state's end (cascade applied on read)"),
        Op("put_task_extension", 1, lambda _: api.put(f"/services/{sid}/tasks/{task}/extensions/k", 1)),
    ]
    for label, suffix in (("all", ""), ("active", "/active"), ("completed", "/completed")):
        ops.append(Op(f"list_customer_services_{label}", 1,
                      lambda _, s=suffix: api.get(f"/customers/bench-customer/services{s}?limit=100"), list_route=True))
        ops.append(Op(f"list_anonymous_services_{label}", 1,
                      lambda _, s=suffix: api.get(f"/services/anonymous/bench-contact{s}?limit=100"), list_route=True))
        ops.append(Op(f"list_states_{label}", 1, lambda _, s=suffix: api.get(f"/services/{sid}/states{s}"),
                      list_route=True))
        ops.append(Op(f"list_tasks_{label}", 1, lambda _, s=suffix: api.get(f"/services/{sid}/tasks{s}"),
                      list_route=True))
    return ops


CONVERSATION_LIST_REASON = ("states and tasks lists read the conversation's whole item collection in one Query: a "
                            "child's status depends on its service's (and a task's on its state's) end, which is "
                            "applied on read")


@dataclass
class Measured:
    round_trips: int
    calls: list[str]
    handler_ms: list[float] = field(default_factory=list)
    direct_ms: list[float] = field(default_factory=list)
    read_per_returned: float | None = None
    scanned: int | None = None
    returned: int | None = None
    capacity: float | None = None


def _backend() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]


def measure(api: Any, counter: Counter, op: Op, reps: int) -> Measured:
    """Time the API call through lambda_handler, then the very same DynamoDB calls made directly,
    from the very same table state (the table is copied before the API call and put back before
    the replay, untimed), so both take the same paths through the store."""
    result: Measured | None = None
    backend = _backend()
    for _ in range(reps + 1):  # the first run warms up and is not timed
        ctx = op.prepare()
        snapshot = copy.deepcopy(backend.tables[TABLE])
        counter.reset()
        # As timeit does: the collector is kept out of the timed sections (it runs in the untimed
        # parts in between), so neither side pays for garbage the other, or the snapshot, made.
        gc.disable()
        try:
            started = time.perf_counter()
            reply = op.call(ctx)
            handler = time.perf_counter() - started
        finally:
            gc.enable()
        if reply.status != op.expect:
            raise RuntimeError(f"{op.name}: expected {op.expect}, got {reply.status} {reply.text}")
        calls, stats = list(counter.calls), list(counter.stats)
        backend.tables[TABLE] = snapshot
        gc.disable()
        try:
            direct = counter.replay(calls)
        finally:
            gc.enable()
        if result is None:
            result = Measured(len(calls), [name for name, _ in calls])
            if op.list_route:
                scanned = sum(s["scanned"] or 0 for s in stats if s["operation"] == "Query")
                returned = len(reply.json)
                capacity = [s["capacity"] for s in stats if s["capacity"] is not None]
                result.scanned, result.returned = scanned, returned
                result.read_per_returned = round(scanned / returned, 3) if returned else None
                result.capacity = sum(capacity) if capacity else None
            continue
        result.handler_ms.append(handler * 1000)
        result.direct_ms.append(direct * 1000)
    assert result is not None
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------- scaling


SCALING = {
    "list_customer_services_all": "/customers/bench-customer/services?limit=100",
    "list_anonymous_services_all": "/services/anonymous/bench-contact?limit=100",
    "get_service_embedded": None,  # filled with the measured service id
}


def scaling(counter: Counter, api: Any, paths: dict[str, str], reps: int, unrelated_count: int) -> dict[str, Any]:
    """The same reads on two tables, interleaved call by call so that the machine's drift hits both
    alike: the measured table, and a twin holding the same items plus `unrelated_count` unrelated
    conversations."""
    from lib import settings, store
    from local import template

    client = store.client()
    twin = TABLE + "-with-unrelated"
    template.create_table(client, twin)
    copied = [item for page in client.get_paginator("scan").paginate(TableName=TABLE) for item in page["Items"]]
    for start in range(0, len(copied), 25):
        request = {twin: [{"PutRequest": {"Item": item}} for item in copied[start:start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    started = time.time()
    unrelated(client, unrelated_count, twin)
    insert_seconds = time.time() - started
    # moto keeps both tables in this very process: without this, every later request would pay for the
    # garbage collector walking the bulk-loaded items, a cost DynamoDB (another service) never puts on
    # a Lambda. The loaded items are never freed, so freezing them changes nothing else.
    gc.collect()
    gc.freeze()
    report: dict[str, Any] = {}
    for name, path in paths.items():
        samples: dict[str, list[float]] = {TABLE: [], twin: []}
        trips: dict[str, int] = {}
        for _ in range(reps + 1):  # the first round warms up (and builds the index cache) untimed
            for table in (TABLE, twin):
                settings.settings().table_name = table
                counter.reset()
                gc.disable()
                try:
                    began = time.perf_counter()
                    reply = api.get(path)
                    elapsed = (time.perf_counter() - began) * 1000
                finally:
                    gc.enable()
                assert reply.status == 200, reply.text
                samples[table].append(elapsed)
                trips[table] = len(counter.calls)
        settings.settings().table_name = TABLE
        before, after = median(samples[TABLE][1:]), median(samples[twin][1:])
        report[name] = {
            "unrelated_conversations": unrelated_count,
            "before": {"median_ms": round(before, 3), "round_trips": trips[TABLE]},
            "after": {"median_ms": round(after, 3), "round_trips": trips[twin]},
            "scaling_latency_ratio": round(after / before, 3),
            "scaling_round_trips_equal": trips[TABLE] == trips[twin],
        }
    report["insert_seconds"] = round(insert_seconds, 1)
    return report


# ---------------------------------------------------------------- cold start


def cold_start(runs: int) -> dict[str, Any]:
    """Median wall time of importing each handler module (and building its app) in fresh
    processes, against `import boto3` alone, same machine, same run, interleaved."""
    snippet = ("import time; t = time.perf_counter(); {statement}; "
               "print(time.perf_counter() - t)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_LAMBDA")}
    # As deployed (Makefile build-* targets): the project's modules carry compiled bytecode, like the
    # installed packages do. Without it every process compiles them first (here PYTHONDONTWRITEBYTECODE
    # is set, so nothing would ever be cached).
    subprocess.run([sys.executable, "-m", "compileall", "-q", "lib", "handlers"], cwd=ROOT, check=True)
    subjects = {"boto3": "import boto3"}
    for module in ("handlers.services", "handlers.states", "handlers.tasks"):
        subjects[module] = f"import {module} as m; m.app"
    # What any handler on this stack pays before its own code: boto3 + Powertools' validated REST
    # resolver (pydantic) + Logger + Metrics.
    subjects["stack floor (boto3 + Powertools resolver with validation, Logger, Metrics)"] = (
        "import boto3, aws_lambda_powertools.event_handler.openapi.params, aws_lambda_powertools.logging, "
        "aws_lambda_powertools.metrics")
    traced_env = {**env, "AWS_LAMBDA_FUNCTION_NAME": "bench", "POWERTOOLS_TRACE_DISABLED": "false"}
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    samples["handlers.services (tracing on)"] = []
    for _ in range(runs):
        for name, statement in subjects.items():
            samples[name].append(_timed_import(snippet.format(statement=statement), env))
        samples["handlers.services (tracing on)"].append(
            _timed_import(snippet.format(statement=subjects["handlers.services"]), traced_env))
    base = median(samples["boto3"])
    report: dict[str, Any] = {"runs": runs, "boto3_median_s": round(base, 4)}
    for name, values in samples.items():
        if name != "boto3":
            report[name] = {"median_s": round(median(values), 4), "ratio_to_boto3": round(median(values) / base, 3)}
    return report


def _timed_import(code: str, env: dict[str, str]) -> float:
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            check=True)
    return float(output.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- throughput


def throughput(quick: bool) -> dict[str, Any]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(PORT=str(port), TABLE_NAME="bench-throughput")
    server = subprocess.Popen([sys.executable, "-m", "local.server"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            line = server.stdout.readline()
            if "Context Services API on" in line or not line:
                break
        report = {}
        for clients in (1, 8):
            cycles = 5 if quick else (60 if clients == 1 else 20)
            output = subprocess.run(
                [sys.executable, "-m", "bench.load", "--url", f"http://127.0.0.1:{port}", "--clients", str(clients),
                 "--conversations", str(cycles), "--max-seconds", "20" if quick else "90"],
                cwd=ROOT, capture_output=True, text=True, check=True, env=env)
            report[f"{clients}_clients"] = json.loads(output.stdout.strip().splitlines()[-1])
        return report
    finally:
        server.terminate()
        server.wait(timeout=10)


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small run (< 1 min) that keeps the script working")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    reps = 3 if quick else 15
    unrelated_count = 1000 if quick else 10_000
    _environment()
    sys.path.insert(0, str(ROOT))

    from moto import mock_aws

    from lib import settings, store
    from local import embedded_dynamodb, template
    from tests.apiclient import Api

    embedded_dynamodb.faithful_updates()
    embedded_dynamodb.partition_scoped()
    started = time.time()
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "mode": "quick" if quick else "full",
        "command": "make bench" if not quick else "python -m bench.run --quick",
        "operations": {}, "lists": {}, "cold_start": {}, "scaling": {}, "throughput": {},
    }
    with mock_aws():
        store.client.cache_clear()
        settings.settings.cache_clear()
        template.create_table(store.client(), TABLE)
        counter = Counter(store.client())
        api = Api()
        data = {"active": conversation(api)}
        for n in range(4):
            conversation(api, completed=n % 2 == 0)
            conversation(api, customer=None, contact="bench-contact", completed=n % 2 == 1)
        api.post("/services_composite/start", {"services": [
            {"service": {"customer_id": "bench-composite", "service_type": "s"}, "state": {"state_type": "a"},
             "task": {"task_type": "t"}, "associate_state_task": True}]})
        for op in operations(api, data):
            measured = measure(api, counter, op, reps)
            entry = {
                "round_trips": measured.round_trips,
                "minimum_round_trips": op.minimum,
                "calls": measured.calls,
                "handler_median_ms": round(median(measured.handler_ms), 3),
                "direct_median_ms": round(median(measured.direct_ms), 3),
                "overhead_ratio": round(median(measured.handler_ms) / median(measured.direct_ms), 3),
            }
            if measured.round_trips > op.minimum:
                entry["above_minimum_because"] = op.reason or "(no reason recorded)"
            results["operations"][op.name] = entry
            if op.list_route:
                results["lists"][op.name] = {"items_read": measured.scanned, "items_returned": measured.returned,
                                             "items_read_per_returned": measured.read_per_returned,
                                             "consumed_capacity": measured.capacity}
                if measured.read_per_returned is not None and measured.read_per_returned > LISTS_TARGET:
                    results["lists"][op.name]["above_target_because"] = CONVERSATION_LIST_REASON
        paths = dict(SCALING, get_service_embedded=f"/services/{data['active']['service_id']}?active_states=true"
                     "&completed_states=true&active_tasks=true&completed_tasks=true&extensions=*")
        results["scaling"] = scaling(counter, api, paths, reps * 2, unrelated_count)
        for name in paths:
            if name in results["lists"]:
                for key in ("scaling_latency_ratio", "scaling_round_trips_equal"):
                    results["lists"][name][key] = results["scaling"][name][key]
        for missing in ("export_window", "purge"):
            results["scaling"][missing] = {"status": "not measured: the maintenance routes (§8) are not built yet"}
        results["purge"] = {"write_requests_per_deleted_item": None,
                            "status": "not measured: the maintenance routes (§8) are not built yet"}
    results["cold_start"] = cold_start(3 if quick else 7)
    results["throughput"] = throughput(quick)
    results["seconds"] = round(time.time() - started, 1)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))


def render(results: dict[str, Any]) -> str:
    lines = [f"Context Services benchmark ({results['mode']}, Python {results['machine']['python']}, "
             f"{results['machine']['cpus']} CPUs, {results['seconds']} s)", ""]
    lines.append(f"{'operation':42} {'trips':>5} {'min':>4} {'handler ms':>11} {'direct ms':>10} {'ratio':>6}")
    for name, op in results["operations"].items():
        flag = " *" if op["round_trips"] > op["minimum_round_trips"] else ""
        lines.append(f"{name:42} {op['round_trips']:>5} {op['minimum_round_trips']:>4} {op['handler_median_ms']:>11.2f} "
                     f"{op['direct_median_ms']:>10.2f} {op['overhead_ratio']:>6.2f}{flag}")
    lines += ["", "* above the minimum: see above_minimum_because in the JSON", ""]
    lines.append(f"{'list':42} {'read':>5} {'ret':>4} {'read/ret':>9}")
    for name, entry in results["lists"].items():
        ratio = entry["items_read_per_returned"]
        lines.append(f"{name:42} {entry['items_read']:>5} {entry['items_returned']:>4} "
                     f"{(f'{ratio:.2f}' if ratio is not None else '-'):>9}")
    lines += ["", f"{'scaling (0 -> N unrelated conversations)':42} {'ms before':>10} {'ms after':>9} {'ratio':>6} {'trips eq':>8}"]
    for name, entry in results["scaling"].items():
        if isinstance(entry, dict) and "before" in entry:
            lines.append(f"{name:42} {entry['before']['median_ms']:>10.2f} {entry['after']['median_ms']:>9.2f} "
                         f"{entry['scaling_latency_ratio']:>6.2f} {str(entry['scaling_round_trips_equal']):>8}")
    lines += ["", f"cold start (median of {results['cold_start']['runs']} fresh processes; "
                  f"import boto3 = {results['cold_start']['boto3_median_s']} s)"]
    for name, entry in results["cold_start"].items():
        if isinstance(entry, dict):
            lines.append(f"  {name[:60]:60} {entry['median_s']:.3f} s  ratio {entry['ratio_to_boto3']:.2f}")
    lines += ["", "local server throughput (informational)"]
    for name, entry in results["throughput"].items():
        lines.append(f"  {name:12} {entry['requests_per_second']:>7} req/s  p50 {entry['p50_ms']} ms  "
                     f"p99 {entry['p99_ms']} ms  errors {entry['errors']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
