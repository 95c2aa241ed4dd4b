"""Interleavings and faults at the points where they hurt (§2 one commit point, §7), through
lambda_handler on moto, each placed in process with a patched store function: a concurrent end while a
big state ends, a fault after the commit point, a child started while the expiration changes,
concurrent expirations, a reply lost while another write lands. (A fault at every DynamoDB call of
every operation: tests/api/test_fault_injection.py.)"""

from __future__ import annotations

from botocore.exceptions import ClientError

from lib.rules import children as child_rules
from lib.rules import services as service_rules
from tests.support import (
    Query,
    conversation_pk,
    ends,
    service_with_tasks,
    starts,
    store_table,
)

TENANT = "|"  # requests without tenancy headers


def _injected(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, operation)


def test_a_task_ended_during_a_big_state_end_leaves_no_task_active(api, monkeypatch):
    sid = service_with_tasks(api, 150)
    real = ends.tasks_of_state
    calls = {"n": 0}

    def racing(tenant, service_id, state_id):
        found = real(tenant, service_id, state_id)
        calls["n"] += 1
        if calls["n"] == 1:  # a concurrent end of task 120 lands between the read and the commit
            child_rules.end_task(TENANT, sid, 120, None)
        return found

    monkeypatch.setattr(ends, "tasks_of_state", racing)
    assert api.post(f"/services/{sid}/states/1/end", {}).status == 204
    assert api.get(f"/services/{sid}/tasks/active?limit=1000").json == []
    assert api.get(f"/services/{sid}/tasks/completed?limit=1000").status == 200
    assert len(api.get(f"/services/{sid}/tasks/completed?limit=1000").json) == 150
    service = [i for i in Query(conversation_pk(TENANT, sid)).all() if i["SK"] == "#SERVICE"][0]
    assert not service.get("cascading")  # the mark is cleared once every task is completed


def test_a_fault_after_a_big_state_ends_commit_point_answers_its_success(api, monkeypatch):
    sid = service_with_tasks(api, 110)
    real = store_table.transact
    calls = {"n": 0}

    def flaky(actions):
        calls["n"] += 1
        if calls["n"] == 2:  # the first transaction (the commit point) went through
            raise _injected("TransactWriteItems")
        return real(actions)

    monkeypatch.setattr(store_table, "transact", flaky)
    assert api.post(f"/services/{sid}/states/1/end", {}).status == 204
    monkeypatch.setattr(store_table, "transact", real)
    assert "completed" in api.get(f"/services/{sid}/states/1").json
    assert api.get(f"/services/{sid}/tasks/active?limit=1000").json == []  # the mark applies on read
    # Ending one of the tasks left behind finishes the cascade (409: it completed with its state).
    assert api.post(f"/services/{sid}/tasks/110/end", {}).status == 409
    service = [i for i in Query(conversation_pk(TENANT, sid)).all() if i["SK"] == "#SERVICE"][0]
    assert not service.get("cascading")


def test_a_child_started_while_the_expiration_changes_is_never_erased_before_its_service(api, monkeypatch, items):
    sid = api.start(customer_id="ttl", ttl=1000)
    real = starts._read_with_record
    calls = {"n": 0}

    def racing(*args, **kw):
        found = real(*args, **kw)
        calls["n"] += 1
        if calls["n"] == 1:  # a PUT /services/{id} {"ttl": 10 days} lands after the start's read
            service_rules.set_expiration(TENANT, sid, 10 * 86400, None)
        return found

    monkeypatch.setattr(starts, "_read_with_record", racing)
    assert api.post(f"/services/{sid}/states/start", {"state_type": "s"}).status == 201
    stored = {i["SK"]: i.get("expire_at") for i in items() if sid in i["PK"]}
    assert stored["S#0000000001"] >= stored["#SERVICE"]


def test_concurrent_expirations_leave_no_child_ttl_below_its_service(api, monkeypatch, items):
    sid = api.start(customer_id="ttl2", ttl=10 * 86400)
    for _ in range(3):
        assert api.post(f"/services/{sid}/states/start", {"state_type": "s"}).status == 201
    real = store_table.transact
    calls = {"n": 0}

    def racing(actions):
        calls["n"] += 1
        if calls["n"] == 1:  # request B (ttl 5 days) runs while A (ttl 1 day) lowers the children
            service_rules.set_expiration(TENANT, sid, 5 * 86400, None)
        return real(actions)

    monkeypatch.setattr(store_table, "transact", racing)
    assert api.put(f"/services/{sid}", {"ttl": 86400}).status == 200
    stored = {i["SK"]: i.get("expire_at") for i in items() if sid in i["PK"]}
    service = stored.pop("#SERVICE")
    assert stored and all(ttl >= service for ttl in stored.values()), (service, stored)


def test_a_start_whose_reply_is_lost_while_another_write_lands_answers_its_success(api, monkeypatch, items):
    """The commit is confirmed on the item the start creates (only it writes there), not on the
    service item, which a concurrent write may have taken since."""
    from botocore.exceptions import ReadTimeoutError

    sid = api.start(customer_id="lost")
    real = store_table.transact
    calls = {"n": 0}

    def lost_reply(actions):
        calls["n"] += 1
        result = real(actions)
        if calls["n"] == 1:  # applied; another request writes the service; then the reply is lost
            service_rules.set_expiration(TENANT, sid, 86400, None)
            raise ReadTimeoutError(endpoint_url="https://dynamodb")
        return result

    monkeypatch.setattr(store_table, "transact", lost_reply)
    started = api.post(f"/services/{sid}/states/start", {"state_type": "s"})
    assert started.status == 201, started.text
    assert started.json["state_id"] == 1
    assert [i["SK"] for i in items() if i["SK"].startswith("S#")] == ["S#0000000001"]
