"""Embedded states and tasks read in one round trip (issue 20): a customer page reads the owner's
index, then every service's children at once (small conversations by key, in shared BatchGetItem
calls; bigger ones one Query each); a single read starts its Query at the service item; what a read
holds stays within the reply's 5 MB; the answers are the same whichever way they were read."""

from __future__ import annotations

import pytest

from lib.store import concurrency, embedded, table
from tests.support import reads

EVERYTHING = "active_states=true&completed_states=true&active_tasks=true&completed_tasks=true"


def conversation(api, customer: str, second: int, states: int = 1, ended: bool = False) -> str:
    """A service of `customer` with `states` states, each with a task in it (the first state ended
    when there are several), started at a given second (the page's order)."""
    sid = api.start(customer_id=customer, timestamp=f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}Z")
    for n in range(1, states + 1):
        assert api.post(f"/services/{sid}/states/start", {"state_type": f"s{n}"}).status == 201
        assert api.post(f"/services/{sid}/tasks/start", {"state_id": n, "task_type": "t"}).status == 201
    if states > 1:
        assert api.post(f"/services/{sid}/states/1/end", {}).status == 204
    if ended:
        assert api.post(f"/services/{sid}/end", {}).status == 204
    return sid


def test_a_page_of_100_services_reads_their_children_in_two_calls_at_once(api, table):
    ids = [conversation(api, "hundred", n, ended=n % 3 == 0) for n in range(100)]
    with reads(table) as seen:
        reply = api.get(f"/customers/hundred/services?limit=100&{EVERYTHING}")
    assert reply.status == 200 and [s["service_id"] for s in reply.json] == ids
    # The owner's index, then 200 children by key: two BatchGetItem calls of 100 keys, made together.
    assert seen["calls"] == ["Query", "BatchGetItem", "BatchGetItem"]
    assert seen["items"] == 100 + 200
    for n, service in enumerate(reply.json):
        assert service == api.get(f"/services/{service['service_id']}?{EVERYTHING}").json
        arrays = "completed" if n % 3 == 0 else "active"
        assert [s["state_id"] for s in service[f"{arrays}_states"]] == [1]
        assert [t["task_id"] for t in service[f"{arrays}_tasks"]] == [1]


def test_big_conversations_are_read_by_query_beside_the_small_ones(api, table):
    small = conversation(api, "mixed", 1)
    big = conversation(api, "mixed", 2, states=embedded.SMALL_CONVERSATION)  # 2 x SMALL children
    with reads(table) as seen:
        page = api.get("/customers/mixed/services?active_states=true&completed_tasks=true").json
    assert seen["calls"][0] == "Query" and sorted(seen["calls"][1:]) == ["BatchGetItem", "Query", "Query"]
    assert [s["service_id"] for s in page] == [small, big]
    assert page[1] == api.get(f"/services/{big}?active_states=true&completed_tasks=true").json
    assert len(page[1]["active_states"]) == embedded.SMALL_CONVERSATION - 1  # state 1 ended
    assert [t["task_id"] for t in page[1]["completed_tasks"]] == [1]  # its task completed with it
    # The big one read exactly what it shows (two ranges of the status index).
    assert seen["items"] == 2 + (1 + 1) + (embedded.SMALL_CONVERSATION - 1) + 1


def test_a_completed_service_has_no_active_children_to_read(api, table):
    sid = conversation(api, "done", 1, states=embedded.SMALL_CONVERSATION, ended=True)
    with reads(table) as seen:
        page = api.get("/customers/done/services?active_states=true&active_tasks=true").json
    assert page[0]["active_states"] == [] and page[0]["active_tasks"] == []
    assert seen["calls"] == ["Query"]
    with reads(table) as seen:
        view = api.get(f"/services/{sid}?active_tasks=true").json
    assert view["service_id"] == sid and view["active_tasks"] == [] and seen["calls"] == ["GetItem"]


@pytest.mark.parametrize("query,calls", [
    (EVERYTHING, [["Query", "Query"]]),  # from the service item through the states, and the tasks, at once
    ("active_states=true&completed_states=true", [["Query"]]),  # through the states
    ("active_tasks=true&completed_tasks=true", [["GetItem", "Query"], ["Query", "GetItem"]]),  # at once
])
def test_a_single_read_of_every_status_is_one_round_trip(api, table, query, calls):
    sid = conversation(api, "single", 1, states=3)
    with reads(table) as seen:
        view = api.get(f"/services/{sid}?{query}").json
    assert seen["calls"] in calls
    assert seen["items"] == 1 + sum(len(view.get(k, [])) for k in
                                    ("active_states", "completed_states", "active_tasks", "completed_tasks"))
    assert view["service_id"] == sid


