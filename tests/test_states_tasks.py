"""States, tasks, transitions, cascades and embedding (§5, §6) through lambda_handler on moto."""

from __future__ import annotations

import pytest

from tests.test_services import assert_error


def start_state(api, service_id, **body):
    reply = api.post(f"/services/{service_id}/states/start", body)
    assert reply.status == 201, reply.text
    assert reply.headers["Location"] == f"/Prod/genesys/1/cs/services/{service_id}/states/{reply.json['state_id']}"
    return reply.json["state_id"]


def start_task(api, service_id, **body):
    reply = api.post(f"/services/{service_id}/tasks/start", body)
    assert reply.status == 201, reply.text
    assert reply.headers["Location"] == f"/Prod/genesys/1/cs/services/{service_id}/tasks/{reply.json['task_id']}"
    return reply.json["task_id"]


# ---------------------------------------------------------------- states


def test_state_ids_start_at_one_and_increase(api):
    service_id = api.start()
    assert [start_state(api, service_id, state_type=t) for t in ("a", "b", "c")] == [1, 2, 3]
    other = api.start()
    assert start_state(api, other) == 1


def test_state_shape_and_end(api):
    service_id = api.start()
    first = start_state(api, service_id, state_type="identify", est_duration=30, media_type="voice",
                        timestamp="2026-11-27T10:00:00Z", memo="m")
    second = start_state(api, service_id, state_type=2, previous_state_id=first, timestamp="2026-11-27T10:00:05Z")
    reply = api.post(f"/services/{service_id}/states/{first}/end",
                     {"timestamp": "2026-11-27T10:00:02Z", "disposition": "ok", "disposition_desc": "fine"})
    assert reply.status == 204
    assert api.get(f"/services/{service_id}/states/{first}?extensions=memo").json == {
        "state_id": 1, "state_type": "identify", "service_id": service_id, "est_duration": 30,
        "started": {"timestamp": "2026-11-27T10:00:00.000Z", "media_type": "voice"},
        "completed": {"timestamp": "2026-11-27T10:00:02.000Z"}, "duration": 2000,
        "disposition": "ok", "disposition_desc": "fine", "memo": "m",
    }
    assert api.get(f"/services/{service_id}/states/{second}").json["previous_state_id"] == first


def test_state_errors(api):
    service_id = api.start()
    assert_error(api.post(f"/services/{service_id}/states/start", {"previous_state_id": 9}), 404,
                 "NotFoundException", "previous state 9")
    assert_error(api.post("/services/777/states/start", {}), 404, "NotFoundException", "service")
    assert_error(api.post(f"/services/{service_id}/states/start", {"est_duration": "x"}), 400, "ValidationException")
    state = start_state(api, service_id)
    assert api.post(f"/services/{service_id}/states/{state}/end").status == 204
    assert_error(api.post(f"/services/{service_id}/states/{state}/end"), 409, "ConflictException")
    assert_error(api.post(f"/services/{service_id}/states/99/end"), 404, "NotFoundException", "state 99")
    assert_error(api.get(f"/services/{service_id}/states/99"), 404, "NotFoundException")
    assert_error(api.get(f"/services/{service_id}/states/zero"), 400, "ValidationException")


def test_starting_on_a_completed_service_is_409(api):
    service_id = api.start()
    api.post(f"/services/{service_id}/end")
    assert_error(api.post(f"/services/{service_id}/states/start", {}), 409, "ConflictException")
    assert_error(api.post(f"/services/{service_id}/tasks/start", {}), 409, "ConflictException")


def test_state_lists_and_types(api):
    service_id = api.start()
    ids = [start_state(api, service_id, state_type=t) for t in ("a", "b", "a", "c")]
    api.post(f"/services/{service_id}/states/{ids[1]}/end")
    ids_of = lambda path: [s["state_id"] for s in api.get(f"/services/{service_id}/states{path}").json]  # noqa: E731
    assert ids_of("") == [1, 2, 3, 4]
    assert ids_of("/active") == [1, 3, 4]
    assert ids_of("/completed") == [2]
    assert ids_of("?state_types=a,c") == [1, 3, 4]
    first = api.get(f"/services/{service_id}/states?limit=3")
    assert [s["state_id"] for s in first.json] == [1, 2, 3] and "Link" in first.headers
    assert_error(api.get("/services/1234/states"), 404, "NotFoundException")


