"""Varied conversations created through the API, for the import's round trips (tests/api, tests/http):
customer and anonymous services, active and completed (by an end, by auto-complete, by cascade),
attached data on every kind of element (nested, unicode, numbers), associations (anonymous to a
customer, one customer to another), every way of setting an expiration, composite starts, business
attributes as numbers and as strings. Works with any client of tests.verbs.Verbs whose replies have
`.status` and `.json`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

T = "2026-03-0{day}T{hour:02d}:{minute:02d}:00.000Z"


def at(day: int, hour: int = 0, minute: int = 0) -> str:
    return T.format(day=day, hour=hour, minute=minute)


def _ok(reply: Any, status: int) -> Any:
    assert reply.status == status, f"{reply.status}: {getattr(reply, 'text', reply.json)}"
    return reply.json


def create(client: Any, headers: dict[str, str], pass_time: Callable[[float], None]) -> dict[str, str]:
    """Creates the conversations in the tenant of `headers`; returns their service ids by role.
    `pass_time(seconds)` lets time pass (a frozen clock moved, or a real sleep)."""
    h = {"headers": headers}

    def post(path: str, body: Any = None, status: int = 201) -> Any:
        return _ok(client.post(path, body, **h), status)

    ids: dict[str, str] = {}
    # A customer's completed service: transition, tasks in and out of states, dispositions, attached data
    # of every JSON kind, an active task cascaded by the service's end.
    ids["completed"] = sid = post("/services/start", {
        "customer_id": "cust-1", "contact_key": "ck-1", "service_type": "billing", "est_duration": 600,
        "timestamp": at(1, 9), "session_id": "sess-1", "interaction_id": 12345, "application_type": 7,
        "application_id": 9, "resource_type": "agent", "resource_id": 11, "media_type": "voice",
        "channel": "ivr", "score": 1.5, "big": 9007199254740993, "nested": {"a": [1, "ü", None, True]},
        "émoji": "☎"})["service_id"]
    post(f"/services/{sid}/states/start", {"state_type": "identify", "timestamp": at(1, 9, 1), "step": 1})
    post(f"/services/{sid}/tasks/start", {"task_type": 3, "state_id": 1, "timestamp": at(1, 9, 2), "tool": "crm"})
    post(f"/services/{sid}/states/transition", {"from": {"state_id": 1, "disposition": "ok", "disposition_desc": "id'd"},
                                               "to": {"state_type": "solve", "est_duration": 60},
                                               "timestamp": at(1, 9, 5), "media_type": "chat", "why": "next"})
    post(f"/services/{sid}/tasks/start", {"task_type": "lookup", "state_id": 2, "timestamp": at(1, 9, 6)})
    post(f"/services/{sid}/tasks/start", {"task_type": "survey", "timestamp": at(1, 9, 7), "q": [1, 2]})
    post(f"/services/{sid}/tasks/2/end", {"timestamp": at(1, 9, 8), "disposition": 4, "found": True}, 204)
    _ok(client.put(f"/services/{sid}/states/2/extensions/note/merge", {"by": "agent", "n": 2}, **h), 200)
    _ok(client.put(f"/services/{sid}/tasks/3/extensions/legacy", ["x", 1], **h), 200)
    post(f"/services/{sid}/end", {"timestamp": at(1, 10), "disposition": "resolved", "disposition_desc": "done",
                                  "resource_id": 12, "closing": {"code": 1}}, 204)

    # An anonymous active service with an explicit ttl, a state with an active task, extension changes.
    ids["anonymous"] = sid = post("/services/start", {"contact_key": "+33 6 12 34 56 78", "service_type": 2,
                                                      "timestamp": at(2, 8), "ttl": 86400 * 400, "lang": "fr"})["service_id"]
    post(f"/services/{sid}/states/start", {"state_type": 1, "timestamp": at(2, 8, 1), "est_duration": 30})
    post(f"/services/{sid}/tasks/start", {"task_type": "callback", "state_id": 1, "timestamp": at(2, 8, 2)})
    _ok(client.put(f"/services/{sid}/extensions/profile/merge", {"vip": True, "tier": {"level": 3}}, **h), 200)
    _ok(client.put(f"/services/{sid}/extensions/lang", "de", **h), 200)

    # Anonymous, then associated with a customer (keeps its contact key), then given an expiration time.
    ids["associated"] = sid = post("/services/start", {"contact_key": "ck-2", "timestamp": at(2, 9)})["service_id"]
    post(f"/services/{sid}/states/start", {"state_type": "greet", "timestamp": at(2, 9, 1)})
    post(f"/services/{sid}/states/1/end", {"timestamp": at(2, 9, 3), "disposition_desc": "hello"}, 204)
    post(f"/customers/cust-2/services/{sid}", {"service_type": "sales", "source": "web"}, 204)
    _ok(client.put(f"/services/{sid}", {"expiration_time": "2031-01-01T00:00:00.000Z"}, **h), 200)

    # A customer's service moved to another customer.
    ids["moved"] = sid = post("/services/start", {"customer_id": "cust-3", "timestamp": at(3, 7)})["service_id"]
    post(f"/customers/cust-4/services/{sid}", {"timestamp": at(3, 6, 30)}, 204)
    post(f"/services/{sid}/states/start", {"state_type": "x", "timestamp": at(3, 7, 1)})
    post(f"/services/{sid}/states/start", {"state_type": "y", "previous_state_id": 1, "timestamp": at(3, 7, 2)})

    # A state ended with its active tasks (write-time cascade) in an active service.
    ids["cascade"] = sid = post("/services/start", {"customer_id": "cust-1", "service_type": "billing",
                                                    "timestamp": at(3, 8)})["service_id"]
    post(f"/services/{sid}/states/start", {"state_type": "s", "timestamp": at(3, 8, 1)})
    for minute in (2, 3):
        post(f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": 1, "timestamp": at(3, 8, minute)})
    post(f"/services/{sid}/states/1/end", {"timestamp": at(3, 8, 9), "disposition": 1}, 204)

    # Composite starts: one new conversation, then the same keys reuse it and add a task.
    composite = post("/services_composite/start", {"services": [
        {"service": {"customer_id": "cust-5", "service_type": "order", "timestamp": at(4, 10), "cart": 3},
         "state": {"state_type": "browse", "timestamp": at(4, 10)},
         "task": {"task_type": "recommend", "timestamp": at(4, 10)}, "associate_state_task": True}]}, 200)
    ids["composite"] = composite["services"][0]["service_id"]
    post("/services_composite/start", {"services": [
        {"service": {"customer_id": "cust-5", "service_type": "order"}, "state": {"state_type": "browse"},
         "task": {"task_type": "pay", "timestamp": at(4, 11)}, "associate_state_task": False}]}, 200)

    # Auto-complete: one past its moment (shown completed), one far from it (active).
    ids["auto_done"] = sid = post("/services/start", {"customer_id": "cust-6", "auto_complete_after": 1,
                                                      "timestamp": at(5, 1)})["service_id"]
    post(f"/services/{sid}/states/start", {"state_type": "wait", "timestamp": at(5, 1, 1)})
    ids["auto_active"] = post("/services/start", {"customer_id": "cust-6", "auto_complete_after": 7200,
                                                  "timestamp": at(5, 2), "expiration_time": "2030-06-01T12:00:00Z"}
                              )["service_id"]
    pass_time(2.5)
    return ids


WINDOW = "time_from=2000-01-01T00:00:00.000Z&time_to=2100-01-01T00:00:00.000Z"
OWNER_LISTS = ["/customers/cust-1/services", "/customers/cust-2/services", "/customers/cust-4/services",
               "/customers/cust-3/services", "/customers/cust-5/services", "/customers/cust-6/services",
               "/services/anonymous/ck-2", "/services/anonymous/%2B33%206%2012%2034%2056%2078"]
EMBED = "?active_states=true&completed_states=true&active_tasks=true&completed_tasks=true&extensions=*,State.*,Task.*"


def routes(ids: dict[str, str]) -> list[str]:
    """The reads an imported tenant must answer as the source does: lists (all, active, completed),
    single reads with everything embedded, states and tasks lists, the export stream's filters."""
    paths = []
    for owner in OWNER_LISTS:
        paths += [owner + EMBED, owner + "/active" + EMBED, owner + "/completed" + EMBED,
                  owner + "?service_types=billing,2&started_from=2026-03-01T00:00:00Z&started_to=2026-03-04T00:00:00Z"]
    for sid in ids.values():
        paths += [f"/services/{sid}{EMBED}", f"/services/{sid}/states?active_tasks=true&completed_tasks=true&extensions=*",
                  f"/services/{sid}/states/active", f"/services/{sid}/tasks/completed?extensions=*",
                  f"/services/{sid}/tasks?state_id=1"]
    for query in ("filter_events=any", "filter_events=started", "filter_events=completed",
                  "filter_events=any&export_content=true", "filter_events=any&export_content=true&filter_state=active",
                  "filter_events=completed&export_content=true&filter_state=inactive",
                  "export_content=true&service_types=billing,order",
                  "export_content=true&started_from=2026-03-02T00:00:00Z&started_to=2026-03-04T00:00:00Z"):
        paths.append(f"/maintenance/services/stream?{WINDOW}&{query}")
    return paths


