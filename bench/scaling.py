"""Scaling: the same reads on the measured table and on a twin holding the same items plus N
unrelated conversations, interleaved request by request so that the machine's drift hits both.

The unrelated conversations are copies, in N other tenants, of one conversation (a service, two
states, two tasks) built through the handlers in a tenant of its own (bench/data.clone_tenant).
Both tables are moto objects swapped in under the name the handlers use.
"""

from __future__ import annotations

import copy
import gc
import time
from typing import Any

from bench import data
from bench.calls import TRACKER
from bench.harness import TABLE, label_case, median, raw_client, settle
from bench.operations import backend

SOURCE_TENANT = "bench-unrelated-src"


def _source(api_class: Any) -> None:
    api = api_class(headers={"ContactCenterId": SOURCE_TENANT})
    service_id = data.expect(api.post("/services/start", {"customer_id": "other", "service_type": "billing"}),
                             201)["service_id"]
    for n in (1, 2):
        state = data.expect(api.post(f"/services/{service_id}/states/start", {"state_type": f"s{n}"}), 201)
        data.expect(api.post(f"/services/{service_id}/tasks/start",
                             {"task_type": f"t{n}", "state_id": state["state_id"]}), 201)


def scaling(api: Any, paths: dict[str, str], reps: int, unrelated_count: int) -> dict[str, Any]:
    moto = backend()
    client = raw_client()
    _source(type(api))
    source = data.tenant_items(client, TABLE, SOURCE_TENANT)
    measured = moto.tables[TABLE]
    twin_name = TABLE + "-with-unrelated"
    moto.tables[twin_name] = copy.deepcopy(measured)
    moto.tables[twin_name].name = twin_name
    started = time.time()
    written = data.clone_tenant(client, source, SOURCE_TENANT, unrelated_count, twin_name)
    insert_seconds = time.time() - started
    twin = moto.tables.pop(twin_name)
    settle()
    report: dict[str, Any] = {}
    try:
        for name, path in paths.items():
            samples: dict[str, list[float]] = {"before": [], "after": []}
            walls: dict[str, list[float]] = {"before": [], "after": []}
            trips: dict[str, int] = {}
            label_case(f"scaling.{name}")
            for rep in range(reps + 1):  # the first round warms up (and builds the index cache) untimed
                for label in (("before", "after") if rep % 2 == 0 else ("after", "before")):
                    moto.tables[TABLE] = measured if label == "before" else twin
                    TRACKER.start()
                    api.reset()
                    gc.disable()
                    try:
                        reply = api.get(path)
                    finally:
                        gc.enable()
                    calls = TRACKER.stop()
                    if reply.status != 200:
                        raise RuntimeError(f"scaling {name}: {reply.status} {reply.text[:300]}")
                    if rep:
                        samples[label].append(api.cpu * 1000)
                        walls[label].append(api.wall * 1000)
                    trips[label] = len(calls)
            before, after = median(samples["before"]), median(samples["after"])
            report[name] = {
                "unrelated_conversations": unrelated_count,
                "before": {"median_ms": round(before, 3), "round_trips": trips["before"]},
                "after": {"median_ms": round(after, 3), "round_trips": trips["after"]},
                "scaling_latency_ratio": round(after / before, 3),
                "scaling_round_trips_equal": trips["before"] == trips["after"],
                "wall_ms_before_after": [round(median(walls["before"]), 3), round(median(walls["after"]), 3)],
            }
    finally:
        moto.tables[TABLE] = measured
    report["insert_seconds"] = round(insert_seconds, 1)
    report["unrelated_items_written"] = written
    report["unrelated_items_per_conversation"] = len(source)
    return report
