"""Reads bounded by the page and round trips at the minimum (issue 9), through lambda_handler on moto:
whatever a conversation holds, a page reads about what it returns, paging through all is linear,
composite reuse reads a bounded number of items, creates take one write (with their idempotency
record), and a filtered or completed list does not read what it does not return."""

from __future__ import annotations

import pytest

from tests.support import (
    next_path,
    reads,
    service_with_tasks,
)

SIZE = 150  # states and tasks (several pages at limit=50)


@pytest.fixture
def big(api):
    """A conversation of SIZE states (every third completed) and SIZE tasks (half in a state)."""
    service = api.start(customer_id="big")
    for n in range(1, SIZE + 1):
        assert api.post(f"/services/{service}/states/start", {"state_type": f"s{n % 4}"}).status == 201
        body = {"task_type": "t", "state_id": n} if n % 2 else {"task_type": "t"}
        assert api.post(f"/services/{service}/tasks/start", body).status == 201
    for n in range(3, SIZE + 1, 3):
        assert api.post(f"/services/{service}/states/{n}/end", {}).status == 204
    return service


ROUTES = ["states", "states/active", "states/completed", "tasks", "tasks/active", "tasks/completed"]


def test_every_page_reads_about_what_it_returns(api, table, big):
    """One conversation, every child list paged through: each page reads the service item, its items
    and one look-ahead item; a page of 50 reads at most 1.1 items per item returned."""
    for route in ROUTES:
        path, returned, pages = f"/services/{big}/{route}?limit=50", 0, 0
        with reads(table) as seen:
            while path:
                reply = api.get(path)
                assert reply.status == 200
                returned += len(reply.json)
                pages += 1
                path = next_path(reply)
        assert returned > 0, route
        assert seen["items"] <= returned + 2 * pages, (route, seen["items"], returned, pages)
        assert seen["items"] / returned <= 1.1, route
        assert len(seen["calls"]) <= 2 * pages and "Scan" not in seen["calls"], route
    # The other reads of the same conversation.
    with reads(table) as seen:
        view = api.get(f"/services/{big}?active_states=true").json
    assert len(view["active_states"]) == SIZE - SIZE // 3
    assert seen["items"] <= 1 + len(view["active_states"]) + 1
    with reads(table) as seen:
        page = api.get(f"/services/{big}/states?limit=20&active_tasks=true&completed_tasks=true").json
    assert [s["state_id"] for s in page] == list(range(1, 21))
    assert all(len(s["active_tasks"]) + len(s["completed_tasks"]) == (1 if s["state_id"] % 2 else 0) for s in page)
    assert all(s["completed_tasks"] for s in page if s["state_id"] % 6 == 3), "a completed state's tasks completed"
    # The service with the first page of states (one Query: it sorts just before them), and the tasks
    # of those states (LSI2), at once.
    assert seen["calls"] == ["Query", "Query"]
    returned = len(page) + sum(len(s["active_tasks"]) + len(s["completed_tasks"]) for s in page)
    assert seen["items"] <= returned + 2, "the embedded tasks are read once, the states once"
    # Once the service is completed, every child is: lists read only the page still.
    assert api.post(f"/services/{big}/end", {}).status == 204
    with reads(table) as seen:
        reply = api.get(f"/services/{big}/tasks/completed?limit=100")
    assert len(reply.json) == 100 and seen["items"] <= 102
    with reads(table) as seen:
        assert api.get(f"/services/{big}/states/active").json == []
    assert seen["items"] <= 2


def test_composite_reuse_reads_a_bounded_number_of_items(api, table):
    element = {"service": {"customer_id": "big2"}, "state": {"state_type": "x"}, "task": {"task_type": "y"},
               "associate_state_task": True}
    first = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    service = first["service_id"]
    for _ in range(60):
        api.post(f"/services/{service}/states/start", {"state_type": "other"})
    with reads(table) as seen:
        again = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert again == {**first, "service_created": False, "state_created": False, "task_created": False}
    # The lock and the owner's active services (one Query: this customer has one) are read at once,
    # then what the lock names: the conversation's 60 other states are never read.
    assert sorted(seen["calls"]) == ["BatchGetItem", "GetItem", "Query"] and seen["calls"][-1] == "BatchGetItem"
    assert seen["items"] <= 5


def test_composite_create_is_one_transaction(api, table):
    element = {"service": {"customer_id": "new"}, "state": {"state_type": "x"}, "task": {"task_type": "y"}}
    with reads(table) as seen:
        result = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert result["service_created"] and result["state_created"] and result["task_created"]
    # The lock and the owner's active services are read at once (either may be sent first), then one write.
    assert sorted(seen["calls"][:2]) == ["GetItem", "Query"] and seen["calls"][2:] == ["TransactWriteItems"]


@pytest.mark.parametrize("path,body", [("/services/start", {"customer_id": "c"})])
def test_an_idempotent_service_start_is_one_write(api, table, path, body):
    with reads(table) as seen:
        assert api.post(path, body, headers={"Idempotency-Key": "k-1"}).status == 201
    assert seen["calls"] == ["TransactWriteItems"]


def test_an_idempotent_state_start_is_one_read_and_one_transaction(api, table):
    service = api.start()
    with reads(table) as seen:
        assert api.post(f"/services/{service}/states/start", {}, headers={"Idempotency-Key": "k-2"}).status == 201
    assert seen["calls"] == ["BatchGetItem", "TransactWriteItems"]


def test_a_customer_page_with_embedded_children_reads_them_at_once(api, table):
    for n in range(30):
        service = api.start(customer_id="many", timestamp=f"2026-01-01T00:00:{n:02d}Z")
        api.post(f"/services/{service}/states/start", {})
    with reads(table) as seen:
        page = api.get("/customers/many/services?active_states=true&limit=30").json
    assert len(page) == 30 and all(len(s["active_states"]) == 1 for s in page)
    # The owner's index, then every service's children by key (each service counts them): one call.
    assert seen["calls"] == ["Query", "BatchGetItem"]
    assert seen["items"] == 30 + 30


def test_a_selective_filter_costs_a_few_queries_not_one_per_item(api, table):
    """The one completed task of a state, after 99 active ones, found by a filtered Query: one whose
    Limit stays at the page's 2 would take 50 calls; doubling it takes 7."""
    sid = service_with_tasks(api, 100)
    assert api.post(f"/services/{sid}/tasks/100/end", {}).status == 204
    with reads(table) as seen:
        page = api.get(f"/services/{sid}/tasks/completed?state_id=1&limit=1").json
    assert [t["task_id"] for t in page] == [100]
    assert seen["calls"].count("Query") <= 8, seen["calls"]
    assert seen["items"] <= 2 * 101 + 2


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
        path = next_path(page)
    assert sorted(every) == sorted(done + timed) and len(every) == len(set(every))
    active = [s["service_id"] for s in api.get("/customers/many/services/active?limit=100").json]
    assert len(active) == 60 and not set(active) & set(timed)


def test_a_completed_page_of_more_than_100_past_their_deadline_reads_them_100_a_call(api, table, frozen):
    timed = [api.start(customer_id="big-due", auto_complete_after=60) for _ in range(130)]
    frozen.advance(61)
    with reads(table) as seen:
        page = api.get("/customers/big-due/services/completed?limit=120")
    assert page.status == 200 and len(page.json) == 120 and next_path(page)
    assert seen["calls"].count("BatchGetItem") == 2  # DynamoDB takes 100 keys a BatchGetItem
    assert {s["service_id"] for s in page.json} <= set(timed)
