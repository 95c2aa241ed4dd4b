"""The benchmark's data, built through the public handlers (lambda_handler with API Gateway events),
never through lib internals: the store's layout may change, the contract does not.

The one exception is `clone_tenant`, which copies raw items of a conversation built through the
handlers into other tenants by rewriting the tenant header's value wherever it appears: unrelated
data in bulk, at DynamoDB's speed rather than the handlers'. It assumes only that a tenant's items
carry its header value in their keys (it checks that the copies have keys of their own).
"""

from __future__ import annotations

from typing import Any


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
    service_id = expect(api.post("/services/start", body), 201)["service_id"]
    base = f"/services/{service_id}"
    state = expect(api.post(f"{base}/states/start", {"state_type": "identify", "step": 1}), 201)["state_id"]
    task_in_state = expect(api.post(f"{base}/tasks/start", {"task_type": "lookup", "state_id": state}), 201)["task_id"]
    expect(api.post(f"{base}/tasks/{task_in_state}/end", {"disposition": "found"}), 204)
    second = expect(api.post(f"{base}/states/transition",
                             {"from": {"state_id": state}, "to": {"state_type": "verify"}}), 201)
    expect(api.post(f"{base}/tasks/start", {"task_type": "otp", "state_id": second["state_id"], "otp": "sent"}), 201)
    third = expect(api.post(f"{base}/states/transition",
                            {"from": {"state_id": second["state_id"]}, "to": {"state_type": "pay"}}), 201)["state_id"]
    active_task = expect(api.post(f"{base}/tasks/start", {"task_type": "charge", "state_id": third}), 201)["task_id"]
    expect(api.post(f"{base}/tasks/start", {"task_type": "survey"}), 201)
    if completed:
        expect(api.post(f"{base}/end", {"disposition": "done"}), 204)
    return {"service_id": service_id, "state_id": third, "task_id": active_task, "first_state": state}


def expect(reply: Any, status: int) -> Any:
    if reply.status != status:
        raise RuntimeError(f"expected {status}, got {reply.status}: {reply.text[:500]}")
    return reply.json


COMPOSITE_CUSTOMER = "growth-conversation"


def composite_body(customer: str, state_type: str = "reuse", task_type: str = "t") -> dict[str, Any]:
    return {"services": [{"service": {"customer_id": customer, "service_type": "growth"},
                          "state": {"state_type": state_type}, "task": {"task_type": task_type},
                          "associate_state_task": True}]}


def big_conversation(api: Any, size: int, customer: str = COMPOSITE_CUSTOMER, note: str = "") -> dict[str, Any]:
    """A conversation of `size` states and `size` tasks: created by a composite start (service,
    state 1 of type "reuse", task 1 in it), then states 2..size each with one task in it. Every
    even-numbered state is ended by the transition that starts the next one, which completes its
    task too (the cascade). `note` is attached data on every state and task after the first."""
    first = expect(api.post("/services_composite/start", composite_body(customer)), 200)["services"][0]
    service_id = first["service_id"]
    base = f"/services/{service_id}"
    n = 2
    while n <= size:
        state = expect(api.post(f"{base}/states/start", {"state_type": f"s{n}", "n": n, "note": note}), 201)["state_id"]
        expect(api.post(f"{base}/tasks/start", {"task_type": f"t{n}", "state_id": state, "n": n, "note": note}), 201)
        if n + 1 <= size:
            following = expect(api.post(f"{base}/states/transition", {
                "from": {"state_id": state, "disposition": "done"},
                "to": {"state_type": f"s{n + 1}"}, "note": note}), 201)["state_id"]
            expect(api.post(f"{base}/tasks/start", {"task_type": f"t{n + 1}", "state_id": following, "n": n + 1,
                                                    "note": note}), 201)
        else:
            expect(api.post(f"{base}/states/{state}/end", {"disposition": "done"}), 204)
        n += 2
    return {"service_id": service_id, "state_id": first["state_id"], "task_id": first["task_id"], "customer": customer}


def customer_services(api: Any, customer: str, count: int) -> list[str]:
    """`count` services of one customer, each with a state and a task in it; every even-numbered
    service is ended (with them)."""
    ids = []
    for n in range(1, count + 1):
        service_id = expect(api.post("/services/start", {"customer_id": customer, "service_type": "growth", "n": n}),
                            201)["service_id"]
        state = expect(api.post(f"/services/{service_id}/states/start", {"state_type": "a"}), 201)["state_id"]
        expect(api.post(f"/services/{service_id}/tasks/start", {"task_type": "b", "state_id": state}), 201)
        if n % 2 == 0:
            expect(api.post(f"/services/{service_id}/end", {}), 204)
        ids.append(service_id)
    return ids


