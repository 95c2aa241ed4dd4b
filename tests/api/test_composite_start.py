"""Composite start (§4) through lambda_handler on moto: elements created or reused by the matching
rules, in order, validated before anything is written; the lock that makes concurrent starts converge
goes with the conversation it names."""

from __future__ import annotations

import pytest

from tests.support import (
    assert_error,
    erase_deleted,
    error_problem,
)


def composite(api, *elements, headers=None):
    return api.post("/services_composite/start", {"services": list(elements)}, headers=headers)


def test_composite_creates_then_reuses(api):
    element = {"service": {"customer_id": "cc", "service_type": "sales"}, "state": {"state_type": "greet"},
               "task": {"task_type": "lookup"}, "associate_state_task": True}
    first = composite(api, element)
    assert first.status == 200
    result = first.json["services"][0]
    assert result["service_created"] and result["state_created"] and result["task_created"]
    assert first.headers["Location"] == f"/Prod/genesys/1/cs/services/{result['service_id']}/tasks/{result['task_id']}"
    again = composite(api, element).json["services"][0]
    assert again == {**result, "service_created": False, "state_created": False, "task_created": False}
    task = api.get(f"/services/{result['service_id']}/tasks/{result['task_id']}").json
    assert task["state_id"] == result["state_id"]


def test_composite_elements_in_order_and_matching_rules(api):
    existing = api.start(customer_id="cc", service_type="care")
    state = api.start_state(existing, state_type="wait")
    reply = composite(
        api,
        {"service": {"customer_id": "cc", "service_type": "care"}, "state": {"state_type": "wait"}},
        {"service": {"customer_id": "cc", "service_type": "care", "contact_key": "k"}, "state": {"state_type": "wait"}},
        {"service": {"customer_id": "cc", "service_type": "care"}, "state": {"state_type": "other"}},
    )
    assert reply.status == 200
    one, two, three = reply.json["services"]
    assert (one["service_id"], one["service_created"], one["state_id"], one["state_created"]) == (existing, False, state, False)
    assert two["service_created"] and two["service_id"] != existing
    assert three["service_id"] == existing and three["state_created"] and three["state_id"] == state + 1
    assert "task_id" not in one
    assert reply.headers["Location"].endswith(f"/services/{existing}/states/{state}")


def test_composite_does_not_reuse_completed(api):
    element = {"service": {"contact_key": "anon"}, "state": {"state_type": 1}}
    first = composite(api, element).json["services"][0]
    api.post(f"/services/{first['service_id']}/states/{first['state_id']}/end")
    second = composite(api, element).json["services"][0]
    assert second["service_id"] == first["service_id"] and second["state_created"]
    api.post(f"/services/{first['service_id']}/end")
    third = composite(api, element).json["services"][0]
    assert third["service_created"] and third["service_id"] != first["service_id"]


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


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("body", [{}, {"services": []}, {"services": [{"service": {"customer_id": "c"}}]},
                                  {"services": [{"service": {}, "state": {}}]}, {"services": "x"}])
def test_composite_validation(api, items, body):
    assert_error(api.post("/services_composite/start", body), 400, "ValidationException")
    assert items() == []


def test_composite_start_validates_every_element_before_writing(api, items, frozen):
    """Element 1 valid, element 2 with an expiration_time in the past: answered 404, yet element 1's
    service, state and task were stored."""
    first = {"service": {"customer_id": "c", "service_type": "a"}, "state": {"state_type": "s"},
             "task": {"task_type": "t"}}
    problems = []
    for second in ({"service": {"customer_id": "d", "expiration_time": "2001-01-01T00:00:00Z"}, "state": {}},
                   {"service": {"customer_id": "d", "ttl": 0}, "state": {}},
                   {"service": {"customer_id": "d"}, "state": {"state_type": 1.5}},
                   {"service": {"customer_id": "d"}, "state": {}, "task": {"est_duration": -1}},
                   {"service": {"customer_id": "d", "timestamp": "2026-01-01T00:00:00Zx"}, "state": {}},
                   {"service": {"customer_id": "d/e"}, "state": {}}):
        reply = api.post("/services_composite/start", {"services": [first, second]})
        problem = error_problem(reply, 400, "ValidationException")
        if problem:
            problems.append(f"{second}: {problem}")
        if items():
            problems.append(f"{second}: stored {len(items())} items")
            break
    assert problems == []
    assert api.get("/customers/c/services").json == []



