"""Bad input is a 400 (or 413) in the contract's shape that changes nothing (§1, §2), through
lambda_handler on moto: request bodies (fields, strict JSON, sizes, reserved keys, timestamps), ids in
paths and bodies, customer ids and contact keys, and failed requests that must leave every item as it
was. Where one rule concerns many routes, one test walks every route and collects what went wrong, so
a failure lists every route at once."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.support import (
    assert_error,
    error_problem,
    event_for,
    invoke,
    scan,
)


def visible(api, service_id: str) -> dict[str, Any]:
    """What readers see of a conversation: the service with everything embedded, its lists, and the
    customer's lists."""
    everything = "active_states=true&completed_states=true&active_tasks=true&completed_tasks=true&extensions=*"
    seen = {}
    for path in (f"/services/{service_id}?{everything}", f"/services/{service_id}/states?{everything}",
                 f"/services/{service_id}/tasks?extensions=*", "/customers/c/services?extensions=*",
                 "/customers/c/services/active", "/customers/c/services/completed",
                 f"/services/{service_id}/states/1?extensions=*", f"/services/{service_id}/tasks/1?extensions=*"):
        reply = api.get(path)
        seen[path] = (reply.status, reply.json)
    return seen


def conversation(api) -> dict[str, Any]:
    """A customer service 'c' with state 1 and task 1 (on state 1) and attached data a=1 on each."""
    service_id = api.start(customer_id="c", service_type="care", a=1)
    assert api.post(f"/services/{service_id}/states/start", {"state_type": "s", "a": 1}).json == {"state_id": 1}
    assert api.post(f"/services/{service_id}/tasks/start", {"task_type": "t", "state_id": 1, "a": 1}).json == \
        {"task_id": 1}
    return {"sid": service_id}


def raw(api, method: str, path: str, text: str | None):
    return api.request(method, path, raw_body=text)


def _send_json(api, method: str, path: str, body: Any):
    return api.request(method, path, raw_body=None if body is None else json.dumps(body))


# Every route with a service id in its path (§4, §6), with a body that would be valid, "{sid}"
# standing for the service id. States and tasks use id 1.
SERVICE_ID_ROUTES = [
    ("GET", "/services/{sid}", None),
    ("PUT", "/services/{sid}", {"ttl": 60}),
    ("DELETE", "/services/{sid}", None),
    ("POST", "/services/{sid}/end", {}),
    ("PUT", "/services/{sid}/extensions/x", 1),
    ("PUT", "/services/{sid}/extensions/x/merge", {"k": 1}),
    ("POST", "/customers/c/services/{sid}", {}),
    ("POST", "/services/{sid}/states/start", {"state_type": "s"}),
    ("POST", "/services/{sid}/states/transition", {"from": {"state_id": 1}, "to": {"state_type": "n"}}),
    ("GET", "/services/{sid}/states", None),
    ("GET", "/services/{sid}/states/active", None),
    ("GET", "/services/{sid}/states/completed", None),
    ("GET", "/services/{sid}/states/1", None),
    ("POST", "/services/{sid}/states/1/end", {}),
    ("PUT", "/services/{sid}/states/1/extensions/x", 1),
    ("PUT", "/services/{sid}/states/1/extensions/x/merge", {"k": 1}),
    ("POST", "/services/{sid}/tasks/start", {"task_type": "t"}),
    ("GET", "/services/{sid}/tasks", None),
    ("GET", "/services/{sid}/tasks/active", None),
    ("GET", "/services/{sid}/tasks/completed", None),
    ("GET", "/services/{sid}/tasks/1", None),
    ("POST", "/services/{sid}/tasks/1/end", {}),
    ("PUT", "/services/{sid}/tasks/1/extensions/x", 1),
    ("PUT", "/services/{sid}/tasks/1/extensions/x/merge", {"k": 1}),
]


