"""States and tasks of a service through lambda_handler on moto (§6): ids, shapes, transitions, tasks on
and off a state, cascades when a state or the service ends, durations, the documentation's examples."""

from __future__ import annotations

from tests.support import (
    assert_error,
    element_ids,
)

# ---------------------------------------------------------------- states


def test_state_ids_start_at_one_and_increase(api):
    service_id = api.start()
    assert [api.start_state(service_id, state_type=t) for t in ("a", "b", "c")] == [1, 2, 3]
    other = api.start()
    assert api.start_state(other) == 1


def test_state_shape_and_end(api):
    service_id = api.start()
    first = api.start_state(service_id, state_type="identify", est_duration=30, media_type="voice",
                        timestamp="2026-11-27T10:00:00Z", memo="m")
    second = api.start_state(service_id, state_type=2, previous_state_id=first, timestamp="2026-11-27T10:00:05Z")
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
    state = api.start_state(service_id)
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
    ids = [api.start_state(service_id, state_type=t) for t in ("a", "b", "a", "c")]
    api.post(f"/services/{service_id}/states/{ids[1]}/end")
    ids_of = lambda path: [s["state_id"] for s in api.get(f"/services/{service_id}/states{path}").json]
    assert ids_of("") == [1, 2, 3, 4]
    assert ids_of("/active") == [1, 3, 4]
    assert ids_of("/completed") == [2]
    assert ids_of("?state_types=a,c") == [1, 3, 4]
    first = api.get(f"/services/{service_id}/states?limit=3")
    assert [s["state_id"] for s in first.json] == [1, 2, 3] and "Link" in first.headers
    assert_error(api.get("/services/1234/states"), 404, "NotFoundException")


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


def test_ids_as_digit_strings_in_bodies(api):
    """Java clients hold ids as strings and send `"state_id": "1"`."""
    sid = api.start()
    first = api.start_state(sid, state_type="a")
    second = api.start_state(sid, state_type="b", previous_state_id=str(first))
    assert api.get(f"/services/{sid}/states/{second}").json["previous_state_id"] == first
    task = api.start_task(sid, task_type="t", state_id=str(second))
    assert api.get(f"/services/{sid}/tasks/{task}").json["state_id"] == second
    reply = api.post(f"/services/{sid}/states/transition", {"from": {"state_id": str(second)},
                                                            "to": {"state_type": "c"}})
    assert reply.status == 201, reply.text
    third = reply.json["state_id"]
    assert isinstance(third, int)
    assert api.get(f"/services/{sid}/states/{third}").json["previous_state_id"] == second
    assert "completed" in api.get(f"/services/{sid}/states/{second}").json


# ---------------------------------------------------------------- transition


def test_transition_completes_old_and_starts_new_atomically(api):
    service_id = api.start()
    old = api.start_state(service_id, state_type="greet")
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
    old = api.start_state(service_id)
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
    state = api.start_state(service_id)
    loose = api.start_task(service_id, task_type="lookup", est_duration=3)
    attached = api.start_task(service_id, task_type=5, state_id=state)
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
    state = api.start_state(service_id)
    api.start_task(service_id, task_type="a")
    api.start_task(service_id, task_type="b", state_id=state)
    api.start_task(service_id, task_type="a", state_id=state)
    api.post(f"/services/{service_id}/tasks/1/end")
    ids_of = lambda path: [t["task_id"] for t in api.get(f"/services/{service_id}/tasks{path}").json]
    assert ids_of("") == [1, 2, 3]
    assert ids_of("/active") == [2, 3]
    assert ids_of("/completed") == [1]
    assert ids_of(f"?state_id={state}") == [2, 3]
    assert ids_of("?task_types=a") == [1, 3]


# ---------------------------------------------------------------- end events that repeat the start's fields (§1)


def test_state_end_repeating_state_type_is_accepted_and_ignored(api):
    sid = api.start()
    state = api.start_state(sid, state_type="STT-Identify")
    reply = api.post(f"/services/{sid}/states/{state}/end", {"state_type": "STT-Identify", "disposition": "ok"})
    assert reply.status == 204, reply.text
    view = api.get(f"/services/{sid}/states/{state}?extensions=*").json
    assert view["state_type"] == "STT-Identify" and view["disposition"] == "ok" and "completed" in view
    assert set(view) <= {"state_id", "state_type", "service_id", "started", "completed", "duration", "disposition"}


