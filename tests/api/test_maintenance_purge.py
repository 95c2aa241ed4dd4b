"""Purge (§8) through lambda_handler on moto: each operation on a population of every kind of service,
its validation, its write cost, and erasures that finish after the commit point (answered as a
success, then completed by the scheduled maintenance)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.support import (
    assert_error,
    at,
    count_calls,
    erasure,
    run_maintenance,
    store_table,
)


def _population(api):
    """One service of each kind, all started on day 1, plus one started later."""
    made = {
        "active": api.start(customer_id="c", timestamp=at(1)),
        "active_anonymous": api.start(contact_key="k", timestamp=at(1)),
        "completed": api.start(customer_id="c", timestamp=at(1)),
        "completed_anonymous": api.start(contact_key="k", timestamp=at(1)),
        "later": api.start(customer_id="c", timestamp=at(10)),
    }
    for name in ("completed", "completed_anonymous"):
        api.post(f"/services/{made[name]}/states/start", {})
        api.post(f"/services/{made[name]}/end", {"timestamp": at(2)})
    return made


PURGED = {
    "purge.service.all": {"active", "active_anonymous", "completed", "completed_anonymous"},
    "purge.service.started": {"active", "active_anonymous"},
    "purge.service.started.anonymous": {"active_anonymous"},
    "purge.service.completed": {"completed", "completed_anonymous"},
    "purge.service.completed.anonymous": {"completed_anonymous"},
}


@pytest.mark.parametrize("operation", sorted(PURGED))
def test_each_purge_operation_in_isolation(api, items, operation):
    made = _population(api)
    reply = api.post("/maintenance/purge", {"limit": at(5), "operation": operation})
    assert reply.status == 200 and reply.json == {"purged": len(PURGED[operation])}
    for name, service_id in made.items():
        gone = name in PURGED[operation]
        assert (api.get(f"/services/{service_id}").status == 404) == gone, name
        assert (not any(service_id in i["PK"] for i in items() if "#C#" in i["PK"])) == gone, name
    assert not any("#ERASE#" in i["PK"] for i in items()), "erasure records are removed when done"


def test_purge_rejects_bad_operation_and_limit(api):
    assert_error(api.post("/maintenance/purge", {"limit": at(1), "operation": "purge.everything"}), 400,
                 "ValidationException", "operation")
    assert_error(api.post("/maintenance/purge", {"limit": "soon", "operation": "purge.service.all"}), 400,
                 "ValidationException", "limit")
    assert_error(api.post("/maintenance/purge", {"operation": "purge.service.all"}), 400, "ValidationException",
                 "limit")


def test_purge_writes_at_most_one_request_per_25_items(api, table):
    for n in range(15):  # 60 items: one write per item would be 60 requests, batches of 25 make 3
        service = api.start(customer_id=f"c{n}", timestamp=at(1))
        for _ in range(3):
            api.post(f"/services/{service}/states/start", {})
    with count_calls(table) as calls:
        assert api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}).json == {"purged": 15}
    writes = [c for c in calls if c in ("BatchWriteItem", "TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem")]
    assert "Scan" not in calls
    assert len(writes) <= (15 * 4) / 25 + 1, calls


def test_purge_succeeds_when_the_erasure_after_the_commit_fails(api, items, frozen, monkeypatch):
    made = [api.start(customer_id=f"c{n}", timestamp=at(1)) for n in range(3)]
    for service in made:
        api.post(f"/services/{service}/states/start", {})
    real, failures = store_table.delete_keys, []

    def flaky(keys):
        if not failures:
            failures.append(len(keys))
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "BatchWriteItem")
        return real(keys)

    monkeypatch.setattr(store_table, "delete_keys", flaky)
    reply = api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"})
    assert failures, "the erasure was attempted and failed"
    assert reply.status == 200 and reply.json == {"purged": 3}, reply.text
    assert all(api.get(f"/services/{s}").status == 404 for s in made)
    assert any("#ERASE#" in i["PK"] for i in items()), "the erasure record is left for maintenance"
    frozen.advance(120)
    assert run_maintenance({"source": "aws.events", "detail-type": "Scheduled Event"})["erasures_finished"] == 1
    assert not any(s in i["PK"] for s in made for i in items()) and not any("#ERASE#" in i["PK"] for i in items())


def test_interrupted_erasures_are_finished_by_the_schedule(api, items, frozen, monkeypatch):
    service = api.start(customer_id="c")
    api.post(f"/services/{service}/states/start", {})

    def fail(erasure):
        raise RuntimeError("the function stopped here")

    finish = erasure.finish_erasure
    monkeypatch.setattr(erasure, "finish_erasure", fail)
    assert api.delete(f"/services/{service}").status == 204  # past the commit point: success
    assert api.get(f"/services/{service}").status == 404
    assert any(service in i["PK"] for i in items())  # its state is still stored, invisible
    monkeypatch.setattr(erasure, "finish_erasure", finish)
    frozen.advance(120)
    assert run_maintenance({"source": "aws.events", "detail-type": "Scheduled Event"})["erasures_finished"] == 1
    assert not any(service in i["PK"] for i in items()) and not any("#ERASE#" in i["PK"] for i in items())