# Every route with a state or task id in its path: (method, path with {id}, body).
CHILD_ID_ROUTES = [
    ("GET", "/services/{sid}/states/{id}", None),
    ("POST", "/services/{sid}/states/{id}/end", {}),
    ("PUT", "/services/{sid}/states/{id}/extensions/x", 1),
    ("PUT", "/services/{sid}/states/{id}/extensions/x/merge", {"k": 1}),
    ("GET", "/services/{sid}/tasks/{id}", None),
    ("POST", "/services/{sid}/tasks/{id}/end", {}),
    ("PUT", "/services/{sid}/tasks/{id}/extensions/x", 1),
    ("PUT", "/services/{sid}/tasks/{id}/extensions/x/merge", {"k": 1}),
]


# Every route that takes a body, with `{v}` marking where a hostile JSON fragment goes; a whole-body
# `{v}` is an extension PUT (any JSON value).
BODY_ROUTES = [
    ("POST", "/services/start", '{"customer_id": "c", "v": {v}}'),
    ("POST", "/services_composite/start",
     '{"services": [{"service": {"customer_id": "c", "v": {v}}, "state": {"state_type": "s"}}]}'),
    ("POST", "/services/{sid}/end", '{"v": {v}}'),
    ("POST", "/customers/c/services/{sid}", '{"v": {v}}'),
    ("PUT", "/services/{sid}", '{"ttl": 60, "v": {v}}'),
    ("PUT", "/services/{sid}/extensions/x", "{v}"),
    ("PUT", "/services/{sid}/extensions/x/merge", '{"v": {v}}'),
    ("POST", "/services/{sid}/states/start", '{"state_type": "s", "v": {v}}'),
    ("POST", "/services/{sid}/states/1/end", '{"v": {v}}'),
    ("POST", "/services/{sid}/states/transition", '{"from": {"state_id": 1}, "to": {"state_type": "n"}, "v": {v}}'),
    ("PUT", "/services/{sid}/states/1/extensions/x", "{v}"),
    ("PUT", "/services/{sid}/states/1/extensions/x/merge", '{"v": {v}}'),
    ("POST", "/services/{sid}/tasks/start", '{"task_type": "t", "v": {v}}'),
    ("POST", "/services/{sid}/tasks/1/end", '{"v": {v}}'),
    ("PUT", "/services/{sid}/tasks/1/extensions/x", "{v}"),
    ("PUT", "/services/{sid}/tasks/1/extensions/x/merge", '{"v": {v}}'),
]


# ---------------------------------------------------------------- request bodies


@pytest.mark.parametrize(
    "body, field",
    [
        ({"service_type": 1}, "customer_id or contact_key"),
        ({"customer_id": 5}, "customer_id"),
        ({"customer_id": "c", "est_duration": "5"}, "est_duration"),
        ({"customer_id": "c", "est_duration": -1}, "est_duration"),
        ({"customer_id": "c", "session_id": "x" * 33}, "session_id"),
        ({"customer_id": "c", "interaction_id": "x" * 51}, "interaction_id"),
        ({"customer_id": "c", "application_id": "7"}, "application_id"),
        ({"customer_id": "c", "resource_id": True}, "resource_id"),
        ({"customer_id": "c", "service_type": 1.5}, "service_type"),
        ({"customer_id": "c", "timestamp": "yesterday"}, "timestamp"),
        ({"customer_id": "c", "ttl": "10"}, "ttl"),
        ({"customer_id": "c", "expiration_time": "soon"}, "expiration_time"),
        ({"customer_id": "c", "k" * 129: 1}, "attached-data key"),
        ({"customer_id": "c", "started": 1}, "started"),
        ({"customer_id": ""}, "customer_id"),
    ],
)
def test_start_rejects_bad_input_and_stores_nothing(api, items, body, field):
    assert_error(api.post("/services/start", body), 400, "ValidationException", field)
    assert items() == []


