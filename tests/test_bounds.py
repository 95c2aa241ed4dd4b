"""Reads bounded by the page and round trips at the minimum (issue 9): whatever a conversation holds,
a page reads about what it returns, paging through all is linear, composite reuse reads a bounded
number of items, and creates take one write (with their idempotency record)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

SIZE = 150  # states and tasks (several pages at limit=50)


@contextmanager
def reads(client: Any) -> Iterator[dict[str, Any]]:
    """Calls made, and items read (ScannedCount of Queries, items of GetItem / BatchGetItem)."""
    seen: dict[str, Any] = {"calls": [], "items": 0}

    def before(model: Any, **_: Any) -> None:
        seen["calls"].append(model.name)

    def after(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            seen["items"] += parsed.get("ScannedCount", 0)
        elif model.name == "GetItem":
            seen["items"] += 1 if parsed.get("Item") else 0
        elif model.name == "BatchGetItem":
            seen["items"] += sum(len(v) for v in parsed.get("Responses", {}).values())

    client.meta.events.register("before-call.dynamodb.*", before)
    client.meta.events.register("after-call.dynamodb.*", after)
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-call.dynamodb.*", before)
        client.meta.events.unregister("after-call.dynamodb.*", after)


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


def _next(reply) -> str | None:
    link = reply.headers.get("Link")
    return re.fullmatch(r'<(.+)>; rel="next"', link).group(1).removeprefix("/Prod/genesys/1/cs") if link else None


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
                path = _next(reply)
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
    assert seen["calls"] == ["GetItem", "BatchGetItem"] and seen["items"] <= 4


def test_composite_create_is_one_transaction(api, table):
    element = {"service": {"customer_id": "new"}, "state": {"state_type": "x"}, "task": {"task_type": "y"}}
    with reads(table) as seen:
        result = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert result["service_created"] and result["state_created"] and result["task_created"]
    assert seen["calls"] == ["GetItem", "Query", "TransactWriteItems"]


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
