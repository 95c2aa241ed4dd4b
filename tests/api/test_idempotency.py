"""Retries with an Idempotency-Key (§1 Retries) through lambda_handler on moto: a repeat with the same
key and body answers the first reply and creates nothing, on every creating route; another body is a
409; a failed request leaves no record; a bad key is a 400. (A fault at any call followed by the
retry: tests/api/test_fault_injection.py.)"""

from __future__ import annotations

import pytest

from tests.support import (
    assert_error,
)


def test_idempotency_key_replays_the_first_reply(api, items):
    headers = {"Idempotency-Key": "retry-1"}
    first = api.post("/services/start", {"customer_id": "c"}, headers=headers)
    again = api.post("/services/start", {"customer_id": "c"}, headers=headers)
    assert first.status == again.status == 201
    assert first.json == again.json and first.headers["Location"] == again.headers["Location"]
    assert len(api.get("/customers/c/services").json) == 1
    other_body = api.post("/services/start", {"customer_id": "d"}, headers=headers)
    assert_error(other_body, 409, "ConflictException", "Idempotency-Key")
    other_tenant = api.post("/services/start", {"customer_id": "c"}, headers={**headers, "ContactCenterId": "t2"})
    assert other_tenant.status == 201 and other_tenant.json != first.json


def test_failed_request_leaves_no_idempotency_record(api):
    headers = {"Idempotency-Key": "fix-and-retry"}
    assert api.post("/services/start", {"customer_id": "c", "est_duration": "x"}, headers=headers).status == 400
    assert api.post("/services/start", {"customer_id": "c"}, headers=headers).status == 201


@pytest.mark.parametrize("key", ["", "x" * 129, "with space"])
def test_bad_idempotency_key_is_400(api, key):
    assert_error(api.post("/services/start", {"customer_id": "c"}, headers={"Idempotency-Key": key}), 400,
                 "ValidationException", "Idempotency-Key")


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


def test_a_one_element_composite_create_writes_its_record_in_the_create_transaction(api, items, monkeypatch):
    """The reply of a one-element request that creates is known before its transaction: the record
    is one more item of it (no write after it that a fault could miss). A request of several
    elements still stores its reply after the last one."""
    from lib.store.idempotency import Claim

    saved = []
    monkeypatch.setattr(Claim, "save", lambda self, result: saved.append(result))
    headers = {"Idempotency-Key": "composite-one"}
    body = {"services": [{"service": {"customer_id": "one"}, "state": {"state_type": "a"}, "task": {"task_type": "t"}}]}
    first = api.post("/services_composite/start", body, headers=headers)
    assert first.status == 200 and first.json["services"][0]["service_created"] is True
    assert saved == []
    records = [i for i in items() if i["SK"] == "#IDEMPOTENCY"]
    assert len(records) == 1
    again = api.post("/services_composite/start", body, headers=headers)
    assert again.json == first.json and again.headers.get("X-Idempotent-Replay") == "true"
    assert len(api.get("/customers/one/services").json) == 1
    other = {"services": [{**body["services"][0], "state": {"state_type": "b"}}]}
    assert_error(api.post("/services_composite/start", other, headers=headers), 409, "ConflictException")

    two = {"services": [{"service": {"customer_id": "two"}, "state": {"state_type": "a"}},
                        {"service": {"customer_id": "two", "service_type": "b"}, "state": {"state_type": "a"}}]}
    assert api.post("/services_composite/start", two, headers={"Idempotency-Key": "composite-two"}).status == 200
    assert len(saved) == 1 and [r["service_created"] for r in saved[0]] == [True, True]