def test_task_end_repeating_task_type_and_state_id_is_accepted_and_ignored(api):
    sid = api.start()
    state = api.start_state(sid, state_type=1)
    task = api.start_task(sid, task_type="TT-Lookup", state_id=state)
    loose = api.start_task(sid, task_type="TT-Loose")
    for task_id, body in ((task, {"task_type": "TT-Lookup", "state_id": state}),
                          (loose, {"task_type": "TT-Loose", "state_id": str(state)})):
        reply = api.post(f"/services/{sid}/tasks/{task_id}/end", body)
        assert reply.status == 204, reply.text
    attached = api.get(f"/services/{sid}/tasks/{task}?extensions=*").json
    assert attached["task_type"] == "TT-Lookup" and attached["state_id"] == state and "completed" in attached
    unattached = api.get(f"/services/{sid}/tasks/{loose}?extensions=*").json
    assert "state_id" not in unattached, "a repeated state_id on an end never attaches the task"
    assert set(attached) <= {"task_id", "task_type", "service_id", "state_id", "started", "completed", "duration"}


# ---------------------------------------------------------------- cascades


def test_ending_a_state_completes_its_active_tasks(api):
    service_id = api.start()
    state = api.start_state(service_id)
    task = api.start_task(service_id, state_id=state)
    loose = api.start_task(service_id)
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
        state = api.start_state(service_id)
        api.start_task(service_id, state_id=state)
        api.start_task(service_id)
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


def test_ending_an_unknown_child_of_a_completed_service_is_404(api):
    sid = api.start(customer_id="u")
    task = api.post(f"/services/{sid}/tasks/start", {"task_type": "t"}).json["task_id"]
    assert api.post(f"/services/{sid}/end", {}).status == 204
    assert api.post(f"/services/{sid}/states/77/end", {}).status == 404
    assert api.post(f"/services/{sid}/tasks/77/end", {}).status == 404
    again = api.post(f"/services/{sid}/tasks/{task}/end", {"timestamp": "2001-01-01T00:00:00Z"})
    assert again.status == 409, again.text  # completed with its service, whatever the timestamp


def test_no_negative_duration_when_a_parent_ends_before_a_child_started(api):
    """A state started in 2099 and completed by its service's end showed −2,274,997,457,781 ms."""
    sid = api.start(customer_id="c", timestamp="2026-01-01T00:00:00Z")
    api.post(f"/services/{sid}/states/start", {"timestamp": "2099-01-01T00:00:00Z"})
    api.post(f"/services/{sid}/tasks/start", {"state_id": 1, "timestamp": "2099-06-01T00:00:00Z"})
    api.post(f"/services/{sid}/tasks/start", {"timestamp": "2098-01-01T00:00:00Z"})
    assert api.post(f"/services/{sid}/end", {"timestamp": "2030-01-01T00:00:00Z"}).status == 204
    view = api.get(f"/services/{sid}?completed_states=true&completed_tasks=true").json
    children = view["completed_states"] + view["completed_tasks"]
    assert len(children) == 3
    for child in children + [api.get(f"/services/{sid}/states/1").json, api.get(f"/services/{sid}/tasks/1").json]:
        assert child["duration"] >= 0, child
        assert child["completed"]["timestamp"] >= child["started"]["timestamp"], child
    state = api.get(f"/services/{sid}/states/1").json
    assert state["completed"]["timestamp"] == "2099-01-01T00:00:00.000Z" and state["duration"] == 0


def test_no_negative_duration_when_a_state_ends_before_its_task_started(api):
    sid = api.start(customer_id="c", timestamp="2026-01-01T00:00:00Z")
    api.post(f"/services/{sid}/states/start", {"timestamp": "2026-01-01T00:00:00Z"})
    api.post(f"/services/{sid}/tasks/start", {"state_id": 1, "timestamp": "2027-01-01T00:00:00Z"})
    assert api.post(f"/services/{sid}/states/1/end", {"timestamp": "2026-06-01T00:00:00Z"}).status == 204
    task = api.get(f"/services/{sid}/tasks/1").json
    assert task["duration"] == 0 and task["completed"]["timestamp"] == "2027-01-01T00:00:00.000Z"


# ---------------------------------------------------------------- state lists embed each state's tasks; the documentation's examples