def test_composite_start_checks_every_previous_state_id_before_writing(api, items):
    """Element 2 names a previous_state_id no state of its service has: 404 before element 1 writes."""
    first = {"service": {"customer_id": "c", "service_type": "a"}, "state": {"state_type": "s"}}
    new_service = {"service": {"customer_id": "d"}, "state": {"state_type": "s", "previous_state_id": 1}}
    reply = api.post("/services_composite/start", {"services": [first, new_service]})
    assert (reply.status, reply.json["exception"]) == (404, "NotFoundException"), reply.text
    assert "previous state 1" in reply.json["message"]
    assert items() == [], "nothing may be written when an element refers to a state that does not exist"
    # An existing service: its own state 1 is a valid predecessor, state 9 is not.
    sid = api.start(customer_id="e", service_type="b")
    assert api.post(f"/services/{sid}/states/start", {"state_type": "x"}).status == 201
    before = len(items())
    unknown = {"service": {"customer_id": "e", "service_type": "b"}, "state": {"state_type": "y", "previous_state_id": 9}}
    assert api.post("/services_composite/start", {"services": [first, unknown]}).status == 404
    assert len(items()) == before
    known = {"service": {"customer_id": "e", "service_type": "b"}, "state": {"state_type": "y", "previous_state_id": 1}}
    reply = api.post("/services_composite/start", {"services": [first, known]})
    assert reply.status == 200, reply.text
    assert reply.json["services"][1]["service_id"] == sid
    assert api.get(f"/services/{sid}/states/2").json["previous_state_id"] == 1


# ---------------------------------------------------------------- the lock


def _locks(items) -> list[dict]:
    return [item for item in items() if item["SK"] == "#LOCK" or item["SK"].startswith("#LOCK#")]


def test_a_deleted_or_purged_conversation_takes_its_composite_lock_with_it(api, items, frozen):
    element = {"service": {"customer_id": "lk", "service_type": "sales"}, "state": {"state_type": "greet"}}
    made = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert len(_locks(items)) == 2  # the lock, and its reference in the conversation
    assert api.delete(f"/services/{made['service_id']}").status == 204
    # Until the schedule erases the conversation, the lock names a deleted service: not usable.
    again = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert again["service_created"] and again["service_id"] != made["service_id"]
    assert api.delete(f"/services/{again['service_id']}").status == 204
    assert erase_deleted(frozen) == 2
    assert _locks(items) == []

    # A lock pointed at a service that existed before (found by the owner's index) goes too.
    existing = api.start(customer_id="lk2", service_type="sales")
    other = dict(element, service={"customer_id": "lk2", "service_type": "sales"})
    found = api.post("/services_composite/start", {"services": [other]}).json["services"][0]
    assert found["service_id"] == existing and not found["service_created"]
    assert len(_locks(items)) == 2
    purge = api.post("/maintenance/purge", {"limit": "2999-01-01T00:00:00Z", "operation": "purge.service.all"})
    assert purge.status == 200 and purge.json["purged"] == 1
    assert _locks(items) == []


def test_erasing_a_conversation_keeps_a_lock_that_names_another_service(api, items, frozen):
    element = {"service": {"customer_id": "lk3", "service_type": "sales"}, "state": {"state_type": "greet"}}
    first = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert api.post(f"/services/{first['service_id']}/end", {}).status == 204
    second = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert second["service_created"] and second["service_id"] != first["service_id"]
    assert api.delete(f"/services/{first['service_id']}").status == 204
    assert erase_deleted(frozen) == 1
    lock = [item for item in items() if item["SK"] == "#LOCK"]
    assert [item["service_id"] for item in lock] == [second["service_id"]]
    reuse = api.post("/services_composite/start", {"services": [element]}).json["services"][0]
    assert reuse["service_id"] == second["service_id"] and not reuse["service_created"]


def test_a_service_deleted_while_the_lock_is_pointed_at_it_is_not_reused(api, monkeypatch):
    """The owner's index found the service, then a DELETE turned it into its erasure's fence before the
    lock was pointed at it: the lock's transaction checks a live service (not just an item at its key),
    so the start reads again and creates a new service instead of failing on the deleted one."""
    from lib.store import composite as locks

    existing = api.start(customer_id="cc", service_type="care")
    original, deleted = locks.point_at_service, []

    def delete_first(w, lock, stale, service):
        if not deleted:
            deleted.append(api.delete(f"/services/{service.service_id}").status)
        return original(w, lock, stale, service)

    monkeypatch.setattr(locks, "point_at_service", delete_first)
    reply = composite(api, {"service": {"customer_id": "cc", "service_type": "care"}, "state": {"state_type": "wait"}})
    assert deleted == [204]
    assert reply.status == 200, reply.text
    [result] = reply.json["services"]
    assert result["service_created"] and result["service_id"] != existing
    assert api.get(f"/services/{result['service_id']}/states/{result['state_id']}").status == 200
