"""Attached data written one key at a time (§4, §6) through lambda_handler on moto: the deprecated
extension PUT replaces a key, Merge Extension Data merges into it (JSON Merge Patch, RFC 7386), on a
service, a state and a task."""

from __future__ import annotations

import json
from typing import Any

from tests.support import (
    Reply,
    assert_error,
)


def test_extension_put_replaces_one_key(api):
    service_id = api.start(customer_id="c", keep=1, change=1)
    reply = api.put(f"/services/{service_id}/extensions/change", [1, {"x": None}])
    assert reply.status == 200 and reply.json == {"change": [1, {"x": None}]}
    view = api.get(f"/services/{service_id}?extensions=*").json
    assert view["keep"] == 1 and view["change"] == [1, {"x": None}]
    assert_error(api.put("/services/42/extensions/change", 1), 404, "NotFoundException")
    assert_error(api.put(f"/services/{service_id}/extensions/bad", raw_body="{oops"), 400, "ValidationException")


def test_child_extension_puts(api):
    service_id = api.start()
    state = api.start_state(service_id)
    task = api.start_task(service_id)
    assert api.put(f"/services/{service_id}/states/{state}/extensions/k", {"a": 1}).json == {"k": {"a": 1}}
    assert api.put(f"/services/{service_id}/tasks/{task}/extensions/k", 2).status == 200
    assert api.get(f"/services/{service_id}/states/{state}?extensions=k").json["k"] == {"a": 1}
    assert api.get(f"/services/{service_id}/tasks/{task}?extensions=k").json["k"] == 2
    assert_error(api.put(f"/services/{service_id}/tasks/99/extensions/k", 2), 404, "NotFoundException")


# ---------------------------------------------------------------- Merge Extension Data


def merge(api, path: str, body: Any) -> Reply:
    return api.request("PUT", f"{path}/merge", body)


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
    state = api.start_state(sid)
    task = api.start_task(sid)
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
            reply = api.request("PUT", f"{prefix}/extensions/data/merge", raw_body=json.dumps(body))
            if reply.status != 400 or api.get(f"{read}?extensions=data").json.get("data") != {"a": 0}:
                problems.append(f"merge body {body!r} on {prefix}: {reply.status} {reply.text[:120]}")
    assert problems == []


def test_merge_on_unknown_elements_is_404(api):
    sid = api.start()
    for path, missing in (("/services/4242/extensions/x/merge", "service 4242"),
                          (f"/services/{sid}/states/9/extensions/x/merge", "state 9"),
                          (f"/services/{sid}/tasks/9/extensions/x/merge", "task 9")):
        # The element's 404, naming it: a path no route takes is a 404 too ("no route ...").
        assert_error(api.request("PUT", path, {"a": 1}), 404, "NotFoundException", f"{missing} not found")


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