def test_state_lists_embed_each_states_tasks(api):
    sid = api.start()
    first = api.start_state(sid, state_type="one")
    second = api.start_state(sid, state_type="two")
    t1 = api.start_task(sid, state_id=first, task_type="a", tag="x")
    t2 = api.start_task(sid, state_id=first, task_type="b")
    t3 = api.start_task(sid, state_id=second, task_type="c")
    api.start_task(sid, task_type="loose")
    assert api.post(f"/services/{sid}/tasks/{t2}/end", {}).status == 204
    assert api.post(f"/services/{sid}/states/{second}/end", {}).status == 204  # completes t3 too
    query = "active_tasks=true&completed_tasks=true&extensions=Task.*"
    single = {s: api.get(f"/services/{sid}/states/{s}?{query}").json for s in (first, second)}
    assert [t["task_id"] for t in single[first]["active_tasks"]] == [t1]
    assert [t["task_id"] for t in single[first]["completed_tasks"]] == [t2]
    assert [t["task_id"] for t in single[second]["completed_tasks"]] == [t3]
    for path, expected in ((f"/services/{sid}/states", [first, second]),
                           (f"/services/{sid}/states/active", [first]),
                           (f"/services/{sid}/states/completed", [second])):
        listed = api.get(f"{path}?{query}")
        assert element_ids(listed, "state_id") == expected, path
        for state in listed.json:
            assert state["active_tasks"] == single[state["state_id"]]["active_tasks"], path
            assert state["completed_tasks"] == single[state["state_id"]]["completed_tasks"], path
    only_active = api.get(f"/services/{sid}/states?active_tasks=true").json
    assert [t["task_id"] for t in only_active[0]["active_tasks"]] == [t1] and "completed_tasks" not in only_active[0]


def test_query_states_documentation_example(api):
    """https://docs.genesys.com/Documentation/CS/latest/API/QueryStates: active states with their
    active and completed tasks and the `Feedback` extension (the page writes `&` for the `?`)."""
    sid = api.start(customer_id="doc")
    state = api.start_state(sid, state_type=100, est_duration=60, application_type=400, resource_id=20,
                        media_type=2, resource_type=200, application_id=40, interaction_id=51)
    # https://docs.genesys.com/Documentation/CS/latest/API/UpdateStateExtension: single- and multi-valued.
    assert api.put(f"/services/{sid}/states/{state}/extensions/Feedback",
                   {"FeedbackType": "survey", "rating": 7}).status == 200
    assert api.put(f"/services/{sid}/states/{state}/extensions/Satisfaction",
                   [{"rating": 2, "usefull": True}, {"rating": 8, "usefull": False}]).status == 200
    task = api.start_task(sid, state_id=state, task_type=55)
    reply = api.get(f"/services/{sid}/states/active?active_tasks=true&completed_tasks=true&extensions=Feedback")
    assert reply.status == 200
    (listed,) = reply.json
    assert listed["state_id"] == state and listed["state_type"] == 100 and listed["est_duration"] == 60
    assert listed["started"]["interaction_id"] == "51" and listed["started"]["media_type"] == 2
    assert listed["Feedback"] == {"FeedbackType": "survey", "rating": 7} and "Satisfaction" not in listed
    assert [t["task_id"] for t in listed["active_tasks"]] == [task] and listed["completed_tasks"] == []


def test_query_tasks_documentation_example(api):
    """https://docs.genesys.com/Documentation/CS/8.5.0/API/QueryTasks: completed tasks of two types
    (given as an encoded CSV) on one state, with the `Survey` extension."""
    sid = api.start(customer_id="doc")
    api.start_state(sid)
    state = api.start_state(sid)
    wanted = [api.start_task(sid, task_type=t, state_id=state, Survey={"q": i})
              for i, t in enumerate(["STT-DefineCustomerNeed", "STT-FillCustomerInfo"])]
    api.start_task(sid, task_type="STT-Other", state_id=state)
    api.start_task(sid, task_type="STT-DefineCustomerNeed")
    assert api.post(f"/services/{sid}/states/{state}/end", {}).status == 204
    reply = api.get(f"/services/{sid}/tasks/completed?task_types=STT-DefineCustomerNeed%2CSTT-FillCustomerInfo"
                    f"&state_id={state}&extensions=Survey")
    assert element_ids(reply, "task_id") == wanted
    assert [t["Survey"] for t in reply.json] == [{"q": 0}, {"q": 1}]


def test_start_task_with_attached_data_documentation_example(api):
    """https://docs.genesys.com/Documentation/CS/latest/API/Extension: a task start carrying an
    integer interaction_id, a state_id and two extensions, one of them multi-valued."""
    sid = api.start(customer_id="doc")
    for _ in range(3):
        api.start_state(sid)
    body = {"interaction_id": 42, "est_duration": 460, "state_id": 3, "task_type": "customer info",
            "Survey": {"url": "http://ourServer/storage/userAnswers", "question1": 7, "question2": True},
            "Proposal": [{"car type": "cabriolet", "seats": 2}, {"car type": "S.U.V.", "seats": 8}]}
    task = api.start_task(sid, **body)
    view = api.get(f"/services/{sid}/tasks/{task}?extensions=Survey,Proposal").json
    assert view["state_id"] == 3 and view["est_duration"] == 460 and view["task_type"] == "customer info"
    assert view["started"]["interaction_id"] == "42"
    assert view["Survey"] == body["Survey"] and view["Proposal"] == body["Proposal"]
