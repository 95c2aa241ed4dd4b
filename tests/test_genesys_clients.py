"""Request sequences of existing Genesys Context Services clients (issue 7 points 1-6): what their
functional tests, documentation examples and Java clients send, which must keep working unchanged
(docs/API.md §1 ids as digit strings and end events that repeat start fields,
§2 time windows, §4/§6 merge routes, §5 repeated list parameters and bare `State` / `Task`).

Documentation examples are replayed with the pages they come from cited next to them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from tests.apiclient import Reply, event_for, invoke
from tests.test_hostile_input import assert_error, send

EVERY_EMBED = "active_states=true&completed_states=true&active_tasks=true&completed_tasks=true"


def get_multi(api, path: str, pairs: list[tuple[str, str]], headers: dict[str, str] | None = None) -> Reply:
    """GET with a query in which a name may repeat, as API Gateway passes it: every value, in order,
    in multiValueQueryStringParameters and the last one in queryStringParameters. Built here so the
    test does not depend on the test client keeping repeated parameters."""
    event, handler = event_for("GET", path, headers={**api.headers, **(headers or {})})
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    event["queryStringParameters"] = {name: values[-1] for name, values in multi.items()} or None
    event["multiValueQueryStringParameters"] = multi or None
    if "rawQueryString" in event:
        event["rawQueryString"] = urlencode(pairs)
    return invoke(event, handler)


def ids(reply: Reply, key: str) -> list:
    assert reply.status == 200, reply.text
    return [item[key] for item in reply.json]


def start_state(api, sid: str, **body: Any) -> int:
    reply = api.post(f"/services/{sid}/states/start", body)
    assert reply.status == 201, reply.text
    return reply.json["state_id"]


def start_task(api, sid: str, **body: Any) -> int:
    reply = api.post(f"/services/{sid}/tasks/start", body)
    assert reply.status == 201, reply.text
    return reply.json["task_id"]


# ---------------------------------------------------------------- 1. end events that repeat start fields


def test_service_end_repeating_service_type_and_customer_id_is_accepted_and_ignored(api):
    """Genesys' functional tests end a service with the service_type and customer_id it started with."""
    sid = api.start(customer_id="cust-7", service_type=110, note="n")
    before = api.get(f"/services/{sid}?extensions=*").json
    reply = api.post(f"/services/{sid}/end", {"service_type": 110, "customer_id": "cust-7", "disposition": 1,
                                              "timestamp": "2030-01-01T00:00:00Z"})
    assert reply.status == 204, reply.text
    after = api.get(f"/services/{sid}?extensions=*").json
    assert after["completed"] == {"timestamp": "2030-01-01T00:00:00.000Z"}
    assert after["service_type"] == 110 and after["customer_id"] == "cust-7" and after["note"] == "n"
    # Nothing was stored as attached data: the view differs from the start only by the end.
    assert set(after) - set(before) == {"completed", "duration", "disposition"}
    assert ids(api.get("/customers/cust-7/services/completed"), "service_id") == [sid]


def test_anonymous_service_end_repeating_contact_key_is_accepted_and_ignored(api):
    sid = api.start(contact_key="ani-555", service_type="ivr")
    reply = api.post(f"/services/{sid}/end", {"service_type": "ivr", "contact_key": "ani-555"})
    assert reply.status == 204, reply.text
    view = api.get(f"/services/{sid}?extensions=*").json
    assert view["contact_key"] == "ani-555" and "customer_id" not in view and "completed" in view
    assert set(view) <= {"service_id", "service_type", "contact_key", "started", "completed", "duration",
                         "expiration_time"}
    assert ids(api.get("/services/anonymous/ani-555/completed"), "service_id") == [sid]


