"""Journeys for the viewer's tests, written into a running local server.

Small journeys go through the API, as a client writes them. The big ones (a customer with 200
services; a service with 1,000 states and 2,000 tasks) would take thousands of calls, minutes on the
shared 2-core machine, so they are copied: the API writes one real element of each kind, and this
module stores copies of those items with new ids and times into the local server's embedded
DynamoDB, through the store's own item types (so keys and index keys are the store's), then moves
the service's id counters past them as the store would have. What the viewer then reads comes
from the API as usual.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import boto3

from lib.store import items as store_items
from lib.store import keys as store_keys
from lib.store.codec import encode_item
from local import events

BASE = "/genesys/1/cs"


class Client:
    """The API over HTTP, with optional tenancy / principal headers."""

    def __init__(self, url: str, headers: dict[str, str] | None = None):
        self.url = url
        self.headers = headers or {}

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + BASE + path, data=data, method=method,
                                         headers={**self.headers, **(headers or {}), "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                text = reply.read()
                return reply.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read()
            return error.code, json.loads(text) if text else None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.call(method, path, body)
        assert status < 300, (method, path, status, data)
        return data


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def small_journey(api: Client, customer: str, service_type: str, ended: bool = False, attached: bool = True) -> str:
    """A service with two states (the second after the first), a task in each, a task in no state."""
    extra = {"channel": "ivr", "profile": {"tier": "gold", "tags": ["a", "b"], "score": 7}} if attached else {}
    sid = api.ok("POST", "/services/start", {"customer_id": customer, "service_type": service_type,
                                              "est_duration": 600, **extra})["service_id"]
    api.ok("POST", f"/services/{sid}/states/start", {"state_type": "identify", "est_duration": 30, "step": 1})
    api.ok("POST", f"/services/{sid}/tasks/start", {"task_type": "lookup", "state_id": 1, "crm": {"id": 42}})
    api.ok("POST", f"/services/{sid}/states/transition",
           {"from": {"state_id": 1, "disposition": "identified", "disposition_desc": "caller known"},
            "to": {"state_type": "payment"}, "media_type": "voice"})
    api.ok("POST", f"/services/{sid}/tasks/start", {"task_type": "card", "state_id": 2})
    api.ok("POST", f"/services/{sid}/tasks/start", {"task_type": "survey"})
    if ended:
        api.ok("POST", f"/services/{sid}/end", {"disposition": "paid", "disposition_desc": "all good"})
    return sid


class Store:
    """The local server's embedded DynamoDB, for copying items the API wrote."""

    def __init__(self, endpoint: str, table: str):
        self.client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=events.LOCAL_REGION,
                                   aws_access_key_id="local", aws_secret_access_key="local")
        self.table = table

    def read(self, pk: str, sk: str) -> Any:
        return store_items.decode(self.client.get_item(TableName=self.table, Key={"PK": {"S": pk}, "SK": {"S": sk}})["Item"])

    def write(self, entities: list[Any]) -> None:
        for start in range(0, len(entities), 25):
            requests = [{"PutRequest": {"Item": encode_item(e.to_item())}} for e in entities[start:start + 25]]
            self.client.batch_write_item(RequestItems={self.table: requests})


def many_services(api: Client, store: Store, tenant: str, customer: str, count: int) -> list[str]:
    """`count` services of one customer, a minute apart, every fifth one completed: one started
    through the API, the others copies of it."""
    first = api.ok("POST", "/services/start", {"customer_id": customer, "service_type": "bulk", "est_duration": 60})["service_id"]
    template = store.read(store_keys.conversation_pk(tenant, first), store_keys.SERVICE_SK)
    base_ms = template.started_ms - count * 60_000
    copies, ids = [], [first]
    for n in range(1, count):
        started = base_ms + n * 60_000
        service_id = str(int(first) - count + n)
        update = {"service_id": service_id, "started_ms": started, "started": {**template.started, "timestamp": iso(started)},
                  "service_type": f"bulk-{n % 3}", "last_write_ms": started}
        if n % 5 == 0:
            update.update(completed_ms=started + 30_000, completed={"timestamp": iso(started + 30_000)})
        copies.append(template.model_copy(update=update))
        ids.append(service_id)
    store.write(copies)
    return ids


def big_service(api: Client, store: Store, tenant: str, customer: str, states: int, tasks_per_state: int) -> str:
    """A service with `states` states, each after the previous one, and `tasks_per_state` tasks in
    each: the API writes the first state and task, the rest are copies; the last state is active."""
    sid = api.ok("POST", "/services/start", {"customer_id": customer, "service_type": "big"})["service_id"]
    api.ok("POST", f"/services/{sid}/states/start", {"state_type": "step"})
    api.ok("POST", f"/services/{sid}/tasks/start", {"task_type": "work", "state_id": 1})
    api.ok("POST", f"/services/{sid}/states/transition", {"from": {"state_id": 1, "disposition": "done"},
                                                          "to": {"state_type": "step"}})
    pk = store_keys.conversation_pk(tenant, sid)
    state = store.read(pk, store_keys.child_sk("state", 1))
    task = store.read(pk, store_keys.child_sk("task", 1))
    start = state.started_ms
    copies: list[Any] = []
    task_id = 0
    for n in range(1, states + 1):
        begin = start + (n - 1) * 1000
        last = n == states
        fields = {"state_id": n, "previous_state_id": n - 1 or None, "started_ms": begin,
                  "started": {**state.started, "timestamp": iso(begin)}, "state_type": f"step-{n % 7}"}
        if last:
            fields.update(completed=None, completed_ms=None, disposition=None)
        else:
            fields.update(completed={**state.completed, "timestamp": iso(begin + 1000)}, completed_ms=begin + 1000)
        copies.append(state.model_copy(update={**fields, "attached": tasks_per_state}))
        for k in range(tasks_per_state):
            task_id += 1
            task_begin = begin + 100 * (k + 1)
            task_fields = {"task_id": task_id, "state_id": n, "started_ms": task_begin,
                           "started": {**task.started, "timestamp": iso(task_begin)}, "task_type": f"work-{k}"}
            if last:
                task_fields.update(completed=None, completed_ms=None)
            else:
                task_fields.update(completed={**task.completed, "timestamp": iso(task_begin + 300)},
                                   completed_ms=task_begin + 300)
            copies.append(task.model_copy(update=task_fields))
    store.write(copies)
    store.client.update_item(TableName=store.table, Key={"PK": {"S": pk}, "SK": {"S": store_keys.SERVICE_SK}},
                             UpdateExpression="SET state_seq = :s, task_seq = :t",
                             ExpressionAttributeValues={":s": {"N": str(states)}, ":t": {"N": str(task_id)}})
    return sid


def wait_until(condition, timeout: float = 30, step: float = 0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")
