"""Hostile input (issue 13), each defect with the request that reproduced it, written from the
contract (../shared/spec/API.md §1 strict JSON, timestamps, path ids, customer ids, reserved keys,
size; §2 one commit point; §3 no negative durations; §4 composite validated first; §5 Link).

Most tests call the real `lambda_handler` through tests.apiclient on moto; the last group sends
the same requests to the local server (`python -m local.server`) over HTTP.

Where one defect concerns many routes, one test walks every route on one table and collects what
went wrong, so a failure lists every route at once (and the table is built once, not per route).
"""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.apiclient import Reply, event_for, invoke

ERROR_KEYS = {"message", "exception"}
TABLE = os.environ.get("TABLE_NAME", "context-services-test")


# ---------------------------------------------------------------- helpers


def scan(client) -> list[dict[str, Any]] | str:
    """Every stored item, raw (attribute values as DynamoDB holds them), in key order; or what went
    wrong when the table cannot even be scanned (moto refuses to scan an item holding a lone surrogate)."""
    found, request = [], {"TableName": TABLE, "ConsistentRead": True}
    while True:
        try:
            page = client.scan(**request)
        except ClientError as error:
            return f"the stored items cannot be scanned: {error}"
        found += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(found, key=lambda item: (item["PK"]["S"], item["SK"]["S"]))


def error_problem(reply, status: int, exception: str | None = None) -> str | None:
    """None when `reply` is the contract's error (§2) with that status, else what is wrong."""
    if reply.status != status:
        return f"status {reply.status} (expected {status}): {reply.text[:200]}"
    try:
        body = json.loads(reply.text)
    except ValueError:
        return f"error body is not JSON: {reply.text[:200]}"
    if not isinstance(body, dict) or set(body) != ERROR_KEYS:
        return f"error body is not {{message, exception}}: {reply.text[:200]}"
    if exception and body["exception"] != exception:
        return f"exception {body['exception']} (expected {exception})"
    return None


def assert_error(reply, status: int, exception: str | None = None, mentions: str | None = None) -> None:
    problem = error_problem(reply, status, exception)
    assert problem is None, problem
    if mentions:
        assert mentions in reply.json["message"], reply.json["message"]


def conversation(api) -> dict[str, Any]:
    """A customer service 'c' with state 1 and task 1 (on state 1) and attached data a=1 on each."""
    service_id = api.start(customer_id="c", service_type="care", a=1)
    assert api.post(f"/services/{service_id}/states/start", {"state_type": "s", "a": 1}).json == {"state_id": 1}
    assert api.post(f"/services/{service_id}/tasks/start", {"task_type": "t", "state_id": 1, "a": 1}).json == \
        {"task_id": 1}
    return {"sid": service_id}


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


def send(api, method: str, path: str, body: Any = None, raw_body: str | None = None,
         headers: dict[str, str] | None = None) -> Reply:
    """api.request, where a path template.yaml does not route is what API Gateway answers itself: 404."""
    try:
        return api.request(method, path, body, headers=headers, raw_body=raw_body)
    except LookupError as error:
        return Reply(404, {}, json.dumps({"message": f"no route: {error}", "exception": "NotFoundException"}))


def raw(api, method: str, path: str, text: str | None):
    return send(api, method, path, raw_body=text)


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


def _send_json(api, method: str, path: str, body: Any):
    return send(api, method, path, raw_body=None if body is None else json.dumps(body))


# ---------------------------------------------------------------- path ids (§1, issue 13 points 2, 12)

# Percent-encoded as a client sends them, and decoded as a gateway that decodes path parameters
# would hand them over (the local server's werkzeug did: `GET /services/%C2%B2` was a 500).
BAD_SERVICE_IDS = ["%C2%B2", "%C2%B9%C2%B2", "%E2%91%A0", "%D9%A1", "%EF%BC%91", "\u00b2", "\u00b9\u00b2", "\u2460",
                   "\u0661", "\uff11", "+1", "01", "1_0", "-1", "0",
                   "1.0", "0x1", "1e3", "%201", "9" * 30]