def test_repeated_start_fields_with_other_values_never_change_the_service(api):
    sid = api.start(customer_id="cust-1", service_type="a")
    reply = api.post(f"/services/{sid}/end", {"service_type": "b", "customer_id": "cust-2"})
    assert reply.status in (204, 400), reply.text
    view = api.get(f"/services/{sid}?extensions=*").json
    assert view["service_type"] == "a" and view["customer_id"] == "cust-1"
    assert api.get("/customers/cust-2/services").json == []


def test_state_end_repeating_state_type_is_accepted_and_ignored(api):
    sid = api.start()
    state = start_state(api, sid, state_type="STT-Identify")
    reply = api.post(f"/services/{sid}/states/{state}/end", {"state_type": "STT-Identify", "disposition": "ok"})
    assert reply.status == 204, reply.text
    view = api.get(f"/services/{sid}/states/{state}?extensions=*").json
    assert view["state_type"] == "STT-Identify" and view["disposition"] == "ok" and "completed" in view
    assert set(view) <= {"state_id", "state_type", "service_id", "started", "completed", "duration", "disposition"}


def test_task_end_repeating_task_type_and_state_id_is_accepted_and_ignored(api):
    sid = api.start()
    state = start_state(api, sid, state_type=1)
    task = start_task(api, sid, task_type="TT-Lookup", state_id=state)
    loose = start_task(api, sid, task_type="TT-Loose")
    for task_id, body in ((task, {"task_type": "TT-Lookup", "state_id": state}),
                          (loose, {"task_type": "TT-Loose", "state_id": str(state)})):
        reply = api.post(f"/services/{sid}/tasks/{task_id}/end", body)
        assert reply.status == 204, reply.text
    attached = api.get(f"/services/{sid}/tasks/{task}?extensions=*").json
    assert attached["task_type"] == "TT-Lookup" and attached["state_id"] == state and "completed" in attached
    unattached = api.get(f"/services/{sid}/tasks/{loose}?extensions=*").json
    assert "state_id" not in unattached, "a repeated state_id on an end never attaches the task"
    assert set(attached) <= {"task_id", "task_type", "service_id", "state_id", "started", "completed", "duration"}


# ---------------------------------------------------------------- 2. lists given by repetition


def test_service_types_given_by_repetition_and_mixed_with_csv(api):
    made = {t: api.start(customer_id="rep", service_type=t, timestamp=f"2026-01-01T00:00:0{i}Z")
            for i, t in enumerate(["A", "B", "C", "D"])}
    both = get_multi(api, "/customers/rep/services", [("service_types", "A"), ("service_types", "B")])
    assert ids(both, "service_id") == [made["A"], made["B"]]
    mixed = get_multi(api, "/customers/rep/services/active", [("service_types", "A"), ("service_types", "B,C")])
    assert ids(mixed, "service_id") == [made["A"], made["B"], made["C"]]
    anonymous = api.start(contact_key="rep-k", service_type="A")
    api.start(contact_key="rep-k", service_type="Z")
    assert ids(get_multi(api, "/services/anonymous/rep-k", [("service_types", "B"), ("service_types", "A")]),
               "service_id") == [anonymous]


def test_state_and_task_types_given_by_repetition(api):
    sid = api.start()
    states = {t: start_state(api, sid, state_type=t) for t in ("x", "y", "z")}
    tasks = {t: start_task(api, sid, task_type=t) for t in ("p", "q", "r")}
    assert ids(get_multi(api, f"/services/{sid}/states", [("state_types", "x"), ("state_types", "z")]),
               "state_id") == [states["x"], states["z"]]
    assert ids(get_multi(api, f"/services/{sid}/states/active", [("state_types", "y"), ("state_types", "x,z")]),
               "state_id") == sorted(states.values())
    assert ids(get_multi(api, f"/services/{sid}/tasks", [("task_types", "p"), ("task_types", "r")]),
               "task_id") == [tasks["p"], tasks["r"]]
    assert ids(get_multi(api, f"/services/{sid}/tasks/active", [("task_types", "q,p"), ("task_types", "r")]),
               "task_id") == sorted(tasks.values())