# ---------------------------------------------------------------- transition


def test_transition_completes_old_and_starts_new_atomically(api):
    service_id = api.start()
    old = start_state(api, service_id, state_type="greet")
    reply = api.post(f"/services/{service_id}/states/transition",
                     {"from": {"state_id": old, "disposition": "done"}, "to": {"state_type": "sell", "est_duration": 9},
                      "timestamp": "2030-01-01T00:00:00Z", "media_type": "chat", "note": "n"})
    assert reply.status == 201
    new = reply.json["state_id"]
    assert reply.headers["Location"].endswith(f"/states/{new}")
    before = api.get(f"/services/{service_id}/states/{old}").json
    after = api.get(f"/services/{service_id}/states/{new}?extensions=note").json
    assert before["completed"] == {"timestamp": "2030-01-01T00:00:00.000Z", "media_type": "chat"}
    assert before["disposition"] == "done"
    assert after["previous_state_id"] == old and after["state_type"] == "sell" and after["est_duration"] == 9
    assert after["started"] == before["completed"] and after["note"] == "n" and "completed" not in after


def test_failed_transition_changes_nothing(api):
    service_id = api.start()
    old = start_state(api, service_id)
    api.post(f"/services/{service_id}/states/{old}/end")
    body = {"from": {"state_id": old}, "to": {"state_type": "x"}}
    assert_error(api.post(f"/services/{service_id}/states/transition", body), 409, "ConflictException")
    assert_error(api.post(f"/services/{service_id}/states/transition", {**body, "from": {"state_id": 50}}), 404,
                 "NotFoundException")
    assert [s["state_id"] for s in api.get(f"/services/{service_id}/states").json] == [old]
    assert_error(api.post(f"/services/{service_id}/states/transition", {"to": {}}), 400, "ValidationException", "from")


# ---------------------------------------------------------------- tasks


def test_tasks_with_and_without_state(api):
    service_id = api.start()
    state = start_state(api, service_id)
    loose = start_task(api, service_id, task_type="lookup", est_duration=3)
    attached = start_task(api, service_id, task_type=5, state_id=state)
    assert (loose, attached) == (1, 2)
    assert "state_id" not in api.get(f"/services/{service_id}/tasks/{loose}").json
    assert api.get(f"/services/{service_id}/tasks/{attached}").json["state_id"] == state
    assert_error(api.post(f"/services/{service_id}/tasks/start", {"state_id": 42}), 404, "NotFoundException", "state 42")
    api.post(f"/services/{service_id}/states/{state}/end")
    assert_error(api.post(f"/services/{service_id}/tasks/start", {"state_id": state}), 409, "ConflictException")
    assert api.post(f"/services/{service_id}/tasks/{loose}/end", {"disposition": 1}).status == 204
    assert_error(api.post(f"/services/{service_id}/tasks/{loose}/end"), 409, "ConflictException")
    assert_error(api.post(f"/services/{service_id}/tasks/77/end"), 404, "NotFoundException")


def test_task_lists_filter_by_state_and_type(api):
    service_id = api.start()
    state = start_state(api, service_id)
    start_task(api, service_id, task_type="a")
    start_task(api, service_id, task_type="b", state_id=state)
    start_task(api, service_id, task_type="a", state_id=state)
    api.post(f"/services/{service_id}/tasks/1/end")
    ids_of = lambda path: [t["task_id"] for t in api.get(f"/services/{service_id}/tasks{path}").json]  # noqa: E731
    assert ids_of("") == [1, 2, 3]
    assert ids_of("/active") == [2, 3]
    assert ids_of("/completed") == [1]
    assert ids_of(f"?state_id={state}") == [2, 3]
    assert ids_of("?task_types=a") == [1, 3]


# ---------------------------------------------------------------- cascades


def test_ending_a_state_completes_its_active_tasks(api):
    service_id = api.start()
    state = start_state(api, service_id)
    task = start_task(api, service_id, state_id=state)
    loose = start_task(api, service_id)
    api.post(f"/services/{service_id}/states/{state}/end", {"timestamp": "2031-01-01T00:00:00Z"})
    view = api.get(f"/services/{service_id}/tasks/{task}").json
    assert view["completed"] == {"timestamp": "2031-01-01T00:00:00.000Z"}
    assert "completed" not in api.get(f"/services/{service_id}/tasks/{loose}").json
    assert_error(api.post(f"/services/{service_id}/tasks/{task}/end"), 409, "ConflictException")
    state_view = api.get(f"/services/{service_id}/states/{state}?completed_tasks=true&active_tasks=true").json
    assert [t["task_id"] for t in state_view["completed_tasks"]] == [task] and state_view["active_tasks"] == []