BAD_CHILD_IDS = ["%C2%B2", "%E2%91%A0", "%D9%A1", "\u00b2", "\u2460", "\u0661", "+1", "01", "1_0", "-1", "0", "1.0",
                 "0x1", "%201"]

# Tests that walk a list of inputs do so on one table (a moto table costs ~0.2 s of CPU to set up)
# and collect every input that fails, so a failure lists them all.


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


def _allowed(reply) -> set[str]:
    return {m.strip().upper() for m in reply.headers.get("Allow", "").split(",") if m.strip()}


def test_fixed_child_paths_are_405_with_allow(api):
    """`GET /services/{id}/states/start` answered 400 'state_id: Input should be a valid integer'."""
    sid = api.start()
    problems = []
    for path in (f"/services/{sid}/states/start", f"/services/{sid}/states/transition", f"/services/{sid}/tasks/start"):
        for method in ("GET", "PUT", "DELETE"):
            reply = send(api, method, path)
            problem = error_problem(reply, 405, "MethodNotAllowedException")
            if problem or _allowed(reply) != {"POST"}:
                problems.append(f"{method} {path}: {problem or reply.headers}")
    assert problems == []


def test_every_405_names_the_allowed_methods(api):
    problems = []
    for method, path, allowed in (("GET", "/services/start", {"POST"}), ("DELETE", "/services/1/end", {"POST"}),
                                  ("PATCH", "/services/1", {"GET", "PUT", "DELETE"}),
                                  ("POST", "/customers/c/services", {"GET"})):
        reply = send(api, method, path)
        problem = error_problem(reply, 405, "MethodNotAllowedException")
        if problem or not allowed <= _allowed(reply) <= allowed | {"HEAD", "OPTIONS"}:
            problems.append(f"{method} {path}: {problem or reply.headers}")
    assert problems == []


# ---------------------------------------------------------------- strict JSON (§1, issue 13 points 2, 3)

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


# ---------------------------------------------------------------- reserved keys (§1, issue 13 point 4)

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
            problem = error_problem(send(api, method, path, body), 400, "ValidationException")
            if problem:
                problems.append(f"{method} {path} {key}: {problem}")
    assert problems == []
    assert scan(table) == before_items
    assert visible(api, sid) == before_seen


# ---------------------------------------------------------------- customer ids and contact keys (§1, issue 13 point 5)

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
        problem = error_problem(send(api, method, path, body), 400, "ValidationException")
        if problem:
            problems.append(f"{method} {path} {body!r}: {problem}")
    return problems


# ---------------------------------------------------------------- timestamps (§1, issue 13 point 6)

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
            problem = error_problem(send(api, method, path, body), 400, "ValidationException")
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


# ---------------------------------------------------------------- failed requests change nothing (§2, issue 13 point 7)


def _unchanged_after(api, table, frozen, method: str, path: str, body: Any, status: int) -> str | None:
    frozen.advance(10)  # a write now would move expiration_time and the default expiry
    before = scan(table)
    reply = send(api, method, path, body)
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


# ---------------------------------------------------------------- answers over 5 MB (§1 Size, issue 13 point 10)

LIMIT = 5_000_000


def test_a_customer_list_page_ends_before_5_mb_with_a_link(api):
    """56 services with 120 KB of attached data each: one 6.7 MB page without Link."""
    ids = [api.start(customer_id="big", timestamp=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z", blob="x" * 120_000)
           for i in range(56)]
    seen, path, pages = [], "/customers/big/services?extensions=*&limit=100", 0
    while path:
        reply = api.get(path)
        assert reply.status == 200, reply.text[:200]
        assert len(reply.text.encode()) <= LIMIT
        assert all(s["blob"] == "x" * 120_000 for s in reply.json)
        seen += [s["service_id"] for s in reply.json]
        pages += 1
        link = reply.headers.get("Link")
        path = _next_path(link) if link else None
        assert pages < 10
    assert pages >= 2 and seen == ids


def _next_path(link: str) -> str:
    target = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1)
    parts = urlsplit(target)
    return parts.path.split("/genesys/1/cs", 1)[1] + "?" + parts.query