def test_extensions_given_by_repetition(api):
    sid = api.start(customer_id="ext-rep", a=1, b=2, c=3)
    state = start_state(api, sid, s=4, t=5)
    reply = get_multi(api, f"/services/{sid}", [("extensions", "a"), ("extensions", "b,State.s"),
                                                ("active_states", "true")])
    assert reply.status == 200, reply.text
    view = reply.json
    assert (view.get("a"), view.get("b"), "c" in view) == (1, 2, False)
    assert view["active_states"][0]["state_id"] == state
    assert view["active_states"][0].get("s") == 4 and "t" not in view["active_states"][0]
    listed = get_multi(api, "/customers/ext-rep/services", [("extensions", "c"), ("extensions", "a")])
    assert listed.status == 200 and (listed.json[0].get("a"), listed.json[0].get("c"), "b" in listed.json[0]) == \
        (1, 3, False)


# ---------------------------------------------------------------- 3. bare State / Task


def test_bare_state_and_task_in_extensions_mean_every_key(api):
    sid = api.start(customer_id="bare", own=0)
    state = start_state(api, sid, state_type="s", Feedback={"rating": 7}, other="o")
    start_task(api, sid, task_type="t", state_id=state, Survey={"question1": 7}, more=[1])
    query = f"{EVERY_EMBED}&extensions=State,Task"
    view = api.get(f"/services/{sid}?{query}").json
    assert view["active_states"][0].get("Feedback") == {"rating": 7} and view["active_states"][0].get("other") == "o"
    assert view["active_tasks"][0].get("Survey") == {"question1": 7} and view["active_tasks"][0].get("more") == [1]
    assert "own" not in view, "State / Task select nothing on the service itself"
    listed = api.get(f"/customers/bare/services?{query}").json[0]
    assert listed["active_states"] == view["active_states"] and listed["active_tasks"] == view["active_tasks"]
    only_states = api.get(f"/services/{sid}?{EVERY_EMBED}&extensions=State").json
    assert only_states["active_states"][0].get("Feedback") == {"rating": 7}
    assert "Survey" not in only_states["active_tasks"][0]


# ---------------------------------------------------------------- 4. Merge Extension Data


def merge(api, path: str, body: Any) -> Reply:
    return send(api, "PUT", f"{path}/merge", body)


def _new_value(reply: Reply, name: str) -> Any:
    """The new value from a merge answer: the contract says "200 with the key's new value"; the
    deprecated PUT answers `{name: value}`, so both that shape and the bare value are read."""
    body = reply.json
    return body[name] if isinstance(body, dict) and set(body) == {name} else body


def merged_value(reply: Reply, name: str) -> Any:
    assert reply.status == 200, reply.text
    return _new_value(reply, name)


# RFC 7386 Appendix A cases whose target and patch are objects (the merge route takes an object).
RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


def _targets(api) -> list[tuple[str, str]]:
    """(extension path prefix, read path) for a service, a state and a task."""
    sid = api.start(customer_id="merge")
    state = start_state(api, sid)
    task = start_task(api, sid)
    return [(f"/services/{sid}", f"/services/{sid}"), (f"/services/{sid}/states/{state}",
                                                       f"/services/{sid}/states/{state}"),
            (f"/services/{sid}/tasks/{task}", f"/services/{sid}/tasks/{task}")]


def test_merge_follows_json_merge_patch_on_services_states_and_tasks(api):
    problems = []
    targets = _targets(api)
    for target, patch, result in RFC7386:
        for prefix, read in targets:
            assert api.put(f"{prefix}/extensions/data", target).status == 200
            reply = merge(api, f"{prefix}/extensions/data", patch)
            if reply.status != 200 or _new_value(reply, "data") != result:
                problems.append(f"{target} + {patch} on {prefix}: {reply.status} {reply.text[:120]}")
            elif api.get(f"{read}?extensions=data").json.get("data") != result:
                problems.append(f"{target} + {patch} on {prefix}: stored {api.get(f'{read}?extensions=data').text}")
    assert problems == []


