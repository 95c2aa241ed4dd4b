"""What each operation costs on AWS (README, "What it costs"): `python -m scripts.costs`.

Runs every operation of the benchmark (bench/run.py) once on the embedded DynamoDB and accounts
for the request units DynamoDB would bill for it, from the items themselves:

* writes: each item written costs 1 WRU per started KB of the larger of its old and new size,
  twice inside a transaction (ConditionCheck included); each index the item enters, leaves, moves
  in, or whose projected attributes change costs the same for its index entry (a move is a delete
  and a put);
* reads: 1 RRU per started 4 KB of what a strongly consistent GetItem / BatchGetItem item / Query
  reads (all items a Query evaluates, summed per call), half for eventually consistent reads.

The calls are counted in the same run and compared with bench/results.json (the benchmark's
record), which gives the round trips a caller waits (its latency chain) and the handler's own time
for the Lambda estimate. Prices are the
public on-demand prices below (us-east-1), with the date they were taken; Lambda duration is an
estimate (see DURATION). Prints the Markdown table the README shows (`--json`: the measurements,
which `python -m bench.readme` turns into the README's cost section).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Public us-east-1 prices (USD), as published by AWS since DynamoDB's on-demand price cut of 2024-11-01;
# taken for this table on PRICES_DATE (not fetched by this script: it runs without network).
PRICES_DATE = "2025-06 (unchanged since 2024-11-01)"
PRICES = {
    "api_gateway_rest_per_million": 3.50,  # REST API, first 333 million requests a month
    "lambda_requests_per_million": 0.20,
    "lambda_arm_gb_second": 0.0000133334,  # arm64, first 7.5 billion GB-s a month
    "dynamodb_wru_per_million": 0.625,  # on-demand, standard table class
    "dynamodb_rru_per_million": 0.125,
    "dynamodb_storage_gb_month": 0.25,
    "dynamodb_pitr_gb_month": 0.20,
    "snapstart_cache_gb_second": 0.0000015046,
    "snapstart_restore_gb": 0.0001397998,
    "secrets_manager_secret_month": 0.40,
}
MEMORY_GB = 0.5  # template.yaml: MemorySize 512 (API functions)
# Lambda duration: what the handler adds on this machine (bench: handler minus direct DynamoDB time)
# plus DURATION ms per DynamoDB round trip in the region (a typical single-digit-ms in-region latency).
DURATION = 6.0


# ---------------------------------------------------------------- DynamoDB item sizes


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    """Bytes of an attribute value in DynamoDB JSON, by DynamoDB's item size rules."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: v}) for v in inner)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in inner.items())
    raise ValueError(kind)


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(k.encode("utf-8")) + value_size(v) for k, v in (item or {}).items())


# ---------------------------------------------------------------- indexes of the template


def _indexes() -> list[dict[str, Any]]:
    from local import template

    props = template.load()["Resources"]["ContextTable"]["Properties"]
    table_keys = [k["AttributeName"] for k in props["KeySchema"]]
    indexes = []
    for index in props.get("GlobalSecondaryIndexes", []) + props.get("LocalSecondaryIndexes", []):
        keys = [k["AttributeName"] for k in index["KeySchema"]]
        projection = index["Projection"]
        indexes.append({"name": index["IndexName"], "keys": keys, "table_keys": table_keys,
                        "type": projection["ProjectionType"], "include": projection.get("NonKeyAttributes", [])})
    return indexes


def index_entry(index: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any] | None:
    """The item's entry in an index (None when the item is not in that sparse index)."""
    if item is None or any(key not in item for key in index["keys"]):
        return None
    if index["type"] == "ALL":
        return item
    names = set(index["keys"]) | set(index["table_keys"]) | (set(index["include"]) if index["type"] == "INCLUDE" else set())
    return {k: v for k, v in item.items() if k in names}