@pytest.mark.parametrize("body, field", [
    ({"customer_id": "c", "ttl": 10**12}, "ttl"),
    ({"customer_id": "c", "expiration_time": "9999-12-31T23:00:00-05:00"}, "expiration_time"),
    ({"customer_id": "c", "timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp"),
    ({"customer_id": "c", "service_type": 2**70}, "service_type"),
    ({"customer_id": "c", "est_duration": 2**64}, "est_duration"),
    ({"customer_id": "c", "application_id": -(2**64)}, "application_id"),
])
def test_out_of_range_values_are_400(api, items, body, field):
    assert_error(api.post("/services/start", body), 400, "ValidationException", field)
    assert items() == []


@pytest.mark.parametrize("raw, mention", [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"),
                                          ('"text"', "JSON object"), ("", "body")])
def test_body_must_be_a_json_object(api, items, raw, mention):
    assert_error(api.post("/services/start", raw_body=raw), 400, "ValidationException", mention)
    assert items() == []


def test_body_that_is_not_utf8_is_400(api):

    event, handler = event_for("POST", "/services/start")
    event.update(body=base64.b64encode(b"{\x88\xff}").decode(), isBase64Encoded=True)
    assert_error(invoke(event, handler), 400, "ValidationException", "UTF-8")
    event.update(body=base64.b64encode(b'{"customer_id": "b64"}').decode())
    assert invoke(event, handler).status == 201


def test_body_over_128_kib_is_413(api, items):
    reply = api.post("/services/start", {"customer_id": "c", "blob": "x" * (128 * 1024)})
    assert_error(reply, 413, "PayloadTooLargeException", "limit")
    assert items() == []


def test_record_over_the_item_limit_is_413_and_changes_nothing(api):
    service_id = api.start(customer_id="c")
    for i in range(3):
        assert api.post(f"/customers/c/services/{service_id}", {f"k{i}": "x" * 120_000}).status == 204
    reply = api.post(f"/customers/c/services/{service_id}", {"k9": "x" * 120_000})
    assert_error(reply, 413, "PayloadTooLargeException")
    assert "k9" not in api.get(f"/services/{service_id}?extensions=*").json


# ---------------------------------------------------------------- strict JSON (§1)


HOSTILE_FRAGMENTS = {
    "nested-10000": "[" * 10_000 + "]" * 10_000,
    "nested-objects-10000": '{"a":' * 10_000 + "1" + "}" * 10_000,
    "nested-100": "[" * 100 + "]" * 100,
    "integer-5000-digits": "9" * 5000,
    "lone-surrogate": '"\\ud800"',
    "lone-low-surrogate": '"x\\udc00y"',
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "1e400": "1e400",
    "-1e400": "-1e400",
}


@pytest.mark.parametrize("name", list(HOSTILE_FRAGMENTS))
def test_invalid_or_unbounded_json_is_400_on_every_body_route_and_stores_nothing(api, table, name):
    sid = conversation(api)["sid"]
    before = scan(table)
    fragment = HOSTILE_FRAGMENTS[name]
    problems = []
    for method, template, body in BODY_ROUTES:
        path = template.replace("{sid}", sid)
        reply = raw(api, method, path, body.replace("{v}", fragment))
        problem = error_problem(reply, 400, "ValidationException")
        if problem:
            problems.append(f"{method} {path}: {problem}")
        elif scan(table) != before:
            problems.append(f"{method} {path}: answered 400 but changed what is stored")
            before = scan(table)
    assert problems == []
    assert scan(table) == before


def test_lone_surrogate_in_a_key_is_400(api, items):
    assert_error(raw(api, "POST", "/services/start", '{"customer_id": "c", "\\ud800": 1}'), 400,
                 "ValidationException")
    assert items() == []


def test_the_original_surrogate_request_is_400_not_409_on_state_and_task_starts(api, table):
    """State and task starts answered 409 "concurrent change; retry" to a lone surrogate."""
    sid = api.start()
    before = scan(table)
    text = '{"customer_id":"c","v":"\\ud800"}'
    assert_error(raw(api, "POST", "/services/start", text), 400, "ValidationException")
    assert_error(raw(api, "POST", f"/services/{sid}/states/start", '{"v":"\\ud800"}'), 400, "ValidationException")
    assert_error(raw(api, "POST", f"/services/{sid}/tasks/start", '{"v":"\\ud800"}'), 400, "ValidationException")
    assert scan(table) == before


def test_moderate_nesting_and_big_numbers_that_fit_are_kept_exactly(api):
    """The other side of the rule: what strict JSON allows is stored and returned exactly."""
    nested: Any = "leaf"
    for _ in range(20):
        nested = {"n": [nested]}
    values = {"nested": nested, "big": 2**63 - 1, "small": -(2**63), "real": 1.5e300, "tiny": 5e-324,
              "text": "\u00e9\u2603\U0001f600 \"q\" \\ \u0000 \t"}
    sid = api.start(customer_id="c", **values)
    reply = api.get(f"/services/{sid}?extensions=*")
    assert reply.status == 200
    assert {k: reply.json[k] for k in values} == values
    for token in ("NaN", "Infinity"):
        assert token not in reply.text


def test_non_finite_numbers_are_never_stored_nor_echoed(api, items):
    """`{"x": NaN}` answered 201 and reads returned `"x":NaN`, which strict parsers reject."""
    problems = []
    for literal in ("NaN", "Infinity", "-Infinity", "1e400"):
        problem = error_problem(raw(api, "POST", "/services/start", '{"customer_id": "c", "x": ' + literal + "}"), 400,
                                "ValidationException")
        if problem:
            problems.append(f"{literal}: {problem}")
    assert problems == []
    assert items() == []
    listed = api.get("/customers/c/services?extensions=*")
    assert listed.json == [] and "NaN" not in listed.text and "Infinity" not in listed.text


# ---------------------------------------------------------------- ids in paths and bodies (§1)


# Percent-encoded as a client sends them, and decoded as a gateway that decodes path parameters
# would hand them over (the local server's werkzeug did: `GET /services/%C2%B2` was a 500).
BAD_SERVICE_IDS = ["%C2%B2", "%C2%B9%C2%B2", "%E2%91%A0", "%D9%A1", "%EF%BC%91", "\u00b2", "\u00b9\u00b2", "\u2460",
                   "\u0661", "\uff11", "+1", "01", "1_0", "-1", "0",
                   "1.0", "0x1", "1e3", "%201", "9" * 30]


BAD_CHILD_IDS = ["%C2%B2", "%E2%91%A0", "%D9%A1", "\u00b2", "\u2460", "\u0661", "+1", "01", "1_0", "-1", "0", "1.0",
                 "0x1", "%201"]


def test_a_service_id_that_is_not_ascii_digits_is_404_on_every_route(api, table):
    """`GET /services/%C2%B2` answered 500 (Unicode digits); `+1`, `01`, `1_0` were read as numbers."""
    conversation(api)
    before = scan(table)
    problems = []
    for bad in BAD_SERVICE_IDS:
        for method, template, body in SERVICE_ID_ROUTES:
            path = template.replace("{sid}", bad)
            reply = _send_json(api, method, path, body)
            problem = error_problem(reply, 404, "NotFoundException")
            if problem:
                problems.append(f"{method} {path}: {problem}")
    assert problems == []
    assert scan(table) == before


def test_a_state_or_task_id_that_is_not_ascii_digits_is_400_on_every_route(api, table):
    sid = conversation(api)["sid"]
    before = scan(table)
    problems = []
    for bad in BAD_CHILD_IDS:
        problems += _child_id_problems(api, sid, bad)
    assert problems == []
    assert scan(table) == before


def _child_id_problems(api, sid: str, bad: str) -> list[str]:
    problems = []
    for method, template, body in CHILD_ID_ROUTES:
        path = template.replace("{sid}", sid).replace("{id}", bad)
        reply = _send_json(api, method, path, body)
        problem = error_problem(reply, 400, "ValidationException")
        if problem:
            problems.append(f"{method} {path}: {problem}")
    for method, path, body in (("GET", f"/services/{sid}/tasks?state_id={bad}", None),
                               ("POST", f"/services/{sid}/tasks/start", {"state_id": bad}),
                               ("POST", f"/services/{sid}/states/start", {"previous_state_id": bad})):
        if bad in ("01", "0"):
            continue  # the path rule (no leading zero) is not the body rule ("a string of decimal digits")
        if method == "POST" and (not bad.isascii() or "%" in bad):
            continue  # percent-encoding is a path matter; bodies carry the text itself
        problem = error_problem(_send_json(api, method, path, body), 400, "ValidationException")
        if problem:
            problems.append(f"{method} {path} {body}: {problem}")
    return problems


def test_ids_as_strings_that_are_not_decimal_digits_are_400(api, items):
    sid = api.start()
    api.start_state(sid)
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


# ---------------------------------------------------------------- reserved keys (§1)


SERVICE_FIELDS = ["service_id", "customer_id", "contact_key", "service_type", "est_duration", "started", "completed",
                  "duration", "disposition", "disposition_desc", "expiration_time", "active_states",
                  "completed_states", "active_tasks", "completed_tasks"]


STATE_FIELDS = ["state_id", "state_type", "service_id", "previous_state_id", "est_duration", "started", "completed",
                "duration", "disposition", "disposition_desc", "active_tasks", "completed_tasks"]


TASK_FIELDS = ["task_id", "task_type", "service_id", "state_id", "est_duration", "started", "completed", "duration",
               "disposition", "disposition_desc"]


FORGED = [("666", '"666"'), ("timestamp", '{"timestamp": "2001-01-01T00:00:00.000Z"}'), ("victim", '"victim"')]


def _reserved_key_problems(api, table, sid, prefix, fields) -> list[str]:
    before_items, before_seen = scan(table), visible(api, sid)
    problems = []
    for field in fields:
        for _, value in FORGED:
            for suffix in ("", "/merge"):
                body = value if not suffix else '{"x": ' + value + "}"
                path = f"{prefix}/extensions/{field}{suffix}"
                problem = error_problem(raw(api, "PUT", path, body), 400, "ValidationException")
                if problem:
                    problems.append(f"PUT {path} {body}: {problem}")
    if scan(table) != before_items:
        problems.append("stored items changed")
    if visible(api, sid) != before_seen:
        problems.append("reads changed")
    return problems


def test_extension_puts_cannot_name_service_fields(api, table):
    """`PUT /services/{id}/extensions/service_id "666"` (also completed, customer_id) answered 200 and
    reads then showed the forged values."""
    sid = conversation(api)["sid"]
    assert _reserved_key_problems(api, table, sid, f"/services/{sid}", SERVICE_FIELDS) == []


def test_extension_puts_cannot_name_state_fields(api, table):
    sid = conversation(api)["sid"]
    assert _reserved_key_problems(api, table, sid, f"/services/{sid}/states/1", STATE_FIELDS) == []


def test_extension_puts_cannot_name_task_fields(api, table):
    sid = conversation(api)["sid"]
    assert _reserved_key_problems(api, table, sid, f"/services/{sid}/tasks/1", TASK_FIELDS) == []


def test_the_original_forgeries_leave_reads_and_lists_true(api):
    sid = conversation(api)["sid"]
    for name, value in (("service_id", "666"), ("completed", {"timestamp": "2001-01-01T00:00:00.000Z"}),
                        ("customer_id", "victim")):
        assert_error(api.put(f"/services/{sid}/extensions/{name}", value), 400, "ValidationException")
    view = api.get(f"/services/{sid}?extensions=*").json
    assert view["service_id"] == sid and view["customer_id"] == "c" and "completed" not in view
    assert [s["service_id"] for s in api.get("/customers/c/services/active?extensions=*").json] == [sid]
    assert api.get("/customers/victim/services").json == []
    assert api.get("/customers/c/services/completed").json == []


# Body keys that name representation fields, on the routes where they are not fields of the request.
RESERVED_BODY_KEYS = [
    ("POST", "/services/start", {"customer_id": "c"}, ["service_id", "started", "completed", "duration",
                                                        "active_states", "completed_tasks"]),
    ("POST", "/customers/c/services/{sid}", {}, ["service_id", "started", "completed", "duration", "active_tasks"]),
    ("POST", "/services/{sid}/end", {}, ["service_id", "started", "completed", "duration", "active_states"]),
    ("POST", "/services/{sid}/states/start", {}, ["state_id", "service_id", "started", "completed", "duration",
                                                  "active_tasks"]),
    ("POST", "/services/{sid}/states/1/end", {}, ["state_id", "service_id", "started", "completed", "duration"]),
    ("POST", "/services/{sid}/states/transition", {"from": {"state_id": 1}, "to": {"state_type": "n"}},
     ["state_id", "service_id", "started", "completed", "duration"]),
    ("POST", "/services/{sid}/tasks/start", {}, ["task_id", "service_id", "started", "completed", "duration"]),
    ("POST", "/services/{sid}/tasks/1/end", {}, ["task_id", "service_id", "started", "completed", "duration"]),
    ("POST", "/services_composite/start", None, ["service_id", "completed", "duration"]),
]


def test_bodies_cannot_carry_representation_fields_as_attached_data(api, table):
    sid = conversation(api)["sid"]
    before_items, before_seen = scan(table), visible(api, sid)
    problems = []
    for method, template, base, keys in RESERVED_BODY_KEYS:
        path = template.replace("{sid}", sid)
        for key in keys:
            value = {"timestamp": "2001-01-01T00:00:00.000Z"} if key in ("started", "completed") else "666"
            if base is None:
                body = {"services": [{"service": {"customer_id": "c", key: value}, "state": {"state_type": "s"}}]}
            else:
                body = {**base, key: value}
            problem = error_problem(api.request(method, path, body), 400, "ValidationException")
            if problem:
                problems.append(f"{method} {path} {key}: {problem}")
    assert problems == []
    assert scan(table) == before_items
    assert visible(api, sid) == before_seen


# ---------------------------------------------------------------- customer ids and contact keys (§1)


REACHABLE = ["C#123", "?", "\\", '"', "\u00b0", "\u20ac", "\u2603", "\U0001f600", "100%", "+33 1",
             "C#123 ? \\ \" \u00b0 \u20ac \u2603 \U0001f600", "k" * 256]


UNADDRESSABLE = ["a/b", "/", "tab\there", "new\nline", "nul\u0000", "\u007f", "\u0085", "cr\r", "k" * 257, ""]


def _segment(value: str) -> str:
    return quote(value, safe="")


def test_every_accepted_customer_id_is_reachable_through_its_list_routes(api):
    """`customer_id` `C#123` answered 201, then `GET /customers/C%23123/services` answered 404 "no route"."""
    problems = []
    for value in REACHABLE:
        problems += _reachable_problems(api, value)
    assert problems == []


def _reachable_problems(api, value: str) -> list[str]:
    customer = api.start(customer_id=value, service_type="x")
    anonymous = api.start(contact_key=value)
    problems = []
    for path, expected in ((f"/customers/{_segment(value)}/services", [customer]),
                           (f"/customers/{_segment(value)}/services/active", [customer]),
                           (f"/customers/{_segment(value)}/services/completed", []),
                           (f"/services/anonymous/{_segment(value)}", [anonymous]),
                           (f"/services/anonymous/{_segment(value)}/active", [anonymous])):
        reply = api.get(path)
        if reply.status != 200:
            problems.append(f"GET {path}: {reply.status} {reply.text[:120]}")
        elif [s["service_id"] for s in reply.json] != expected:
            problems.append(f"GET {path}: {reply.text[:200]}")
    if api.get(f"/services/{customer}").json.get("customer_id") != value:
        problems.append(f"{value!r}: the service does not show its customer_id")
    if api.get(f"/services/{anonymous}").json.get("contact_key") != value:
        problems.append(f"{value!r}: the service does not show its contact_key")
    # Associating through the path moves the service to that customer.
    moved = api.start(customer_id="someone")
    associated = api.post(f"/customers/{_segment(value)}/services/{moved}")
    listed = api.get(f"/customers/{_segment(value)}/services")
    if associated.status != 204 or listed.status != 200 or \
            {s["service_id"] for s in listed.json} != {customer, moved}:
        problems.append(f"{value!r}: association through the path: {associated.status}, then {listed.text[:120]}")
    return problems


def test_customer_ids_and_contact_keys_no_route_could_reach_are_refused(api, table):
    sid = api.start(customer_id="c")
    before = scan(table)
    problems = []
    for value in UNADDRESSABLE:
        problems += _unaddressable_problems(api, sid, value)
    assert problems == []
    assert scan(table) == before


def _unaddressable_problems(api, sid: str, value: str) -> list[str]:
    problems = []
    requests = [
        ("POST", "/services/start", {"customer_id": value}),
        ("POST", "/services/start", {"contact_key": value}),
        ("POST", "/services/start", {"customer_id": "ok", "contact_key": value}),
        ("POST", "/services_composite/start", {"services": [{"service": {"customer_id": value}, "state": {}}]}),
        ("POST", "/services_composite/start", {"services": [{"service": {"contact_key": value}, "state": {}}]}),
        ("POST", f"/customers/c/services/{sid}", {"contact_key": value}),
    ]
    if value and "/" not in value:
        # In a path the value is percent-encoded (a `/` would be another path segment, not this route).
        requests.append(("POST", f"/customers/{_segment(value)}/services/{sid}", {}))
    for method, path, body in requests:
        problem = error_problem(api.request(method, path, body), 400, "ValidationException")
        if problem:
            problems.append(f"{method} {path} {body!r}: {problem}")
    return problems


def test_owner_ids_in_paths_are_bounded(api):
    assert_error(api.get("/customers/" + "c" * 257 + "/services"), 400, "ValidationException")
    assert_error(api.post("/customers/" + "c" * 257 + "/services/123"), 400, "ValidationException")


# ---------------------------------------------------------------- timestamps (§1)


BAD_TIMESTAMPS = ["2026-01-01T00:00:00Z\u0000garbage", "2026-01-01T00:00:00+01:00:00:00", "2026-01-01T00:00:00Zjunk",
                  "2026-01-01T00:00:00.000Z ", "2026-01-01", "2026-01-01T00:00", "2026-01-01 00:00:00Z",
                  "2026-01-01T00:00:00+0100", "2026-01-01T00:00:00.000+01:00[Europe/Paris]", "2026-01-01T24:00:00Z",
                  "\uff12026-01-01T00:00:00Z"]


GOOD_TIMESTAMPS = {"2026-01-01T00:00:00Z": "2026-01-01T00:00:00.000Z",
                   "2026-01-01T00:00:00": "2026-01-01T00:00:00.000Z",
                   "2026-01-01T01:00:00.5+01:00": "2026-01-01T00:00:00.500Z",
                   "2025-12-31T19:00:00.123456-05:00": "2026-01-01T00:00:00.123Z"}


def _timestamp_requests(sid: str, stamp: str) -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/services/start", {"customer_id": "c", "timestamp": stamp}),
        ("POST", "/services/start", {"customer_id": "c", "expiration_time": stamp}),
        ("POST", f"/services/{sid}/end", {"timestamp": stamp}),
        ("POST", f"/services/{sid}/end", {"expiration_time": stamp}),
        ("PUT", f"/services/{sid}", {"expiration_time": stamp}),
        ("POST", f"/services/{sid}/states/start", {"timestamp": stamp}),
        ("POST", f"/services/{sid}/states/1/end", {"timestamp": stamp}),
        ("POST", f"/services/{sid}/states/transition",
         {"from": {"state_id": 1}, "to": {"state_type": "n"}, "timestamp": stamp}),
        ("POST", f"/services/{sid}/tasks/start", {"timestamp": stamp}),
        ("POST", f"/services/{sid}/tasks/1/end", {"timestamp": stamp}),
        ("POST", "/services_composite/start",
         {"services": [{"service": {"customer_id": "c", "timestamp": stamp}, "state": {}}]}),
        ("POST", "/services_composite/start",
         {"services": [{"service": {"customer_id": "c", "expiration_time": stamp}, "state": {}}]}),
        ("POST", "/services_composite/start",
         {"services": [{"service": {"customer_id": "c"}, "state": {"timestamp": stamp}}]}),
        ("POST", "/services_composite/start",
         {"services": [{"service": {"customer_id": "c"}, "state": {}, "task": {"timestamp": stamp}}]}),
    ]