def test_merge_creates_an_absent_key_and_keeps_the_others(api):
    for prefix, read in _targets(api):
        assert api.put(f"{prefix}/extensions/keep", {"x": 1}).status == 200
        reply = merge(api, f"{prefix}/extensions/agent", {"agentID": 2025, "score": None, "nested": {"n": None}})
        assert merged_value(reply, "agent") == {"agentID": 2025, "nested": {}}, prefix
        view = api.get(f"{read}?extensions=*").json
        assert view["agent"] == {"agentID": 2025, "nested": {}} and view["keep"] == {"x": 1}, prefix


def test_merge_onto_a_value_that_is_not_an_object_is_400_and_changes_nothing(api):
    problems = []
    targets = _targets(api)
    for stored in ([1, 2], "text", 5, True, None):
        for prefix, read in targets:
            assert api.put(f"{prefix}/extensions/data", raw_body=json.dumps(stored)).status == 200
            reply = merge(api, f"{prefix}/extensions/data", {"a": 1})
            if reply.status != 400 or api.get(f"{read}?extensions=data").json.get("data") != stored:
                problems.append(f"merge onto {stored!r} on {prefix}: {reply.status} {reply.text[:120]}")
    assert problems == []


def test_merge_body_must_be_an_object(api):
    problems = []
    targets = _targets(api)
    for body in ([{"a": 1}], "x", 1, None):
        for prefix, read in targets:
            assert api.put(f"{prefix}/extensions/data", {"a": 0}).status == 200
            reply = send(api, "PUT", f"{prefix}/extensions/data/merge", raw_body=json.dumps(body))
            if reply.status != 400 or api.get(f"{read}?extensions=data").json.get("data") != {"a": 0}:
                problems.append(f"merge body {body!r} on {prefix}: {reply.status} {reply.text[:120]}")
    assert problems == []


def test_merge_on_unknown_elements_is_404(api):
    sid = api.start()
    for path in ("/services/4242/extensions/x/merge", f"/services/{sid}/states/9/extensions/x/merge",
                 f"/services/{sid}/tasks/9/extensions/x/merge"):
        assert_error(send(api, "PUT", path, {"a": 1}), 404, "NotFoundException")


def test_merge_documentation_example(api):
    """https://docs.genesys.com/Documentation/CS/latest/API/MergeExtensionData: a PUT creates the
    `agent` extension, a merge adds to it without overwriting what is there, a GET reads it back
    (values here are our own)."""
    sid = api.start(customer_id="doc-merge")
    assert api.put(f"/services/{sid}/extensions/agent", {"agentID": 2025, "score": 85}).status == 200
    reply = merge(api, f"/services/{sid}/extensions/agent", {"score": 90, "skills": {"billing": 3}})
    assert merged_value(reply, "agent") == {"agentID": 2025, "score": 90, "skills": {"billing": 3}}
    # "You can merge maps" ... "This query will not work with extension lists".
    assert api.put(f"/services/{sid}/extensions/offers", [{"offer_name": "card", "type": 9}]).status == 200
    assert_error(merge(api, f"/services/{sid}/extensions/offers", {"type": 10}), 400, "ValidationException")
    view = api.get(f"/services/{sid}?extensions=agent,offers").json
    assert view["agent"] == {"agentID": 2025, "score": 90, "skills": {"billing": 3}}
    assert view["offers"] == [{"offer_name": "card", "type": 9}]


# ---------------------------------------------------------------- 5. ids as digit strings; time windows