def test_a_single_read_over_5_mb_is_413_naming_the_list_route(api):
    sid = api.start(customer_id="big")
    for _ in range(43):
        assert api.post(f"/services/{sid}/states/start", {"blob": "y" * 120_000}).status == 201
    reply = api.get(f"/services/{sid}?active_states=true&extensions=State.*")
    assert_error(reply, 413, "PayloadTooLargeException")
    assert "/states" in reply.json["message"], reply.json
    # The list route pages it, each page under the limit.
    seen, path = [], f"/services/{sid}/states/active?extensions=*&limit=1000"
    while path:
        page = api.get(path)
        assert page.status == 200 and len(page.text.encode()) <= LIMIT
        seen += [s["state_id"] for s in page.json]
        path = _next_path(page.headers["Link"]) if "Link" in page.headers else None
    assert seen == list(range(1, 44))
    # Without the attached data the same read is small and fine.
    assert len(api.get(f"/services/{sid}?active_states=true").json["active_states"]) == 43


# ---------------------------------------------------------------- ids (§1, issue 13 point 11)


def test_same_millisecond_in_two_tenants_gives_two_working_services(api, frozen):
    """Service ids are unique per (tenant, group); the random bits do not come from `random`, whose
    state SnapStart restores share."""
    import random

    made = []
    for tenant in ("t1", "t2"):
        random.seed(1234)
        reply = api.post("/services/start", {"customer_id": "same"}, headers={"ContactCenterId": tenant})
        assert reply.status == 201
        made.append(reply.json["service_id"])
    assert made[0] != made[1], "same millisecond and same `random` state gave the same id"
    for tenant, sid in zip(("t1", "t2"), made):
        listed = api.get("/customers/same/services", headers={"ContactCenterId": tenant}).json
        assert [s["service_id"] for s in listed] == [sid]


def test_ids_in_one_tenant_stay_unique_when_made_in_the_same_millisecond(api, frozen):
    ids = [api.start() for _ in range(40)]
    assert len(set(ids)) == 40


# ---------------------------------------------------------------- durations (§1, §3, issue 13 point 13)


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


# ---------------------------------------------------------------- Link is a path (§5, issue 13 point 14)


def _three_services(api, headers=None):
    for i in range(3):
        api.post("/services/start", {"customer_id": "linked", "timestamp": f"2026-01-01T00:00:0{i}Z"}, headers=headers)