# ---------------------------------------------------------------- bulk copies into other tenants


def _rewrite(value: Any, old: str, new: str) -> Any:
    """An AttributeValue with `old` replaced by `new` in every string it holds."""
    if isinstance(value, dict):
        if "S" in value:
            return {"S": value["S"].replace(old, new)}
        if "SS" in value:
            return {"SS": [s.replace(old, new) for s in value["SS"]]}
        if "M" in value:
            return {"M": {k: _rewrite(v, old, new) for k, v in value["M"].items()}}
        if "L" in value:
            return {"L": [_rewrite(v, old, new) for v in value["L"]]}
    return value


def tenant_items(client: Any, table: str, marker: str) -> list[dict[str, Any]]:
    """Raw items whose keys carry `marker` (a tenant header value)."""
    items = [item for page in client.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]
    return [item for item in items if marker in item["PK"].get("S", "")]


def clone_tenant(client: Any, source: list[dict[str, Any]], marker: str, copies: int, table: str,
                 name: str = "bench-unrelated-{:06d}") -> int:
    """Write `copies` copies of `source` (raw items), each with `marker` replaced by another tenant
    name; returns the number of items written."""
    if not source:
        raise RuntimeError(f"no item carries the tenant {marker!r} in its key: cannot copy it into other tenants")
    written = 0
    batch: list[dict[str, Any]] = []
    for n in range(copies):
        tenant = name.format(n)
        for item in source:
            copy = {key: _rewrite(value, marker, tenant) for key, value in item.items()}
            if copy["PK"] == item["PK"]:
                raise RuntimeError("a copied item kept its key: the tenant is not part of it")
            batch.append({"PutRequest": {"Item": copy}})
            if len(batch) == 25:
                written += _write(client, table, batch)
                batch = []
    if batch:
        written += _write(client, table, batch)
    return written


def _write(client: Any, table: str, batch: list[dict[str, Any]]) -> int:
    request: dict[str, Any] = {table: batch}
    while request:
        request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return len(batch)


# Offsets between a service id and its copies: multiples of a number with many small factors, so
# that anything derived from the id by a small modulus (index shards) is the same for the copy.
ID_STEP = 2**10 * 3**2 * 5 * 7


def clone_services(client: Any, table: str, service_ids: list[str], copies: int) -> list[str]:
    """Copy the raw items of the conversations `service_ids` (built through the handlers) `copies`
    times in the same tenant, each copy under a new service id (the old id plus a multiple of
    ID_STEP, as long), replacing the id wherever it appears; returns the new ids. For the
    maintenance cases' 10,000 conversations: the handlers build the first 1,000."""
    import re

    known = set(service_ids)
    items = [item for page in client.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]
    owned: list[tuple[str, dict[str, Any]]] = []
    for item in items:
        found = [run for run in re.findall(r"\d{6,}", item["PK"].get("S", "")) if run in known]
        if found:
            owned.append((found[0], item))
    taken = set(known)
    created: list[str] = []
    batch: list[dict[str, Any]] = []
    written = 0
    for copy_number in range(1, copies + 1):
        renamed: dict[str, str] = {}
        for service_id in service_ids:
            new = int(service_id) + copy_number * ID_STEP
            while str(new) in taken:
                new += ID_STEP * (copies + 1)
            if len(str(new)) != len(service_id):
                raise RuntimeError(f"a copy of service {service_id} would change the id's length")
            taken.add(str(new))
            renamed[service_id] = str(new)
        created += renamed.values()
        for service_id, item in owned:
            clone = {key: _rewrite(value, service_id, renamed[service_id]) for key, value in item.items()}
            batch.append({"PutRequest": {"Item": clone}})
            if len(batch) == 25:
                written += _write(client, table, batch)
                batch = []
    if batch:
        written += _write(client, table, batch)
    return created


def copy_table(client: Any, source: str, target: str) -> int:
    """Every raw item of `source` into `target` (same key schema)."""
    items = [item for page in client.get_paginator("scan").paginate(TableName=source) for item in page["Items"]]
    for start in range(0, len(items), 25):
        _write(client, target, [{"PutRequest": {"Item": item}} for item in items[start:start + 25]])
    return len(items)
