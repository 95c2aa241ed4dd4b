"""Where the writes of many service starts land: write units per partition of the table and of each
index, for docs/DESIGN.md's scale section ("Scale on paper").

Each workload runs once through the handlers on moto, in a table of its own; every item a request
writes is compared before and after, and its write units are charged to the partition that takes
them (scripts/costs.py's accounting: 1 unit per started KB of the larger version, twice inside a
transaction, ConditionCheck included; each global index entry added, changed or removed costs its
own units in the index partition it is in, a move both in the old and the new one; local indexes
live in the table's partition). Partitions are named by kind (bench/partitions.KINDS), so one
conversation's figures say what every conversation does.

From the units per conversation on one partition of each kind, the rate at which it reaches
DynamoDB's per-partition limit (1,000 write units a second) follows: for a kind spread over a
tenant's SHARDS shards, rate × tenant share ÷ SHARDS conversations a second land on one shard; for the
due-work index, spread over SHARDS shards for all tenants together, rate × share with an
auto-complete ÷ SHARDS; a conversation's or an owner's partition takes what one conversation or one
owner writes, whatever the total.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

WRITE_LIMIT = 1000  # write units a second per partition (DynamoDB)
READ_LIMIT = 3000  # read units a second per partition (DynamoDB)
SHARDS = 8  # the default of INDEX_SHARDS and DUE_SHARDS (lib/settings.py; the benchmark runs with the defaults)
# (name, the whole conversation or its start only, with auto_complete_after)
WORKLOADS = (("service start", False, False), ("service start with auto-complete", False, True),
             ("conversation", True, False), ("conversation with auto-complete", True, True))
# (pattern of a partition key, kind, how it is spread)
KINDS = [
    (r"^DUE#A#\d+$", "due work, auto-completions (GSI5)", "all tenants: SHARDS shards"),
    (r"^DUE#E#\d+$", "due work, erasures (GSI5)", "all tenants: SHARDS shards"),
    (r"#S#\d+$", "a tenant's services by start time (GSI3)", "per tenant: SHARDS shards"),
    (r"#E#\d+$", "a tenant's services by end time (GSI4)", "per tenant: SHARDS shards"),
    (r"#C#\d+$", "a conversation (table and its local indexes)", "per conversation"),
    (r"#(CU|AN)T#", "an owner's self-completing services (GSI6)", "per customer / contact key"),
    (r"#(CU|AN)[AC]#", "an owner's services by status (GSI2)", "per customer / contact key"),
    (r"#(CU|AN)#", "an owner's services (GSI1)", "per customer / contact key"),
    (r"^IDEMPOTENCY#", "an idempotency record", "per key"),
    (r"#COMPOSITE#", "a composite lock", "per (customer, contact key, type)"),
]


def kind_of(store: str, pk: str) -> str:
    for pattern, kind, _ in KINDS:
        if re.search(pattern, pk):
            return kind
    return f"other ({store})"


def spread_of(kind: str) -> str:
    return next((spread for _, name, spread in KINDS if name == kind), "unknown")


def _requests(api: Any, customer: str, whole: bool, auto_complete: bool) -> Any:
    """A service start, or the load run's whole conversation (bench/load.py): the requests one after
    the other (a generator: each step runs when the caller asks for it)."""
    from bench import data

    body: dict[str, Any] = {"customer_id": customer, "service_type": "scale"}
    if auto_complete:
        body["auto_complete_after"] = 3600
    service_id = data.expect((yield lambda: api.post("/services/start", body)), 201)["service_id"]
    if not whole:
        return
    base = f"/services/{service_id}"
    data.expect((yield lambda: api.get(base)), 200)
    state = data.expect((yield lambda: api.post(f"{base}/states/start", {"state_type": "first"})), 201)["state_id"]
    task = data.expect((yield lambda: api.post(f"{base}/tasks/start", {"task_type": "work", "state_id": state})),
                       201)["task_id"]
    data.expect((yield lambda: api.get(f"/customers/{customer}/services?limit=20")), 200)
    data.expect((yield lambda: api.post(f"{base}/tasks/{task}/end", {})), 204)
    data.expect((yield lambda: api.post(f"{base}/states/transition",
                                        {"from": {"state_id": state}, "to": {"state_type": "next"}})), 201)
    data.expect((yield lambda: api.get(f"{base}?active_states=true&active_tasks=true")), 200)
    data.expect((yield lambda: api.post(f"{base}/end", {})), 204)


def written(calls: list[Any], before: dict, after: dict,
            indexes: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """Write units per (table or index, partition key) of `calls`, from the items before and after."""
    from scripts.costs import _written_keys, index_entry, item_size

    units: Counter[tuple[str, str]] = Counter()
    changed = set()
    for call in calls:
        for key, transactional, check_only in _written_keys(call.operation, call.params):
            size = max(item_size(before.get(key)), item_size(after.get(key)))
            units[("table", key[0])] += math.ceil(max(size, 1) / 1024) * (2 if transactional else 1)
            if not check_only:
                changed.add(key)
    for key in changed:
        old_item, new_item = before.get(key), after.get(key)
        for index in indexes:
            old, new = index_entry(index, old_item), index_entry(index, new_item)
            if old == new:
                continue
            local = index["name"].startswith("LSI")
            for entry, other in ((old, new), (new, old)):
                if entry is None:
                    continue
                pk = entry[index["keys"][0]]["S"] if not local else key[0]
                moved = other is None or [entry[k] for k in index["keys"]] != [other[k] for k in index["keys"]]
                if entry is new or moved:  # a changed entry is written once, a moved one in both places
                    units[("table" if local else index["name"], pk)] += math.ceil(item_size(entry) / 1024)
    return units


def measure(api_class: Any) -> dict[str, Any]:
    """Write units per partition kind for each workload, and what 10,000 starts a second make of them."""
    from bench.calls import TRACKER
    from bench.harness import TABLE, grant, raw_client
    from bench.operations import backend
    from local import template
    from scripts.costs import _indexes, _table_items

    moto = backend()
    indexes = _indexes()
    saved = moto.tables.pop(TABLE)
    workloads: dict[str, Any] = {}
    try:
        for name, whole, auto in WORKLOADS:
            template.create_table(raw_client(), TABLE, stream=False)
            grant(TABLE)
            api = api_class(headers={"ContactCenterId": "scale"}, sampled=False)
            units: Counter[tuple[str, str]] = Counter()
            steps = _requests(api, "scale-customer", whole, auto)
            requests, reply = 0, None
            while True:
                try:
                    step = steps.send(reply)
                except StopIteration:
                    break
                before = _table_items(moto, TABLE)
                TRACKER.start()
                reply = step()
                calls = TRACKER.stop()
                units += written(calls, before, _table_items(moto, TABLE), indexes)
                requests += 1
            kinds: dict[str, dict[str, Any]] = {}
            for (store, pk), value in units.items():
                kind = kind_of(store, pk)
                entry = kinds.setdefault(kind, {"stores": set(), "partitions": set(), "units": 0})
                entry["stores"].add(store)
                entry["partitions"].add((store, pk))
                entry["units"] += value
            workloads[name] = {"requests": requests, "write_units": sum(units.values()),
                               "by_kind": {kind: {"write_units_per_conversation": e["units"],
                                                  "partitions_per_conversation": len(e["partitions"]),
                                                  "in": sorted(e["stores"]), "spread": spread_of(kind)}
                                           for kind, e in sorted(kinds.items(), key=lambda item: -item[1]["units"])}}
            moto.tables.pop(TABLE)
    finally:
        moto.tables[TABLE] = saved
    return {"workloads": workloads, "shards": SHARDS, "write_limit": WRITE_LIMIT, "read_limit": READ_LIMIT,
            "at_10000_per_second": at_rate(workloads, 10_000)}


def at_rate(workloads: dict[str, Any], rate: int) -> dict[str, Any]:
    """Per workload and sharded kind: write units a second on the hottest shard when `rate`
    conversations a second start, spread evenly over many tenants, when one tenant starts half of
    them, and the tenant share at which a shard reaches the limit."""
    found: dict[str, Any] = {}
    for name, workload in workloads.items():
        rows = {}
        for kind, entry in workload["by_kind"].items():
            units = entry["write_units_per_conversation"] / max(1, entry["partitions_per_conversation"])
            if entry["spread"].startswith("per tenant"):
                half = rate * 0.5 / SHARDS * units
                limit_share = WRITE_LIMIT * SHARDS / (rate * units)
                rows[kind] = {"one_tenant_half_wcu": round(half), "one_tenant_half_share": round(half / WRITE_LIMIT, 3),
                              "single_tenant_wcu": round(rate / SHARDS * units),
                              "tenant_share_at_limit": round(limit_share, 3),
                              "hundred_equal_tenants_wcu": round(rate / 100 / SHARDS * units, 1)}
            elif entry["spread"].startswith("all tenants"):
                every = rate / SHARDS * units
                rows[kind] = {"wcu": round(every), "share": round(every / WRITE_LIMIT, 3),
                              "shards_needed": math.ceil(rate * units / WRITE_LIMIT)}
            else:
                rows[kind] = {"write_units_per_conversation": entry["write_units_per_conversation"],
                              "conversations_a_second_at_limit_per_partition": round(WRITE_LIMIT / units, 1)}
        found[name] = rows
    return found