def test_ending_a_service_completes_hundreds_of_children(api):
    service_id = api.start()
    for _ in range(40):
        state = start_state(api, service_id)
        start_task(api, service_id, state_id=state)
        start_task(api, service_id)
    api.post(f"/services/{service_id}/states/1/end", {"timestamp": "2040-01-01T00:00:00Z"})
    assert api.post(f"/services/{service_id}/end", {"timestamp": "2041-01-01T00:00:00Z"}).status == 204
    view = api.get(f"/services/{service_id}?active_states=true&completed_states=true"
                   "&active_tasks=true&completed_tasks=true").json
    assert view["active_states"] == [] and view["active_tasks"] == []
    assert len(view["completed_states"]) == 40 and len(view["completed_tasks"]) == 80
    stamps = {s["completed"]["timestamp"] for s in view["completed_states"][1:]}
    assert stamps == {"2041-01-01T00:00:00.000Z"}
    assert view["completed_states"][0]["completed"]["timestamp"] == "2040-01-01T00:00:00.000Z"
    assert view["completed_tasks"][0]["completed"]["timestamp"] == "2040-01-01T00:00:00.000Z"
    assert api.get(f"/services/{service_id}/states/active").json == []
    assert len(api.get(f"/services/{service_id}/tasks/completed?limit=1000").json) == 80
    assert_error(api.post(f"/services/{service_id}/states/5/end"), 409, "ConflictException")
    assert_error(api.post(f"/services/{service_id}/tasks/5/end"), 409, "ConflictException")


# ---------------------------------------------------------------- embedding and selection


def test_embedding_and_extension_selection(api):
    service_id = api.start(customer_id="emb", s_key="S")
    state = start_state(api, service_id, st_key="ST", other="o")
    start_task(api, service_id, state_id=state, t_key="T")
    start_task(api, service_id, t_key="T2")
    query = "active_states=true&active_tasks=true&extensions=s_key,State.st_key,Task.*"
    view = api.get(f"/services/{service_id}?{query}").json
    assert view["s_key"] == "S"
    assert view["active_states"][0]["st_key"] == "ST" and "other" not in view["active_states"][0]
    assert [t.get("t_key") for t in view["active_tasks"]] == ["T", "T2"]
    assert "completed_states" not in view
    listed = api.get(f"/customers/emb/services?{query}").json[0]
    assert listed["active_states"] == view["active_states"]
    state_view = api.get(f"/services/{service_id}/states/{state}?active_tasks=true&extensions=*").json
    assert state_view["st_key"] == "ST" and state_view["other"] == "o"
    assert [t["task_id"] for t in state_view["active_tasks"]] == [1] and "t_key" not in state_view["active_tasks"][0]


def test_child_extension_puts(api):
    service_id = api.start()
    state = start_state(api, service_id)
    task = start_task(api, service_id)
    assert api.put(f"/services/{service_id}/states/{state}/extensions/k", {"a": 1}).json == {"k": {"a": 1}}
    assert api.put(f"/services/{service_id}/tasks/{task}/extensions/k", 2).status == 200
    assert api.get(f"/services/{service_id}/states/{state}?extensions=k").json["k"] == {"a": 1}
    assert api.get(f"/services/{service_id}/tasks/{task}?extensions=k").json["k"] == 2
    assert_error(api.put(f"/services/{service_id}/tasks/99/extensions/k", 2), 404, "NotFoundException")


def test_children_share_the_conversation_expiry_and_tenant(api, frozen, items):
    from lib.store import keys as store

    service_id = api.start(ttl=100)
    start_state(api, service_id)
    start_task(api, service_id)
    stored = [i for i in items() if service_id in i["PK"]]
    assert all(store.TTL_ATTRIBUTE in i for i in stored) and len(stored) == 3
    assert_error(api.get(f"/services/{service_id}/states/1", headers={"ContactCenterId": "x"}), 404, "NotFoundException")
    frozen.advance(101)
    assert_error(api.get(f"/services/{service_id}/states/1"), 404, "NotFoundException")
    assert_error(api.get(f"/services/{service_id}/tasks"), 404, "NotFoundException")


