"""Defects an independent review of the store found (each test reproduces the request or the
interleaving it reported; races and faults are placed with a patched store function, in process)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from lib.clock import format_ms
from lib.rules import children as child_rules
from lib.rules import services as service_rules
from lib.store import ends, starts
from lib.store import table as store_table
from lib.store.expressions import Query
from lib.store.keys import conversation_pk
from tests.test_bounds import _next, reads

TENANT = "|"  # requests without tenancy headers


def _service_with_tasks(api, n: int, customer: str = "big") -> str:
    sid = api.start(customer_id=customer)
    assert api.post(f"/services/{sid}/states/start", {"state_type": "s"}).json["state_id"] == 1
    for _ in range(n):
        assert api.post(f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": 1}).status == 201
    return sid


def _injected(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, operation)


def test_a_state_made_by_composite_start_with_its_task_can_end_and_transition(api):
    element = {"service": {"customer_id": "cc", "service_type": "sales"}, "state": {"state_type": "greet"},
               "task": {"task_type": "lookup"}, "associate_state_task": True}
    first = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    sid, state = first["service_id"], first["state_id"]
    moved = api.post(f"/services/{sid}/states/transition", {"from": {"state_id": state}, "to": {"state_type": "x"}})
    assert moved.status == 201, moved.text
    task = api.get(f"/services/{sid}/tasks/{first['task_id']}").json
    assert "completed" in task  # completed with its state

    second = api.post("/services_composite/start", {"services": [dict(element, service={
        "customer_id": "cd", "service_type": "sales"})]}).json["services"][0]
    end = api.post(f"/services/{second['service_id']}/states/{second['state_id']}/end", {})
    assert end.status == 204, end.text


def test_auto_complete_never_completes_before_the_start(api, frozen):
    sid = api.start(customer_id="neg", timestamp=format_ms(frozen.now + 3600_000), auto_complete_after=1)
    frozen.advance(2)
    service = api.get(f"/services/{sid}").json
    assert service["completed"]["timestamp"] == service["started"]["timestamp"]
    assert service["duration"] == 0
    listed = api.get("/customers/neg/services/completed").json
    assert [s["duration"] for s in listed] == [0]


def test_ending_a_task_of_an_expired_service_is_404(api, frozen):
    sid = api.start(customer_id="exp", ttl=10)
    ended = api.post(f"/services/{sid}/tasks/start", {"task_type": "t"}).json["task_id"]
    active = api.post(f"/services/{sid}/tasks/start", {"task_type": "t"}).json["task_id"]
    assert api.post(f"/services/{sid}/tasks/{ended}/end", {}).status == 204
    frozen.advance(20)
    assert api.get(f"/services/{sid}").status == 404
    assert api.post(f"/services/{sid}/tasks/{ended}/end", {}).status == 404
    late = api.post(f"/services/{sid}/tasks/{active}/end", {"timestamp": "2001-01-01T00:00:00Z"})
    assert late.status == 404, late.text


def test_ending_an_unknown_child_of_a_completed_service_is_404(api):
    sid = api.start(customer_id="u")
    task = api.post(f"/services/{sid}/tasks/start", {"task_type": "t"}).json["task_id"]
    assert api.post(f"/services/{sid}/end", {}).status == 204
    assert api.post(f"/services/{sid}/states/77/end", {}).status == 404
    assert api.post(f"/services/{sid}/tasks/77/end", {}).status == 404
    again = api.post(f"/services/{sid}/tasks/{task}/end", {"timestamp": "2001-01-01T00:00:00Z"})
    assert again.status == 409, again.text  # completed with its service, whatever the timestamp


def test_a_task_ended_during_a_big_state_end_leaves_no_task_active(api, monkeypatch):
    sid = _service_with_tasks(api, 150)
    real = ends.tasks_of_state
    calls = {"n": 0}

    def racing(tenant, service_id, state_id):
        found = real(tenant, service_id, state_id)
        calls["n"] += 1
        if calls["n"] == 1:  # a concurrent end of task 120 lands between the read and the commit
            child_rules.end_task(TENANT, sid, 120, None)
        return found

    monkeypatch.setattr(ends, "tasks_of_state", racing)
    assert api.post(f"/services/{sid}/states/1/end", {}).status == 204
    assert api.get(f"/services/{sid}/tasks/active?limit=1000").json == []
    assert api.get(f"/services/{sid}/tasks/completed?limit=1000").status == 200
    assert len(api.get(f"/services/{sid}/tasks/completed?limit=1000").json) == 150
    service = [i for i in Query(conversation_pk(TENANT, sid)).all() if i["SK"] == "#SERVICE"][0]
    assert not service.get("cascading")  # the mark is cleared once every task is completed


def test_a_fault_after_a_big_state_ends_commit_point_answers_its_success(api, monkeypatch):
    sid = _service_with_tasks(api, 110)
    real = store_table.transact
    calls = {"n": 0}

    def flaky(actions):
        calls["n"] += 1
        if calls["n"] == 2:  # the first transaction (the commit point) went through
            raise _injected("TransactWriteItems")
        return real(actions)

    monkeypatch.setattr(store_table, "transact", flaky)
    assert api.post(f"/services/{sid}/states/1/end", {}).status == 204
    monkeypatch.setattr(store_table, "transact", real)
    assert "completed" in api.get(f"/services/{sid}/states/1").json
    assert api.get(f"/services/{sid}/tasks/active?limit=1000").json == []  # the mark applies on read
    # Ending one of the tasks left behind finishes the cascade (409: it completed with its state).
    assert api.post(f"/services/{sid}/tasks/110/end", {}).status == 409
    service = [i for i in Query(conversation_pk(TENANT, sid)).all() if i["SK"] == "#SERVICE"][0]
    assert not service.get("cascading")


def test_a_selective_filter_costs_a_few_queries_not_one_per_item(api, table):
    sid = _service_with_tasks(api, 200)
    for task in range(1, 200):
        assert api.post(f"/services/{sid}/tasks/{task}/end", {}).status == 204
    with reads(table) as seen:
        page = api.get(f"/services/{sid}/tasks/active?state_id=1&limit=1").json
    assert [t["task_id"] for t in page] == [200]
    assert seen["calls"].count("Query") <= 10, seen["calls"]
    assert seen["items"] <= 2 * 201 + 2


def test_a_child_started_while_the_expiration_changes_is_never_erased_before_its_service(api, monkeypatch, items):
    sid = api.start(customer_id="ttl", ttl=1000)
    real = starts._read_with_record
    calls = {"n": 0}

    def racing(*args, **kw):
        found = real(*args, **kw)
        calls["n"] += 1
        if calls["n"] == 1:  # a PUT /services/{id} {"ttl": 10 days} lands after the start's read
            service_rules.set_expiration(TENANT, sid, 10 * 86400, None)
        return found

    monkeypatch.setattr(starts, "_read_with_record", racing)
    assert api.post(f"/services/{sid}/states/start", {"state_type": "s"}).status == 201
    stored = {i["SK"]: i.get("expire_at") for i in items() if sid in i["PK"]}
    assert stored["S#0000000001"] >= stored["#SERVICE"]


def test_concurrent_expirations_leave_no_child_ttl_below_its_service(api, monkeypatch, items):
    sid = api.start(customer_id="ttl2", ttl=10 * 86400)
    for _ in range(3):
        assert api.post(f"/services/{sid}/states/start", {"state_type": "s"}).status == 201
    real = store_table.transact
    calls = {"n": 0}

    def racing(actions):
        calls["n"] += 1
        if calls["n"] == 1:  # request B (ttl 5 days) runs while A (ttl 1 day) lowers the children
            service_rules.set_expiration(TENANT, sid, 5 * 86400, None)
        return real(actions)

    monkeypatch.setattr(store_table, "transact", racing)
    assert api.put(f"/services/{sid}", {"ttl": 86400}).status == 200
    stored = {i["SK"]: i.get("expire_at") for i in items() if sid in i["PK"]}
    service = stored.pop("#SERVICE")
    assert stored and all(ttl >= service for ttl in stored.values()), (service, stored)


def test_a_completed_list_reads_only_what_is_past_its_deadline(api, table, frozen):
    done = [api.start(customer_id="many") for _ in range(2)]
    for sid in done:
        assert api.post(f"/services/{sid}/end", {}).status == 204
    for _ in range(60):
        api.start(customer_id="many")
    timed = [api.start(customer_id="many", auto_complete_after=60) for _ in range(40)]
    frozen.advance(61)  # the timed ones completed by themselves; nothing has recorded it yet
    with reads(table) as seen:
        first = api.get("/customers/many/services/completed?limit=5")
    assert first.status == 200 and len(first.json) == 5
    # The ended ones (2, with the look-ahead 3 at most), the keys of those past their deadline that
    # no write has recorded (the 40: the schedule records them within minutes), the 6 read whole;
    # never the 60 active ones that do not complete by themselves.
    assert seen["items"] <= 3 + len(timed) + 6, seen
    every = []
    path = "/customers/many/services/completed?limit=7"
    while path:
        page = api.get(path)
        every += [s["service_id"] for s in page.json]
        path = _next(page)
    assert sorted(every) == sorted(done + timed) and len(every) == len(set(every))
    active = [s["service_id"] for s in api.get("/customers/many/services/active?limit=100").json]
    assert len(active) == 60 and not set(active) & set(timed)


def test_an_associated_timed_service_auto_completes_in_its_new_customers_lists(api, frozen):
    sid = api.start(contact_key="ck", auto_complete_after=60)
    assert api.post(f"/customers/newc/services/{sid}", {}).status == 204
    assert [s["service_id"] for s in api.get("/customers/newc/services/active").json] == [sid]
    frozen.advance(61)
    assert [s["service_id"] for s in api.get("/customers/newc/services/completed").json] == [sid]
    assert api.get("/customers/newc/services/active").json == []


def test_a_page_token_that_is_not_ascii_is_a_400(api):
    sid = api.start(customer_id="pt")
    for path in ("/customers/pt/services?page_token=abc.%C3%A9", f"/services/{sid}/states?page_token=abc.%C3%A9"):
        answer = api.get(path)
        assert answer.status == 400 and "page_token" in answer.json["message"]


def _locks(items) -> list[dict]:
    return [item for item in items() if item["SK"] == "#LOCK" or item["SK"].startswith("#LOCK#")]


def test_a_deleted_or_purged_conversation_takes_its_composite_lock_with_it(api, items):
    element = {"service": {"customer_id": "lk", "service_type": "sales"}, "state": {"state_type": "greet"}}
    made = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert len(_locks(items)) == 2  # the lock, and its reference in the conversation
    assert api.delete(f"/services/{made['service_id']}").status == 204
    assert _locks(items) == []
    again = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert again["service_created"] and again["service_id"] != made["service_id"]

    # A lock pointed at a service that existed before (found by the owner's index) goes too.
    existing = api.start(customer_id="lk2", service_type="sales")
    other = dict(element, service={"customer_id": "lk2", "service_type": "sales"})
    found = api.post("/services_composite/start", {"services": [other]}).json["services"][0]
    assert found["service_id"] == existing and not found["service_created"]
    assert len(_locks(items)) == 4
    purge = api.post("/maintenance/purge", {"limit": "2999-01-01T00:00:00Z", "operation": "purge.service.all"})
    assert purge.status == 200 and purge.json["purged"] == 2
    assert _locks(items) == []


def test_erasing_a_conversation_keeps_a_lock_that_names_another_service(api, items):
    element = {"service": {"customer_id": "lk3", "service_type": "sales"}, "state": {"state_type": "greet"}}
    first = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert api.post(f"/services/{first['service_id']}/end", {}).status == 204
    second = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert second["service_created"] and second["service_id"] != first["service_id"]
    assert api.delete(f"/services/{first['service_id']}").status == 204
    lock = [item for item in items() if item["SK"] == "#LOCK"]
    assert [item["service_id"] for item in lock] == [second["service_id"]]
    reuse = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert reuse["service_id"] == second["service_id"] and not reuse["service_created"]


def test_a_conversation_made_by_composite_start_exports_whole(api):
    element = {"service": {"customer_id": "ex", "service_type": "sales"}, "state": {"state_type": "greet"},
               "task": {"task_type": "lookup"}, "associate_state_task": True}
    made = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    reply = api.get("/maintenance/services/stream?time_from=2000-01-01T00:00:00Z&export_content=true")
    assert reply.status == 200, reply.text
    [service] = reply.json
    assert service["service_id"] == made["service_id"]
    assert [s["state_id"] for s in service["active_states"]] == [1]
    assert [t["task_id"] for t in service["active_tasks"]] == [1]


def test_a_start_whose_reply_is_lost_while_another_write_lands_answers_its_success(api, monkeypatch, items):
    """The commit is confirmed on the item the start creates (only it writes there), not on the
    service item, which a concurrent write may have taken since."""
    from botocore.exceptions import ReadTimeoutError

    sid = api.start(customer_id="lost")
    real = store_table.transact
    calls = {"n": 0}

    def lost_reply(actions):
        calls["n"] += 1
        result = real(actions)
        if calls["n"] == 1:  # applied; another request writes the service; then the reply is lost
            service_rules.set_expiration(TENANT, sid, 86400, None)
            raise ReadTimeoutError(endpoint_url="https://dynamodb")
        return result

    monkeypatch.setattr(store_table, "transact", lost_reply)
    started = api.post(f"/services/{sid}/states/start", {"state_type": "s"})
    assert started.status == 201, started.text
    assert started.json["state_id"] == 1
    assert [i["SK"] for i in items() if i["SK"].startswith("S#")] == ["S#0000000001"]


def test_a_completed_page_of_more_than_100_past_their_deadline_reads_them_100_a_call(api, table, frozen):
    timed = [api.start(customer_id="big-due", auto_complete_after=60) for _ in range(130)]
    frozen.advance(61)
    with reads(table) as seen:
        page = api.get("/customers/big-due/services/completed?limit=120")
    assert page.status == 200 and len(page.json) == 120 and _next(page)
    assert seen["calls"].count("BatchGetItem") == 2  # DynamoDB takes 100 keys a BatchGetItem
    assert {s["service_id"] for s in page.json} <= set(timed)
