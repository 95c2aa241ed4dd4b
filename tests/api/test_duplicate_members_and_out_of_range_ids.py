"""Contract §1's strict input, through lambda_handler on moto:

* an object that names a member twice is a 400 in every body of every route (attached data,
  extension PUT / merge values, composite elements, any depth), and changes nothing; the same body
  without the repeated member succeeds;
* an id outside a positive 64-bit integer is a 400 in a query parameter (`state_id`) as in a body,
  and in a state or task path.
"""

from __future__ import annotations

import pytest

MAX_ID = 2**63 - 1


@pytest.fixture
def conversation(api):
    """A service with a state (1) and a task (1)."""
    service_id = api.start(customer_id="c-1")
    assert api.post(f"/services/{service_id}/states/start", {"state_type": "s"}).json["state_id"] == 1
    assert api.post(f"/services/{service_id}/tasks/start", {"task_type": "t", "state_id": 1}).json["task_id"] == 1
    return service_id


# (method, path, body naming a member twice, the same body without the repeat)
DUPLICATES = {
    "start, top level": ("POST", "/services/start", '{"customer_id": "a", "customer_id": "b"}',
                         '{"customer_id": "a"}'),
    "start, attached data": ("POST", "/services/start", '{"customer_id": "a", "data": {"k": 1, "k": 2}}',
                             '{"customer_id": "a", "data": {"k": 1}}'),
    "start, deep in arrays": ("POST", "/services/start",
                              '{"customer_id": "a", "d": [1, {"x": [{"y": {"z": 1, "w": 2, "z": 1}}]}]}',
                              '{"customer_id": "a", "d": [1, {"x": [{"y": {"z": 1, "w": 2}}]}]}'),
    "start, escaped name": ("POST", "/services/start", '{"customer_id": "a", "n": 1, "\\u006e": 2}',
                            '{"customer_id": "a", "n": 1, "N": 2}'),
    "service end": ("POST", "/services/{sid}/end", '{"disposition": "a", "disposition": "b"}',
                    '{"disposition": "a"}'),
    "service expiration": ("PUT", "/services/{sid}", '{"ttl": 10, "ttl": 20}', '{"ttl": 10}'),
    "service extension": ("PUT", "/services/{sid}/extensions/e", '{"v": 1, "v": 2}', '{"v": 1}'),
    "service extension merge": ("PUT", "/services/{sid}/extensions/e/merge", '{"v": {"w": 1, "w": 2}}',
                                '{"v": {"w": 1}}'),
    "associate": ("POST", "/customers/c-2/services/{sid}", '{"note": 1, "note": 2}', '{"note": 1}'),
    "state start": ("POST", "/services/{sid}/states/start", '{"state_type": "a", "state_type": "b"}',
                    '{"state_type": "a"}'),
    "transition": ("POST", "/services/{sid}/states/transition",
                   '{"from": {"state_id": 1, "state_id": 1}, "to": {"state_type": "x"}}',
                   '{"from": {"state_id": 1}, "to": {"state_type": "x"}}'),
    "state end": ("POST", "/services/{sid}/states/1/end", '{"note": [{"a": 1, "a": 1}]}', '{"note": [{"a": 1}]}'),
    "state extension": ("PUT", "/services/{sid}/states/1/extensions/e", '{"v": 1, "v": 2}', '{"v": 1}'),
    "state extension merge": ("PUT", "/services/{sid}/states/1/extensions/e/merge", '{"v": 1, "v": 1}',
                              '{"v": 1}'),
    "task start": ("POST", "/services/{sid}/tasks/start", '{"task_type": "t", "state_id": 1, "state_id": 1}',
                   '{"task_type": "t", "state_id": 1}'),
    "task end": ("POST", "/services/{sid}/tasks/1/end", '{"disposition": 1, "disposition": 1}',
                 '{"disposition": 1}'),
    "task extension": ("PUT", "/services/{sid}/tasks/1/extensions/e", '{"v": {"a": {"b": 1, "b": 2}}}',
                       '{"v": {"a": {"b": 1}}}'),
    "task extension merge": ("PUT", "/services/{sid}/tasks/1/extensions/e/merge", '{"v": 1, "v": 2}',
                             '{"v": 1}'),
    "composite, element": ("POST", "/services_composite/start",
                           '{"services": [{"service": {"customer_id": "a", "customer_id": "a"},'
                           ' "state": {"state_type": "g"}}]}',
                           '{"services": [{"service": {"customer_id": "a"}, "state": {"state_type": "g"}}]}'),
    "composite, second element's state": (
        "POST", "/services_composite/start",
        '{"services": [{"service": {"customer_id": "a"}, "state": {"state_type": "g"}},'
        ' {"service": {"customer_id": "b"}, "state": {"state_type": "g", "x": 1, "x": 2}}]}',
        '{"services": [{"service": {"customer_id": "a"}, "state": {"state_type": "g"}},'
        ' {"service": {"customer_id": "b"}, "state": {"state_type": "g", "x": 1}}]}'),
    "composite, outer member": ("POST", "/services_composite/start",
                                '{"services": [], "services": [{"service": {"customer_id": "a"},'
                                ' "state": {"state_type": "g"}}]}',
                                '{"services": [{"service": {"customer_id": "a"}, "state": {"state_type": "g"}}]}'),
    "purge": ("POST", "/maintenance/purge",
              '{"limit": "2000-01-01T00:00:00Z", "operation": "purge.service.all", "limit": "2000-01-01T00:00:00Z"}',
              '{"limit": "2000-01-01T00:00:00Z", "operation": "purge.service.all"}'),
}