def test_put_expiration_rewrites_children_ttl(api, frozen, items):
    from lib.store import keys as store

    service_id = api.start()
    start_state(api, service_id)
    start_task(api, service_id)
    api.put(f"/services/{service_id}", {"ttl": 50})
    expected = -(-(frozen.now + 50_000) // 1000)
    assert {i[store.TTL_ATTRIBUTE] for i in items() if service_id in i["PK"]} == {expected}


# ---------------------------------------------------------------- composite start


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
    state = start_state(api, existing, state_type="wait")
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


@pytest.mark.parametrize("body", [{}, {"services": []}, {"services": [{"service": {"customer_id": "c"}}]},
                                  {"services": [{"service": {}, "state": {}}]}, {"services": "x"}])
def test_composite_validation(api, items, body):
    assert_error(api.post("/services_composite/start", body), 400, "ValidationException")
    assert items() == []


@pytest.mark.parametrize("path, body, field", [
    ("/states/start", {"state_type": "x"}, "state_id"),
    ("/tasks/start", {"task_type": "x"}, "task_id"),
])
def test_child_starts_are_idempotent(api, path, body, field):
    service_id = api.start()
    headers = {"Idempotency-Key": "child-retry"}
    first = api.post(f"/services/{service_id}{path}", body, headers=headers)
    again = api.post(f"/services/{service_id}{path}", body, headers=headers)
    assert first.status == again.status == 201 and first.json == again.json == {field: 1}
    assert api.post(f"/services/{service_id}{path}", body).json == {field: 2}
    assert_error(api.post(f"/services/{service_id}{path}", {**body, "x": 1}, headers=headers), 409, "ConflictException")


def test_composite_and_transition_are_idempotent(api):
    headers = {"Idempotency-Key": "composite-retry"}
    body = {"services": [{"service": {"customer_id": "idem"}, "state": {"state_type": "a"}}]}
    first = api.post("/services_composite/start", body, headers=headers)
    again = api.post("/services_composite/start", body, headers=headers)
    assert first.json == again.json and first.json["services"][0]["service_created"] is True
    service_id = first.json["services"][0]["service_id"]
    move = {"from": {"state_id": 1}, "to": {"state_type": "b"}}
    one = api.post(f"/services/{service_id}/states/transition", move, headers={"Idempotency-Key": "t"})
    two = api.post(f"/services/{service_id}/states/transition", move, headers={"Idempotency-Key": "t"})
    assert one.status == two.status == 201 and one.json == two.json == {"state_id": 2}


def test_child_lists_take_a_start_time_window(api):
    service_id = api.start()
    for second in range(4):
        start_state(api, service_id, timestamp=f"2030-01-01T00:00:0{second}Z")
        start_task(api, service_id, timestamp=f"2030-01-01T00:00:0{second}Z")
    window = "started_from=2030-01-01T00:00:01Z&started_to=2030-01-01T00:00:03Z"
    assert [s["state_id"] for s in api.get(f"/services/{service_id}/states?{window}").json] == [2, 3]
    assert [t["task_id"] for t in api.get(f"/services/{service_id}/tasks/active?{window}").json] == [2, 3]
    assert_error(api.get(f"/services/{service_id}/tasks?started_from=soon"), 400, "ValidationException")


def test_state_and_task_starts_need_no_body(api):
    service_id = api.start()
    assert api.post(f"/services/{service_id}/states/start").json == {"state_id": 1}
    assert api.post(f"/services/{service_id}/tasks/start", raw_body="null").json == {"task_id": 1}


def test_references_to_states_not_started_yet_are_404(api, items):
    service_id = api.start()
    assert_error(api.post(f"/services/{service_id}/states/start", {"previous_state_id": 1}), 404,
                 "NotFoundException", "previous state 1")
    assert_error(api.post(f"/services/{service_id}/states/transition", {"from": {"state_id": 2}, "to": {}}), 404,
                 "NotFoundException", "state 2")
    assert api.get(f"/services/{service_id}/states").json == []
    assert_error(api.get(f"/services/{service_id}/states/{2**64}"), 400, "ValidationException")