def test_timestamps_with_anything_else_are_400_on_every_field(api, table):
    """`2026-01-01T00:00:00Z\\u0000garbage` and `...+01:00:00:00` answered 201 on every timestamp field."""
    sid = conversation(api)["sid"]
    before = scan(table)
    problems = []
    for index, stamp in enumerate(BAD_TIMESTAMPS):
        for method, path, body in _timestamp_requests(sid, stamp):
            problem = error_problem(api.request(method, path, body), 400, "ValidationException")
            if problem:
                problems.append(f"{method} {path} {body}: {problem}")
        if index >= 3:
            continue  # the list routes' window parameters: with the first three
        for path in ("/customers/c/services", f"/services/{sid}/states", f"/services/{sid}/tasks"):
            for name in ("started_from", "started_to"):
                query = f"{path}?{name}={quote(stamp, safe='')}"
                problem = error_problem(api.get(query), 400, "ValidationException")
                if problem:
                    problems.append(f"GET {query}: {problem}")
    assert problems == []
    assert scan(table) == before


def test_the_timestamp_forms_the_contract_allows_are_normalised_to_utc_milliseconds(api):
    shown = {stamp: api.get(f"/services/{api.start(customer_id='c', timestamp=stamp)}").json["started"]["timestamp"]
             for stamp in GOOD_TIMESTAMPS}
    assert shown == GOOD_TIMESTAMPS