@pytest.mark.parametrize("case", DUPLICATES, ids=list(DUPLICATES))
def test_a_member_named_twice_is_a_400_that_changes_nothing(api, items, conversation, case):
    method, path, twice, once = DUPLICATES[case]
    path = path.format(sid=conversation)
    before = items()
    reply = api.request(method, path, raw_body=twice)
    assert reply.status == 400, reply.text
    assert reply.json["exception"] == "ValidationException"
    assert "appears more than once in one object" in reply.json["message"]
    assert items() == before
    reply = api.request(method, path, raw_body=once)
    assert 200 <= reply.status < 300, reply.text


def test_the_message_names_the_repeated_member(api):
    reply = api.request("POST", "/services/start", raw_body='{"customer_id": "a", "a": {"colour": 1, "colour": 2}}')
    assert reply.status == 400
    assert reply.json["message"] == 'body: the member "colour" appears more than once in one object'


def test_members_that_differ_only_in_case_are_two_members(api):
    service_id = api.start(customer_id="a", Colour=1, colour=2)
    assert api.get(f"/services/{service_id}?extensions=Colour,colour").json["Colour"] == 1


@pytest.mark.parametrize("value", ["9223372036854775808", "99999999999999999999", "0", "-1", "+1", "01", "1.0",
                                   "1e3", "abc", "%201", "0x10", "1%2C2", ""])
def test_a_state_id_outside_a_positive_64_bit_integer_in_the_query_is_a_400(api, conversation, value):
    reply = api.get(f"/services/{conversation}/tasks?state_id={value}")
    assert reply.status == 400, reply.text
    assert reply.json["exception"] == "ValidationException" and "state_id" in reply.json["message"]


def test_the_same_id_in_a_body_and_in_the_query_is_refused_alike(api, conversation):
    body = api.post(f"/services/{conversation}/tasks/start", {"task_type": "t", "state_id": MAX_ID + 1})
    query = api.get(f"/services/{conversation}/tasks?state_id={MAX_ID + 1}")
    assert body.status == query.status == 400


def test_the_largest_id_and_a_real_one_are_accepted_in_the_query(api, conversation):
    assert api.get(f"/services/{conversation}/tasks?state_id={MAX_ID}").json == []
    tasks = api.get(f"/services/{conversation}/tasks?state_id=1").json
    assert [task["task_id"] for task in tasks] == [1]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "states/{id}", None), ("GET", "tasks/{id}", None), ("POST", "states/{id}/end", None),
    ("PUT", "tasks/{id}/extensions/e", {"v": 1})])
def test_a_state_or_task_id_past_64_bits_in_a_path_is_a_400(api, conversation, method, path, body):
    reply = api.request(method, f"/services/{conversation}/" + path.format(id=MAX_ID + 1), body)
    assert reply.status == 400, reply.text
    assert reply.json["exception"] == "ValidationException"
    assert api.request(method, f"/services/{conversation}/" + path.format(id=MAX_ID), body).status == 404