def list_routes() -> list[str]:
    """Fewer reads, for tests that compare tenants after a change (routes() is for the full round trip):
    every owner's list with everything embedded, and the export stream with content."""
    return [owner + EMBED for owner in OWNER_LISTS] + [f"/maintenance/services/stream?{WINDOW}&export_content=true"]


# ---------------------------------------------------------------- many conversations, straight to files


ITEMS_PER_CONVERSATION = 5
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
EXPIRES_MS = 1_893_456_000_000  # 2030-01-01T00:00:00Z


def stored_conversation(tenant: str, number: int, now: int) -> tuple[Any, list[Any]]:
    """A service with two states and two tasks, as the API stores them (half of them completed)."""
    from lib.clock import format_ms
    from lib.store.items import Expiry, ServiceItem, StateItem, TaskItem

    start = BASE_MS + number * 1000  # the same number is the same conversation, whenever written
    service_id = str(((start - 1_577_836_800_000) << 21) | (number % 2_000_000 + 1))
    expiry = Expiry(EXPIRES_MS, True)
    done = number % 2 == 0

    def event(ms: int) -> dict[str, Any]:
        return {"timestamp": format_ms(ms), "interaction_id": f"i-{number}", "media_type": "voice"}

    ends = {"completed": event(start + 60_000), "completed_ms": start + 60_000, "disposition": "ok"} if done else {}
    service = ServiceItem(tenant=tenant, service_id=service_id, customer_id=f"customer-{number % 997}",
                          service_type="billing", started=event(start), started_ms=start, last_write_ms=now,
                          expires_ms=expiry.expires_ms, expiry_explicit=True, expire_at=expiry.ttl(now),
                          children_ttl=expiry.children_ttl(now), state_seq=2, task_seq=2, cascading={},
                          ext={"channel": json.dumps("ivr"), "order": json.dumps({"id": number, "lines": [1, 2]})},
                          **ends)
    common = {"tenant": tenant, "service_id": service_id, "expire_at": service.children_ttl}
    children = [
        StateItem(state_id=1, state_type="identify", started=event(start + 1000), started_ms=start + 1000,
                  completed=event(start + 2000), completed_ms=start + 2000, attached=1,
                  ext={"step": "1"}, **common),
        StateItem(state_id=2, state_type="solve", previous_state_id=1, started=event(start + 2000),
                  started_ms=start + 2000, **common),
        TaskItem(task_id=1, task_type="lookup", state_id=1, started=event(start + 1500), started_ms=start + 1500,
                 completed=event(start + 1800), completed_ms=start + 1800, ext={"tool": json.dumps("crm")}, **common),
        TaskItem(task_id=2, task_type="survey", started=event(start + 3000), started_ms=start + 3000, **common),
    ]
    return service, children