def test_link_is_a_path_with_the_stage_and_reflects_no_host(api):
    _three_services(api)
    reply = api.get("/customers/linked/services?limit=1&extensions=*",
                    headers={"Host": "evil.example", "X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "evil.example"})
    link = reply.headers["Link"]
    target = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1)
    assert target.startswith("/Prod/genesys/1/cs/customers/linked/services?"), link
    assert not target.startswith("//") and "evil" not in link and "javascript" not in link
    parts = urlsplit(target)
    assert parts.scheme == "" and parts.netloc == ""
    assert "limit=1" in parts.query and "page_token=" in parts.query and "extensions=" in parts.query


def test_link_without_a_stage_in_the_request_path_has_none(api):
    """Called on a custom domain with no base path, requestContext.path carries no stage."""
    _three_services(api)
    event, handler = event_for("GET", "/customers/linked/services?limit=1", headers={"Host": "evil.example"})
    event["requestContext"]["path"] = event["path"]
    reply = invoke(event, handler)
    target = re.fullmatch(r'<([^>]+)>; rel="next"', reply.headers["Link"]).group(1)
    assert target.startswith("/genesys/1/cs/customers/linked/services?"), target
    following = api.get(_next_path(reply.headers["Link"]))
    assert following.status == 200 and len(following.json) == 1


# ---------------------------------------------------------------- over HTTP: the local server


@pytest.fixture(scope="module")
def server():
    from tests.test_local_server import _start

    process, info = _start()
    try:
        yield info
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except Exception:  # noqa: BLE001 - never leave the server running
            process.kill()
            process.wait(timeout=5)


def http(server, method, path, body=None, headers=None, raw_body: bytes | None = None):
    data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(server["url"] + "/genesys/1/cs" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_over_http_percent_encoded_customer_ids_reach_their_lists(server):
    value = "C#123 ? \\ \" \u00b0 \u20ac \u2603 \U0001f600"
    status, _, text = http(server, "POST", "/services/start", {"customer_id": value})
    assert status == 201, text
    sid = json.loads(text)["service_id"]
    status, _, text = http(server, "GET", f"/customers/{quote(value, safe='')}/services")
    assert status == 200, text
    assert [s["service_id"] for s in json.loads(text)] == [sid]


def test_over_http_hostile_paths_and_bodies_are_4xx(server):
    status, _, text = http(server, "GET", "/services/%C2%B2")
    assert status == 404 and json.loads(text)["exception"] == "NotFoundException", text
    status, _, text = http(server, "POST", "/services/start", raw_body=b'{"customer_id":"c","v":' + b"[" * 10_000 +
                           b"]" * 10_000 + b"}")
    assert status == 400, text
    status, _, text = http(server, "POST", "/services/start", raw_body=b'{"customer_id":"c","v":NaN}')
    assert status == 400, text
    status, headers, text = http(server, "GET", "/services/1/states/start")
    assert status == 405 and headers.get("Allow") == "POST", (status, headers)


def test_over_http_link_is_a_path_whatever_the_host(server):
    for i in range(3):
        http(server, "POST", "/services/start", {"customer_id": "link-http", "timestamp": f"2026-01-01T00:00:0{i}Z"})
    status, headers, _ = http(server, "GET", "/customers/link-http/services?limit=1",
                              headers={"Host": "evil.example", "X-Forwarded-Proto": "javascript"})
    assert status == 200
    target = re.fullmatch(r'<([^>]+)>; rel="next"', headers["Link"]).group(1)
    assert target.startswith("/genesys/1/cs/customers/link-http/services?"), target


def test_over_http_concurrent_requests_of_several_tenants_are_not_mixed(server):
    """`make run` answered 174 of 176 concurrent list requests with another request's Link, and lost
    one of 16 parallel extension PUTs."""
    tenants = [f"tenant-{i}" for i in range(4)]
    for tenant in tenants:
        for i in range(3):
            status, _, _ = http(server, "POST", "/services/start",
                                {"customer_id": f"cust-{tenant}", "timestamp": f"2026-01-01T00:00:0{i}Z"},
                                headers={"ContactCenterId": tenant})
            assert status == 201

    def listing(index: int):
        tenant = tenants[index % len(tenants)]
        status, headers, text = http(server, "GET", f"/customers/cust-{tenant}/services?limit=1",
                                     headers={"ContactCenterId": tenant})
        return tenant, status, headers.get("Link", ""), text

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(listing, range(64)))
    wrong = [(t, s, link) for t, s, link, _ in results if s != 200 or f"/customers/cust-{t}/services?" not in link]
    assert wrong == []

    status, _, text = http(server, "POST", "/services/start", {"customer_id": "puts"})
    sid = json.loads(text)["service_id"]
    http(server, "POST", f"/services/{sid}/states/start", {})

    def put(index: int):
        return http(server, "PUT", f"/services/{sid}/extensions/k{index}", index)[0]

    def start_task(index: int):
        return http(server, "POST", f"/services/{sid}/tasks/start", {"task_type": f"t{index}"})[:3:2]

    def start_state(index: int):
        return http(server, "POST", f"/services/{sid}/states/start", {"state_type": f"s{index}"})[:3:2]

    with ThreadPoolExecutor(16) as pool:
        puts = list(pool.map(put, range(16)))
        mixed = list(pool.map(lambda i: (start_task if i % 2 else start_state)(i), range(16)))
    assert puts == [200] * 16
    assert [status for status, _ in mixed] == [201] * 16, mixed
    status, _, text = http(server, "GET", f"/services/{sid}?extensions=*")
    view = json.loads(text)
    assert {k: view.get(k) for k in (f"k{i}" for i in range(16))} == {f"k{i}": i for i in range(16)}


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