def test_ids_as_digit_strings_in_bodies(api):
    """Java clients hold ids as strings and send `"state_id": "1"`."""
    sid = api.start()
    first = start_state(api, sid, state_type="a")
    second = start_state(api, sid, state_type="b", previous_state_id=str(first))
    assert api.get(f"/services/{sid}/states/{second}").json["previous_state_id"] == first
    task = start_task(api, sid, task_type="t", state_id=str(second))
    assert api.get(f"/services/{sid}/tasks/{task}").json["state_id"] == second
    reply = api.post(f"/services/{sid}/states/transition", {"from": {"state_id": str(second)},
                                                            "to": {"state_type": "c"}})
    assert reply.status == 201, reply.text
    third = reply.json["state_id"]
    assert isinstance(third, int)
    assert api.get(f"/services/{sid}/states/{third}").json["previous_state_id"] == second
    assert "completed" in api.get(f"/services/{sid}/states/{second}").json


def test_ids_as_strings_that_are_not_decimal_digits_are_400(api, items):
    sid = api.start()
    start_state(api, sid)
    before = items()
    problems = []
    for bad in ("x", "1.5", "", " 1", "1 ", "-1", "+1", "1e2", "\u0661"):
        for path, body in ((f"/services/{sid}/tasks/start", {"state_id": bad}),
                           (f"/services/{sid}/states/start", {"previous_state_id": bad}),
                           (f"/services/{sid}/states/transition", {"from": {"state_id": bad}, "to": {}})):
            reply = api.post(path, body)
            if reply.status != 400 or reply.json.get("exception") != "ValidationException":
                problems.append(f"POST {path} {body}: {reply.status} {reply.text[:120]}")
    assert problems == []
    assert items() == before


def _list_routes(api) -> list[str]:
    sid = api.start(customer_id="win", contact_key="win-k")
    api.start(contact_key="win-k")
    start_state(api, sid)
    start_task(api, sid)
    routes = []
    for base in ("/customers/win/services", "/services/anonymous/win-k", f"/services/{sid}/states",
                 f"/services/{sid}/tasks"):
        routes += [base, base + "/active", base + "/completed"]
    return routes


def test_a_time_window_that_ends_before_it_starts_is_400_on_every_list_route(api):
    """Real DynamoDB rejects `BETWEEN hi AND lo` (a 500 once deployed) while moto answers []."""
    problems = []
    for route in _list_routes(api):
        query = "started_from=2026-02-01T00:00:00Z&started_to=2026-01-01T00:00:00Z"
        reply = api.get(f"{route}?{query}")
        if reply.status != 400 or reply.json.get("exception") != "ValidationException":
            problems.append(f"GET {route}?{query}: {reply.status} {reply.text[:120]}")
        # Offsets count: 02:00+02:00 is 00:00Z, 1 ms before the end: a valid (empty) window.
        fine = api.get(f"{route}?started_from=2026-01-01T02:00:00%2B02:00&started_to=2026-01-01T00:00:00.001Z")
        if fine.status != 200:
            problems.append(f"GET {route} (window of 1 ms): {fine.status} {fine.text[:120]}")
    assert problems == []


# ---------------------------------------------------------------- 6. state lists embed each state's tasks


def test_state_lists_embed_each_states_tasks(api):
    sid = api.start()
    first = start_state(api, sid, state_type="one")
    second = start_state(api, sid, state_type="two")
    t1 = start_task(api, sid, state_id=first, task_type="a", tag="x")
    t2 = start_task(api, sid, state_id=first, task_type="b")
    t3 = start_task(api, sid, state_id=second, task_type="c")
    start_task(api, sid, task_type="loose")
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
        assert ids(listed, "state_id") == expected, path
        for state in listed.json:
            assert state["active_tasks"] == single[state["state_id"]]["active_tasks"], path
            assert state["completed_tasks"] == single[state["state_id"]]["completed_tasks"], path
    only_active = api.get(f"/services/{sid}/states?active_tasks=true").json
    assert [t["task_id"] for t in only_active[0]["active_tasks"]] == [t1] and "completed_tasks" not in only_active[0]