# ---------------------------------------------------------------- failed requests change nothing (§2)


def _unchanged_after(api, table, frozen, method: str, path: str, body: Any, status: int) -> str | None:
    frozen.advance(10)  # a write now would move expiration_time and the default expiry
    before = scan(table)
    reply = api.request(method, path, body)
    problem = error_problem(reply, status)
    if problem:
        return f"{method} {path} {body}: {problem}"
    if scan(table) != before:
        return f"{method} {path} {body}: answered {status} but changed what is stored"
    return None


FAILING_REQUESTS = ["previous-state", "transition-from", "task-on-state", "state-end-twice", "task-end-twice",
                    "task-on-completed-state", "end-before-start", "end-twice", "state-on-completed",
                    "task-on-completed", "transition-from-completed"]


def test_a_failed_request_changes_nothing(api, table, frozen):
    """A state start with previous_state_id 1000000 answered 404 but moved the service's
    expiration_time (also transitions and task starts)."""
    problems = [_failing_request_problem(api, table, frozen, case) for case in FAILING_REQUESTS]
    assert [p for p in problems if p] == []


def _failing_request_problem(api, table, frozen, case: str) -> str | None:
    sid = api.start(customer_id="c", timestamp="2026-01-01T00:00:00Z")
    api.post(f"/services/{sid}/states/start", {"state_type": "s", "timestamp": "2026-01-01T00:00:01Z"})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": 1})
    if case in ("state-end-twice", "task-on-completed-state", "transition-from-completed"):
        assert api.post(f"/services/{sid}/states/1/end", {}).status == 204
    if case == "task-end-twice":
        assert api.post(f"/services/{sid}/tasks/1/end", {}).status == 204
    if case in ("end-twice", "state-on-completed", "task-on-completed"):
        assert api.post(f"/services/{sid}/end", {}).status == 204
    requests = {
        "previous-state": ("POST", f"/services/{sid}/states/start", {"previous_state_id": 1_000_000}, 404),
        "transition-from": ("POST", f"/services/{sid}/states/transition",
                            {"from": {"state_id": 1_000_000}, "to": {"state_type": "n"}}, 404),
        "task-on-state": ("POST", f"/services/{sid}/tasks/start", {"state_id": 1_000_000}, 404),
        "state-end-twice": ("POST", f"/services/{sid}/states/1/end", {}, 409),
        "task-end-twice": ("POST", f"/services/{sid}/tasks/1/end", {}, 409),
        "task-on-completed-state": ("POST", f"/services/{sid}/tasks/start", {"state_id": 1}, 409),
        "end-before-start": ("POST", f"/services/{sid}/end", {"timestamp": "2025-01-01T00:00:00Z"}, 400),
        "end-twice": ("POST", f"/services/{sid}/end", {"ttl": 5}, 409),
        "state-on-completed": ("POST", f"/services/{sid}/states/start", {"state_type": "x"}, 409),
        "task-on-completed": ("POST", f"/services/{sid}/tasks/start", {"task_type": "x"}, 409),
        "transition-from-completed": ("POST", f"/services/{sid}/states/transition",
                                      {"from": {"state_id": 1}, "to": {"state_type": "n"}}, 409),
    }
    method, path, body, status = requests[case]
    problem = _unchanged_after(api, table, frozen, method, path, body, status)
    return f"{case}: {problem}" if problem else None