def test_a_single_read_of_one_status_reads_the_service_first(api, table):
    """Which range holds one status depends on the service's end: it is read first."""
    sid = conversation(api, "status", 1, states=3)
    with reads(table) as seen:
        view = api.get(f"/services/{sid}?active_states=true").json
    assert seen["calls"] == ["GetItem", "Query"] and seen["items"] == 1 + 2
    assert [s["state_id"] for s in view["active_states"]] == [2, 3]


def test_a_conversation_too_big_for_a_reply_stops_being_read(api, table):
    """Its views pass 5 MB: the read stops there (413 for a single read, the page ends before it
    otherwise), rather than holding the whole conversation."""
    first = api.start(customer_id="huge", timestamp="2026-01-01T00:00:00Z")
    sid = api.start(customer_id="huge", timestamp="2026-01-01T00:00:01Z")
    for _ in range(80):  # 80 x 120 KB: 9.6 MB, about 10 Query pages of 1 MB
        assert api.post(f"/services/{sid}/states/start", {"blob": "y" * 120_000}).status == 201
    with reads(table) as seen:
        reply = api.get(f"/services/{sid}?active_states=true&completed_states=true&extensions=State.*")
    assert reply.status == 413 and f"/services/{sid}/states" in reply.json["message"]
    assert 5 <= len(seen["calls"]) <= 7, seen["calls"]  # stopped after about 5 MB, not 10 pages
    with reads(table) as seen:
        page = api.get("/customers/huge/services?active_states=true&extensions=State.*")
    assert page.status == 200 and [s["service_id"] for s in page.json] == [first]
    assert 'rel="next"' in page.headers["Link"] and len(seen["calls"]) <= 8


def test_the_budget_of_a_reply_is_shared_by_the_ranges_of_a_conversation(api, table):
    """The states and the tasks of one conversation are read at once, each with its own pages: the
    reply's 5 MB is counted over both, so the read stops after about 5 MB of views in all, not 5 MB
    of each kind."""
    sid = api.start(customer_id="both-huge")
    for n in range(1, 41):  # 40 states and 40 tasks of 120 KB: 4.8 MB of each kind
        assert api.post(f"/services/{sid}/states/start", {"blob": "y" * 120_000}).status == 201
        assert api.post(f"/services/{sid}/tasks/start", {"state_id": n, "blob": "y" * 120_000}).status == 201
    with reads(table) as seen:
        reply = api.get(f"/services/{sid}?{EVERYTHING}&extensions=State.*,Task.*")
    assert reply.status == 413
    assert seen["calls"].count("Query") <= 8, seen["calls"]  # each kind alone reads 5 pages before it stops


def test_a_page_reads_a_bigger_conversation_of_both_kinds_with_one_query(api, table):
    """On a customer page a conversation too big to be read by key is one Query from its states
    through its tasks (a page of 100 such conversations is then one wave of reads, not two)."""
    sid = conversation(api, "page-both", 1, states=embedded.SMALL_CONVERSATION)
    with reads(table) as seen:
        page = api.get(f"/customers/page-both/services?{EVERYTHING}").json
    assert seen["calls"] == ["Query", "Query"]  # the owner's page, then the conversation's one range
    assert len(page[0]["completed_states"]) == 1 and len(page[0]["active_tasks"]) == embedded.SMALL_CONVERSATION - 1
    assert page[0] == api.get(f"/services/{sid}?{EVERYTHING}").json


def test_the_pool_runs_at_most_in_flight_reads_at_once():
    import threading

    running, most, lock, beyond = [0], [0], threading.Lock(), threading.Event()

    def read() -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            if running[0] > concurrency.IN_FLIGHT:
                beyond.set()
        beyond.wait(2)  # every read stays in flight a while: as many start as the pool lets
        with lock:
            running[0] -= 1
        return 1

    assert sum(concurrency.parallel(*[read] * (concurrency.IN_FLIGHT + 50))) == concurrency.IN_FLIGHT + 50
    assert most[0] == concurrency.IN_FLIGHT
    assert table.CLIENT_CONFIG.max_pool_connections == concurrency.IN_FLIGHT  # a connection per read in flight