def index_write_units(index: dict[str, Any], before: dict | None, after: dict | None) -> int:
    old, new = index_entry(index, before), index_entry(index, after)
    if old is None and new is None or old == new:
        return 0
    units = lambda entry: math.ceil(item_size(entry) / 1024)
    if old is None:
        return units(new)
    if new is None:
        return units(old)
    if [old[k] for k in index["keys"]] != [new[k] for k in index["keys"]]:
        return units(old) + units(new)  # moved: delete and put
    return units(new)


# ---------------------------------------------------------------- one operation


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return item["PK"]["S"], item["SK"]["S"]


def _table_items(backend: Any, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    items = {}
    for partition in backend.tables[table].items.values():
        for item in (partition.values() if isinstance(partition, dict) else [partition]):
            plain = json.loads(json.dumps(item.to_json()["Attributes"], default=str))
            items[_key(plain)] = plain
    return items


def _written_keys(name: str, params: dict[str, Any]) -> list[tuple[tuple[str, str], bool, bool]]:
    """(key, transactional, condition check only) of every item a write call names."""
    if name in ("PutItem",):
        return [(_key(params["Item"]), False, False)]
    if name in ("UpdateItem", "DeleteItem"):
        return [(_key(params["Key"]), False, False)]
    if name == "BatchWriteItem":
        found = []
        for requests in params["RequestItems"].values():
            for request in requests:
                body = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get("Key")
                found.append((_key(body), False, False))
        return found
    if name == "TransactWriteItems":
        found = []
        for entry in params["TransactItems"]:
            kind, action = next(iter(entry.items()))
            found.append((_key(action.get("Item") or action["Key"]), True, kind == "ConditionCheck"))
        return found
    return []


class Recorder:
    """DynamoDB calls of the handlers' client, with what they returned. A call's parameters and its
    result are paired in the thread that makes it: calls made in parallel (a state read with its
    tasks) finish in any order, and pairing them by order once gave one call's result to another's
    parameters (a consistent Query counted as an eventually consistent one, and back)."""

    def __init__(self, client: Any):
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self._pending: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        client.meta.events.register("provide-client-params.dynamodb.*", self._params)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self._lock:
            self._pending.setdefault(threading.get_ident(), []).append((model.name, copy.deepcopy(params)))

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        with self._lock:
            pending = self._pending.get(threading.get_ident()) or [(model.name, {})]
            name, params = pending.pop()
            self.calls.append((name, params, parsed))


def read_units(name: str, params: dict[str, Any], parsed: dict[str, Any]) -> float:
    consistent = bool(params.get("ConsistentRead"))
    factor = 1.0 if consistent else 0.5
    if name == "GetItem":
        return factor * max(1, math.ceil(item_size(parsed.get("Item")) / 4096))
    if name == "BatchGetItem":
        total = 0.0
        for table_items in parsed.get("Responses", {}).values():
            total += sum(max(1, math.ceil(item_size(i) / 4096)) for i in table_items)
        return factor * max(total, 1)
    if name == "Query":
        items = parsed.get("Items", [])
        size = sum(item_size(i) for i in items)
        scanned, count = parsed.get("ScannedCount", len(items)), parsed.get("Count", len(items))
        if count and scanned > count:  # a filter dropped some: count them at the average size
            size = size * scanned / count
        return factor * max(1, math.ceil(size / 4096))
    return 0.0


def account(backend: Any, table: str, recorder: Recorder, op: Any, ctx: Any, indexes: list[dict]) -> dict[str, Any]:
    before = _table_items(backend, table)
    recorder.calls.clear()
    reply = op.call(ctx)
    if reply.status != op.expect:
        raise RuntimeError(f"{op.name}: expected {op.expect}, got {reply.status} {reply.text}")
    after = _table_items(backend, table)
    wru = 0
    rru = 0.0
    table_written: set[tuple[str, str]] = set()
    for name, params, parsed in recorder.calls:
        rru += read_units(name, params, parsed)
        for key, transactional, check_only in _written_keys(name, params):
            size = max(item_size(before.get(key)), item_size(after.get(key)))
            wru += math.ceil(max(size, 1) / 1024) * (2 if transactional else 1)
            if not check_only:
                table_written.add(key)
    for key in table_written:
        for index in indexes:
            wru += index_write_units(index, before.get(key), after.get(key))
    return {"calls": [name for name, _, _ in recorder.calls], "wru": wru, "rru": rru}


def storage_per_conversation(backend: Any, table: str, service_id: str, indexes: list[dict]) -> int:
    """Bytes billed for one conversation: its items (+100 bytes each) and their index entries (+100)."""
    total = 0
    for (pk, _), item in _table_items(backend, table).items():
        if service_id not in pk:
            continue
        total += item_size(item) + 100
        for index in indexes:
            entry = index_entry(index, item)
            if entry is not None:
                total += item_size(entry) + 100
    return total


# ---------------------------------------------------------------- the table


def round_trips(row: dict[str, Any], measured: dict[str, Any]) -> int:
    """The round trips a caller waits: the latency chain bench/results.json measured (calls sent at
    once wait once); the number of calls for an operation it has no chain for."""
    chain = measured.get("latency_round_trips")
    return chain if isinstance(chain, int) else len(row["calls"])


def dollars_per_million(row: dict[str, Any], measured: dict[str, Any]) -> dict[str, float]:
    # The handler's own time: what it adds to the bare calls against a backend that answers at once.
    handler_overhead_ms = max(0.0, measured.get("zero_latency_added_us", 0) / 1000)
    duration_ms = handler_overhead_ms + DURATION * round_trips(row, measured)
    lambda_cost = PRICES["lambda_requests_per_million"] + duration_ms / 1000 * MEMORY_GB * PRICES["lambda_arm_gb_second"] * 1e6
    dynamodb = row["wru"] * PRICES["dynamodb_wru_per_million"] + row["rru"] * PRICES["dynamodb_rru_per_million"]
    api = PRICES["api_gateway_rest_per_million"]
    return {"duration_ms": duration_ms, "lambda": lambda_cost, "dynamodb": dynamodb, "api": api,
            "total": lambda_cost + dynamodb + api}


class SteppingClock:
    """A clock whose readings are the same every run: each reading a millisecond after the last."""

    def __init__(self, start_ms: int):
        self.ms = start_ms
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.ms += 1
            return self.ms

    def advance(self, ms: int) -> None:
        """Time passes (what an operation that waits for a deadline would sleep)."""
        with self._lock:
            self.ms += ms


CLOCK = SteppingClock(1_796_083_234_567)  # 2026-12-01T00:00:34.567Z: every digit significant, as a real clock's


def measure_operations(extra: Any = None) -> tuple[dict[str, dict[str, Any]], int]:
    """Every operation of the benchmark once on the embedded DynamoDB: {op: {"calls", "wru", "rru"}},
    and the bytes one benchmark conversation takes with its index entries. `extra(api, found)`: more
    operations (bench.operations.Op) to count after the benchmark's. Sets up the benchmark's
    environment and its own moto; what the functions print goes to stderr."""
    sys.path.insert(0, str(ROOT))
    from bench import harness

    harness.production_environment()  # the benchmark's set-up, before anything imports the project
    from lib import clock

    # The same clock readings every run: item sizes hold timestamps, durations and ids made from the
    # clock, and an item a few bytes either side of a KB boundary would cost a unit more or less from
    # one run to the next. Time still moves (a millisecond a reading, as writes that move a deadline
    # in an index key see it), and an operation that waits for a moment moves it (CLOCK.advance).
    clock.now_ms = CLOCK
    # What the functions print (request logs, EMF) is not this table's business: kept off stdout.
    os.environ.update({"POWERTOOLS_LOG_LEVEL": "CRITICAL", "POWERTOOLS_METRICS_DISABLED": "true"})
    from moto import mock_aws

    from bench import operations as bench_operations
    from lib.store import table as store_table
    from local import embedded_dynamodb, template

    embedded_dynamodb.faithful_updates()
    embedded_dynamodb.partition_scoped()
    indexes = _indexes()
    rows: dict[str, dict[str, Any]] = {}
    with mock_aws(), contextlib.redirect_stdout(sys.stderr):  # only the table on stdout
        template.create_table(harness.raw_client(), harness.TABLE)
        harness.grant(harness.TABLE)
        recorder = Recorder(store_table.reset_client())
        backend = bench_operations.backend()
        api = harness.TimedApi(sampled=False)
        found = bench_operations.build(api)
        for op in bench_operations.operations(api, found) + (extra(api, found) if extra else []):
            op.call(op.prepare())  # warm-up, as the benchmark does
            rows[op.name] = account(backend, harness.TABLE, recorder, op, op.prepare(), indexes)
        stored = storage_per_conversation(backend, harness.TABLE, found["active"]["service_id"], indexes)
    return rows, stored


def measure() -> dict[str, Any]:
    """Every benchmark operation once on the embedded DynamoDB: {"rows": {operation: {"calls", "wru",
    "rru"}}, "stored_bytes": one conversation with its index entries}. Needs a fresh process (the
    benchmark's environment is set before anything imports the project)."""
    rows, stored = measure_operations()
    return {"rows": rows, "stored_bytes": stored}


def recorded_operations() -> dict[str, Any]:
    """bench/results.json's operations: their calls, and the handler time the Lambda estimate uses."""
    return json.loads((ROOT / "bench" / "results.json").read_text())["operations"]


def table(rows: dict[str, dict[str, Any]], recorded: dict[str, Any]) -> list[str]:
    """The Markdown table of what each operation costs (the README's)."""
    lines = ["| operation | round trips | WRU | RRU | DynamoDB | Lambda | API Gateway | total |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        cost = dollars_per_million(row, recorded.get(name, {}))
        lines.append(f"| {name} | {round_trips(row, recorded.get(name, {}))} | {row['wru']} | {row['rru']:g} | ${cost['dynamodb']:.2f} | "
                     f"${cost['lambda']:.2f} | ${cost['api']:.2f} | ${cost['total']:.2f} |")
    return lines


def differing(rows: dict[str, dict[str, Any]], recorded: dict[str, Any]) -> list[str]:
    """Operations whose calls differ from bench/results.json (parallel calls come in any order)."""
    return [name for name, row in rows.items()
            if recorded.get(name, {}).get("calls") is not None
            and sorted(recorded[name]["calls"]) != sorted(row["calls"])]


def storage_month_per_million(stored_bytes: float) -> float:
    """USD a month for a million conversations of `stored_bytes` each (storage + PITR)."""
    return stored_bytes / 1e9 * 1e6 * (PRICES["dynamodb_storage_gb_month"] + PRICES["dynamodb_pitr_gb_month"])


def main() -> int:
    measured = measure()
    if "--json" in sys.argv[1:]:
        print(json.dumps(measured))
        return 0
    rows, stored, recorded = measured["rows"], measured["stored_bytes"], recorded_operations()
    print(f"Prices: us-east-1 on-demand, {PRICES_DATE}. Per million requests, USD. "
          f"Lambda: arm64, {int(MEMORY_GB * 1024)} MB, estimated duration.\n")
    print("\n".join(table(rows, recorded)))
    differ = differing(rows, recorded)
    if differ:
        print(f"\nThe calls of {len(differ)} operations differ from bench/results.json, which predates the code "
              f"measured here (rerun `make bench`): {', '.join(differ)}.")
    print(f"\nStorage: the benchmark's conversation (service, 3 states, 4 tasks, attached data) takes {stored} bytes "
          f"with its index entries: ${storage_month_per_million(stored):.2f} a month per million conversations "
          "kept (storage + PITR).")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sys.exit(main())