def write_export(folder: Path, conversations: int, tenant: str = "source|") -> tuple[dict[str, int], dict[str, Any]]:
    """Export files of N conversations in `folder`, written as the export writes them (each record is
    the view lib.rules.conversation shows, with all its attached data; the names of
    lib.rules.runs.file_names); returns the lines of each file and a sample of conversations."""
    from lib import clock
    from lib.rules.conversation import Conversation
    from lib.rules.runs import ATTACHED, file_names

    now = clock.now_ms()
    names = file_names(now, "json")
    folder.mkdir(parents=True, exist_ok=True)
    handles = {kind: (folder / name).open("w", encoding="utf-8") for kind, name in names.items()}
    sample: dict[str, Any] = {}
    for number in range(conversations):
        service, children = stored_conversation(tenant, number, now)
        conversation = Conversation(service, now).add(children)
        handles["services"].write(json.dumps(conversation.service_view(ATTACHED), ensure_ascii=False) + "\n")
        for child in children:
            kind = "states" if child.KIND == "state" else "tasks"
            handles[kind].write(json.dumps(conversation.view(child, ATTACHED), ensure_ascii=False) + "\n")
        if number % max(2, conversations // 10) < 2:  # about 20, half of them active
            sample[service.service_id] = (service, children)
    for handle in handles.values():
        handle.close()
    return {name.rsplit("_", 1)[1]: sum(1 for _ in (folder / name).open()) for name in names.values()}, sample


def table_items() -> list[dict[str, Any]]:
    """Every item of the test table, read from moto's backend rather than by a Scan: moto takes about
    5 ms an item to serialise a Scan's answer (seconds for an import's worth), which would make the
    import's tests slow for no benefit. The items are decoded as a Scan's would be."""
    import os

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from lib.store.codec import decode_item

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]]
    return [decode_item(json.loads(json.dumps(item.to_json()["Attributes"])))
            for item in backend.get_table(os.environ["TABLE_NAME"]).all_items()]