# ---------------------------------------------------------------- documentation examples


def test_query_states_documentation_example(api):
    """https://docs.genesys.com/Documentation/CS/latest/API/QueryStates: active states with their
    active and completed tasks and the `Feedback` extension (the page writes `&` for the `?`)."""
    sid = api.start(customer_id="doc")
    state = start_state(api, sid, state_type=100, est_duration=60, application_type=400, resource_id=20,
                        media_type=2, resource_type=200, application_id=40, interaction_id=51)
    # https://docs.genesys.com/Documentation/CS/latest/API/UpdateStateExtension: single- and multi-valued.
    assert api.put(f"/services/{sid}/states/{state}/extensions/Feedback",
                   {"FeedbackType": "survey", "rating": 7}).status == 200
    assert api.put(f"/services/{sid}/states/{state}/extensions/Satisfaction",
                   [{"rating": 2, "usefull": True}, {"rating": 8, "usefull": False}]).status == 200
    task = start_task(api, sid, state_id=state, task_type=55)
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
    start_state(api, sid)
    state = start_state(api, sid)
    wanted = [start_task(api, sid, task_type=t, state_id=state, Survey={"q": i})
              for i, t in enumerate(["STT-DefineCustomerNeed", "STT-FillCustomerInfo"])]
    start_task(api, sid, task_type="STT-Other", state_id=state)
    start_task(api, sid, task_type="STT-DefineCustomerNeed")
    assert api.post(f"/services/{sid}/states/{state}/end", {}).status == 204
    reply = api.get(f"/services/{sid}/tasks/completed?task_types=STT-DefineCustomerNeed%2CSTT-FillCustomerInfo"
                    f"&state_id={state}&extensions=Survey")
    assert ids(reply, "task_id") == wanted
    assert [t["Survey"] for t in reply.json] == [{"q": 0}, {"q": 1}]


def test_start_task_with_attached_data_documentation_example(api):
    """https://docs.genesys.com/Documentation/CS/latest/API/Extension: a task start carrying an
    integer interaction_id, a state_id and two extensions, one of them multi-valued."""
    sid = api.start(customer_id="doc")
    for _ in range(3):
        start_state(api, sid)
    body = {"interaction_id": 42, "est_duration": 460, "state_id": 3, "task_type": "customer info",
            "Survey": {"url": "http://ourServer/storage/userAnswers", "question1": 7, "question2": True},
            "Proposal": [{"car type": "cabriolet", "seats": 2}, {"car type": "S.U.V.", "seats": 8}]}
    task = start_task(api, sid, **body)
    view = api.get(f"/services/{sid}/tasks/{task}?extensions=Survey,Proposal").json
    assert view["state_id"] == 3 and view["est_duration"] == 460 and view["task_type"] == "customer info"
    assert view["started"]["interaction_id"] == "42"
    assert view["Survey"] == body["Survey"] and view["Proposal"] == body["Proposal"]


def test_complete_service_documentation_sequence(api):
    """https://docs.genesys.com/Documentation/CS/latest/API/StartService and .../CompleteService: start
    with attached data, complete with end-event fields and new attached data that replaces the old."""
    sid = api.start(customer_id="doc-cust", service_type=110, session_id="s1", interaction_id="i1",
                    application_type=1, application_id=2, resource_type=3, resource_id=4, media_type="voice",
                    Offer={"name": "first"})
    reply = api.post(f"/services/{sid}/end", {"session_id": "s2", "interaction_id": "i2", "disposition": 5,
                                              "disposition_desc": "done", "Offer": {"name": "second"}})
    assert reply.status == 204
    view = api.get(f"/services/{sid}?extensions=Offer").json
    assert view["Offer"] == {"name": "second"} and view["disposition"] == 5 and view["disposition_desc"] == "done"
    assert view["started"]["session_id"] == "s1" and view["completed"]["session_id"] == "s2"
