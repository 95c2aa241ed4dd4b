"""The change feed's events of the service routes (contract §4, §7, §10), read from the table's stream:
the exact names, data and sequences each committed change writes (docs/DESIGN.md, Change feed)."""

from __future__ import annotations

import os

import pytest

from lib.clock import format_ms
from lib.feed.events import events_of as published
from tests.api.feed_stream import TTL_IDENTITY, events_of
from tests.support import Api, count_calls, erase_deleted

TENANT = {"ContactCenterId": "acme", "GroupId": "eu"}


def test_a_service_start_is_service_started_with_its_envelope_and_data(table, feed, frozen):
    api = Api(TENANT)
    reply = api.post("/services/start", {
        "customer_id": "c-1", "contact_key": "k-1", "service_type": "billing", "est_duration": 30,
        "auto_complete_after": 600, "ttl": 3600, "media_type": "voice", "session_id": "s-1",
        "zeta": 1, "alpha": {"x": 1}})
    assert reply.status == 201
    [event] = feed.take()
    assert (event.name, event.sequence, event.service_id, event.tenant) == \
        ("ServiceStarted", 1, reply.json["service_id"], "acme|eu")
    assert (event.customer_id, event.contact_key, event.at) == ("c-1", "k-1", frozen.now)
    assert event.data == {"service_type": "billing", "est_duration": 30,
                          "started": {"media_type": "voice", "session_id": "s-1", "timestamp": format_ms(frozen.now)},
                          "expiration_time": format_ms(frozen.now + 3_600_000), "auto_complete_after": 600,
                          "attached_keys": ["alpha", "zeta"]}


def test_a_start_event_timestamp_is_when_it_occurred_and_absent_values_are_null(api, feed, frozen):
    api.post("/services/start", {"contact_key": "k", "timestamp": "2026-01-02T03:04:05.678+01:00"})
    [event] = feed.take()
    assert event.at == 1767319445678 and event.customer_id is None
    assert event.data["started"] == {"timestamp": "2026-01-02T02:04:05.678Z"}
    assert (event.data["service_type"], event.data["est_duration"], event.data["auto_complete_after"],
            event.data["attached_keys"]) == (None, None, None, [])


def test_associations_name_the_previous_customer_what_they_set_and_their_attached_data(api, feed, frozen):
    sid = api.start(contact_key="k-1")
    feed.take()
    frozen.advance(5)
    assert api.post(f"/customers/c-9/services/{sid}", {"service_type": "new", "session_id": "s", "note": 1,
                                                       "b": 2}).status == 204
    associated, attached = feed.take()
    assert (associated.name, associated.sequence, associated.customer_id, associated.contact_key, associated.at) == \
        ("ServiceAssociated", 2, "c-9", "k-1", frozen.now)
    assert associated.data == {"previous_customer_id": None, "customer_id": "c-9",
                               "changed": ["service_type", "session_id"], "attached_keys": ["b", "note"]}
    assert (attached.name, attached.sequence, attached.data) == \
        ("AttachedDataChanged", 3, {"element": "service", "keys": ["b", "note"]})
    # From one customer to another: one attempt assumed "anonymous", the item said otherwise.
    assert api.post(f"/customers/c-10/services/{sid}").status == 204
    [moved] = feed.take()
    assert (moved.name, moved.sequence, moved.customer_id) == ("ServiceAssociated", 4, "c-10")
    assert moved.data == {"previous_customer_id": "c-9", "customer_id": "c-10", "changed": [], "attached_keys": []}


def _conversation(api) -> str:
    """A service with: state 1 (task 1 in it, active; task 2 in it, ended), state 2 ended, task 3 loose."""
    sid = api.start(customer_id="c-1")
    api.post(f"/services/{sid}/states/start", {"state_type": "s1"})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t1", "state_id": 1})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t2", "state_id": 1})
    api.post(f"/services/{sid}/tasks/2/end", {})
    api.post(f"/services/{sid}/states/start", {"state_type": "s2"})
    api.post(f"/services/{sid}/states/2/end", {})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t3"})
    return sid


def test_a_service_end_completes_its_active_states_and_tasks_then_its_attached_data_and_expiration(
        api, table, feed, frozen):
    sid = _conversation(api)
    started = frozen.now
    assert [e.name for e in feed.take()] == ["ServiceStarted", "StateStarted", "TaskStarted", "TaskStarted",
                                             "TaskCompleted", "StateStarted", "StateCompleted", "TaskStarted"]
    frozen.advance(10)
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end", {"disposition": "done", "disposition_desc": "ok", "ttl": 60,
                                                 "interaction_id": 7, "note": {"a": 1}}).status == 204
    # One write that reads nothing: the end with the record of its children's TTL to lower (the
    # schedule's); the publisher completes the cascade from the item's summary of active children.
    assert calls == ["TransactWriteItems"]
    events = feed.take()
    end = format_ms(frozen.now)
    assert [(e.name, e.sequence) for e in events] == [
        ("ServiceCompleted", 9), ("StateCompleted", 10), ("TaskCompleted", 11), ("TaskCompleted", 12),
        ("AttachedDataChanged", 13), ("ServiceExpirationChanged", 14)]
    assert all(e.at == frozen.now for e in events)
    assert events[0].data == {"reason": "request", "completed": {"interaction_id": "7", "timestamp": end},
                              "disposition": "done", "disposition_desc": "ok", "duration": frozen.now - started}
    assert events[1].data == {"state_id": 1, "state_type": "s1", "completed": {"timestamp": end},
                              "disposition": None, "disposition_desc": None, "duration": 10_000,
                              "reason": "service_completed"}
    assert events[2].data == {"task_id": 1, "task_type": "t1", "state_id": 1, "completed": {"timestamp": end},
                              "disposition": None, "disposition_desc": None, "duration": 10_000,
                              "reason": "service_completed"}
    assert (events[3].data["task_id"], events[3].data["state_id"], events[3].data["reason"]) == \
        (3, None, "service_completed")
    assert events[4].data == {"element": "service", "keys": ["note"]}
    assert events[5].data == {"expiration_time": format_ms(frozen.now + 60_000)}


def test_a_service_end_without_active_children_commits_no_cascade(
        api, table, feed, frozen):
    sid = api.start()
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t"})
    api.post(f"/services/{sid}/tasks/1/end", {})
    feed.take()
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end").status == 204
    # One call, which reads nothing: the write relying on the item's summary of active children
    # (empty); the end commits no cascade.
    assert calls == ["UpdateItem"]
    [completed] = feed.take()
    assert (completed.name, completed.sequence, completed.data["reason"]) == ("ServiceCompleted", 4, "request")
    assert completed.data["disposition"] is None and completed.data["completed"] == {"timestamp": format_ms(frozen.now)}


def test_a_start_in_the_future_ends_with_a_duration_from_that_start(api, feed, frozen):
    sid = api.start(timestamp=format_ms(frozen.now + 5000))
    feed.take()
    assert api.post(f"/services/{sid}/end", {"timestamp": format_ms(frozen.now + 8000)}).status == 204
    [completed] = feed.take()
    assert completed.data["duration"] == 3000 and completed.at == frozen.now + 8000


def test_an_expiration_put_is_expiration_changed_and_a_sliding_expiration_never_is(api, feed, frozen):
    sid = api.start()
    feed.take()
    assert api.put(f"/services/{sid}", {"ttl": 120}).status == 200
    assert api.put(f"/services/{sid}", {"expiration_time": "2030-01-01T00:00:00Z"}).status == 200
    first, second = feed.take()
    assert (first.name, first.sequence, first.data) == \
        ("ServiceExpirationChanged", 2, {"expiration_time": format_ms(frozen.now + 120_000)})
    assert (second.name, second.sequence, second.data) == \
        ("ServiceExpirationChanged", 3, {"expiration_time": "2030-01-01T00:00:00.000Z"})
    other = api.start()
    api.post(f"/services/{other}/states/start", {})  # slides the default expiration: no event of its own
    assert [e.name for e in feed.take()] == ["ServiceStarted", "StateStarted"]


def test_service_extension_put_and_merge_are_attached_data_changed(api, feed, frozen):
    sid = api.start(note={"a": 1})
    feed.take()
    assert api.put(f"/services/{sid}/extensions/color", "red").status == 200
    assert api.put(f"/services/{sid}/extensions/note/merge", {"a": None, "b": 2}).status == 200
    assert api.put(f"/services/{sid}/extensions/fresh/merge", {"c": 3}).status == 200
    events = feed.take()
    assert [(e.name, e.sequence, e.data, e.at) for e in events] == [
        ("AttachedDataChanged", 2, {"element": "service", "keys": ["color"]}, frozen.now),
        ("AttachedDataChanged", 3, {"element": "service", "keys": ["note"]}, frozen.now),
        ("AttachedDataChanged", 4, {"element": "service", "keys": ["fresh"]}, frozen.now)]


def test_a_delete_is_service_deleted_with_the_next_sequence_on_its_fence(api, feed, frozen):
    api_t = Api(TENANT)
    sid = api_t.start(customer_id="c-5", contact_key="k-5")
    api_t.post(f"/services/{sid}/states/start", {})
    feed.take()
    assert api_t.delete(f"/services/{sid}").status == 204
    [deleted] = feed.take()
    assert (deleted.name, deleted.sequence, deleted.service_id, deleted.tenant, deleted.customer_id,
            deleted.contact_key, deleted.data, deleted.at) == \
        ("ServiceDeleted", 3, sid, "acme|eu", "c-5", "k-5", {}, frozen.now)
    assert api_t.get(f"/services/{sid}").status == 404
    # The publisher (lib/feed) reads the same from the record; the fence's removal, by the erasure or
    # by DynamoDB's TTL, publishes nothing.
    assert erase_deleted(frozen) == 1
    records = feed.records()
    removals = [r for r in records if r["eventName"] == "REMOVE" and r["dynamodb"]["Keys"]["SK"] == {"S": "#SERVICE"}]
    assert len(removals) == 1
    assert published(removals[0]) == [] and published({**removals[0], "userIdentity": TTL_IDENTITY}) == []
    assert [e for r in records for e in events_of(r)] == []


def test_a_delete_is_one_round_trip_and_the_publisher_completes_its_event(api, feed, frozen, table):
    sid = api.start(customer_id="c-7")
    api.post(f"/services/{sid}/states/start", {})
    feed.take()
    with count_calls(table) as calls:
        assert api.delete(f"/services/{sid}").status == 204
    assert calls == ["TransactWriteItems"]
    [fence] = [r for r in feed.records() if r["eventName"] == "MODIFY"]
    [event] = published(fence)
    assert (event.name, event.sequence, event.service_id, event.tenant, event.customer_id, event.contact_key,
            event.data, event.occurred_ms) == ("ServiceDeleted", 3, sid, "|", "c-7", None, {}, frozen.now)


def test_a_refused_delete_changes_nothing_and_publishes_nothing(api, feed, frozen, items):
    live = api.start(customer_id="c-8")
    expiring = api.start(customer_id="c-8", ttl=60)
    gone = api.start(customer_id="c-8")
    assert api.delete(f"/services/{gone}").status == 204
    frozen.advance(61)
    feed.take()
    before = items()
    refusals = [(f"/services/{expiring}", {}), (f"/services/{gone}", {}), ("/services/424242", {}),
                (f"/services/{live}", {"headers": {"ContactCenterId": "other"}})]
    for path, kw in refusals:
        reply = api.delete(path, **kw)
        assert reply.status == 404, path
        assert reply.json["exception"] == "NotFoundException"
    assert feed.records() == [] and items() == before
    assert api.get(f"/services/{live}").status == 200


def test_a_ttl_erasure_is_service_expired_and_a_request_s_removal_is_not(api, table, feed):
    sid = api.start(ttl=60)
    api.post(f"/services/{sid}/states/start", {})
    api.put(f"/services/{sid}/extensions/x", 1)
    feed.take()
    name = os.environ["TABLE_NAME"]
    # DynamoDB's TTL removes the items (moto never does): the same removals, marked as TTL's by the stream.
    for sk in ("#SERVICE", "S#0000000001"):
        table.delete_item(TableName=name, Key={"PK": {"S": f"|#C#{sid}"}, "SK": {"S": sk}})
    removals = [r for r in feed.records() if r["eventName"] == "REMOVE"]
    assert len(removals) == 2
    assert [e for r in removals for e in events_of(r)] == []  # a request's removal: published from its erasure
    by_ttl = [{**r, "userIdentity": TTL_IDENTITY} for r in removals]
    [expired] = [e for r in by_ttl for e in events_of(r)]
    assert (expired.name, expired.sequence, expired.service_id) == ("ServiceExpired", 4, sid)
    assert expired.data["expiration_time"] == api_expiration(removals[0])


def api_expiration(record) -> str:
    return format_ms(int(record["dynamodb"]["OldImage"]["expires_ms"]["N"]))


def _service_key(sid: str) -> dict:
    """The stored key of a service item of the default tenant (as the table holds it)."""
    return {"PK": {"S": f"|#C#{sid}"}, "SK": {"S": "#SERVICE"}}


def _stored_service(table, sid: str) -> dict:
    return table.get_item(TableName=os.environ["TABLE_NAME"], Key=_service_key(sid), ConsistentRead=True)["Item"]


def _forget(table, sid: str, *names: str) -> None:
    """Remove attributes from a stored service item, as one written before they were kept."""
    placeholders = {f"#a{n}": name for n, name in enumerate(names)}
    table.update_item(TableName=os.environ["TABLE_NAME"], Key=_service_key(sid),
                      UpdateExpression="REMOVE " + ", ".join(placeholders), ExpressionAttributeNames=placeholders)


@pytest.fixture
def reads_after(monkeypatch):
    """The `seq` of every service item whose active children a service end read after it (the path
    of an item without counts, after its refused write)."""
    from lib.store import cascades

    real, seen = cascades.active_children, []

    def read_after(service):
        seen.append(service.seq)
        return real(service)

    monkeypatch.setattr(cascades, "active_children", read_after)
    return seen


def test_a_child_started_while_a_service_ends_is_in_its_cascade(api, table, feed, monkeypatch, reads_after):
    """An item without counts (written before them): its end reads the active children after the
    item its refused write returned, then writes conditional on that item's `seq`. A task starts
    between that read and the write: the write is refused and built again from the item as refused,
    whose children are read again, so the cascade holds the task; the expiration in the body is set
    with it."""
    from lib.store import cascades

    sid = api.start()
    api.post(f"/services/{sid}/states/start", {})
    _forget(table, sid, "open", "open_sum", "ax")
    feed.take()
    real = cascades.active_children

    def read_then_start(service):
        found = real(service)
        if len(reads_after) == 1:
            assert api.post(f"/services/{sid}/tasks/start", {"task_type": "late"}).status == 201
        return found

    monkeypatch.setattr(cascades, "active_children", read_then_start)
    assert api.post(f"/services/{sid}/end", {"ttl": 86400}).status == 204
    assert len(reads_after) == 2 and reads_after[1] == reads_after[0] + 1  # again, after the start
    assert [(e.name, e.data.get("state_id"), e.data.get("task_id")) for e in feed.take()] == [
        ("TaskStarted", None, 1), ("ServiceCompleted", None, None), ("StateCompleted", 1, None),
        ("TaskCompleted", None, 1), ("ServiceExpirationChanged", None, None)]


def test_an_end_setting_an_expiration_is_one_write_that_reads_nothing(api, table, feed, frozen):
    """With `ttl` or `expiration_time` in the body the end sets that expiration in the same write,
    with the record of the children's TTL to lower (one TransactWriteItems), past the summary too
    (the publisher reads the children); one that passes the children's TTL raises it first, as any
    write extending the expiration does, and is still the one write of the end."""
    from lib.rules.feed import active_children

    sid = api.start()
    tasks = 45
    for n in range(tasks):
        api.post(f"/services/{sid}/tasks/start", {"task_type": f"t{n}"})
    assert "ax" not in _stored_service(table, sid)  # past the summary
    feed.take()
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end", {"ttl": 3600}).status == 204
    assert calls == ["TransactWriteItems"]
    assert api.get(f"/services/{sid}").json["expiration_time"] == format_ms(frozen.now + 3_600_000)
    records = feed.records()
    feed.seen += [e for r in records for e in events_of(r)]
    assert [e.name for r in records for e in published(r, active_children)] == [
        "ServiceCompleted", *["TaskCompleted"] * tasks, "ServiceExpirationChanged"]

    later = api.start()
    api.post(f"/services/{later}/tasks/start", {"task_type": "t"})
    far = format_ms(frozen.now + 20 * 365 * 86_400_000)  # past the children's TTL (5 years and a half)
    feed.take()
    with count_calls(table) as calls:
        assert api.post(f"/services/{later}/end", {"expiration_time": far}).status == 204
    # Refused (the children's TTL is below the new expiration): raised (their TTLs read, written, the
    # record moved, read once more), then the end again, an UpdateItem (the children are at the new
    # expiration: nothing to lower, no record); the cascade is never read.
    assert calls == ["TransactWriteItems", "Query", "TransactWriteItems", "UpdateItem", "Query", "UpdateItem"]
    assert [e.name for e in feed.take()] == ["ServiceCompleted", "TaskCompleted", "ServiceExpirationChanged"]
    assert api.get(f"/services/{later}").json["expiration_time"] == far


def test_a_service_written_without_the_count_is_never_taken_for_one_without_children(api, table, feed):
    """An item written before the `open` count has none: its count stays unknown through later starts
    and ends, so its end always reads its active children: the one write is refused (returning the
    item), the children are read (both kinds at once), and the end is written with their events."""
    sid = api.start()
    api.post(f"/services/{sid}/states/start", {})
    _forget(table, sid, "open", "open_sum")
    api.post(f"/services/{sid}/tasks/start", {})
    api.post(f"/services/{sid}/tasks/1/end", {})
    feed.take()
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end").status == 204
    assert calls[0] == "UpdateItem" and sorted(calls[1:3]) == ["Query", "Query"] and calls[3:] == ["UpdateItem"]
    assert [(e.name, e.data.get("state_id")) for e in feed.take()] == [("ServiceCompleted", None),
                                                                       ("StateCompleted", 1)]


def test_an_end_past_the_cascade_bound_answers_413_without_reading_the_children(api, table, feed, monkeypatch):
    """The one write leaves at most CASCADE_MAX children to the publisher (one stream record's events,
    sent within one invocation); with more active, as the item counts them, the end answers 413 from
    the item its refused write returns, reading nothing and changing nothing (their events would not
    fit one write of their own either: docs/DESIGN.md, Change feed, Limit)."""
    from lib.store import events as store_events

    monkeypatch.setattr(store_events, "CASCADE_MAX", 3)
    sid = api.start()
    for n in range(4):
        api.post(f"/services/{sid}/tasks/start", {"task_type": f"t{n}"})
    _forget(table, sid, "ax")  # no trusted summary: the counts decide
    feed.take()
    before = _stored_service(table, sid)
    with count_calls(table) as calls:
        reply = api.post(f"/services/{sid}/end")
    assert (reply.status, reply.json["exception"]) == (413, "PayloadTooLargeException")
    assert "4 active states and tasks" in reply.json["message"] and "at most 3" in reply.json["message"]
    assert calls == ["UpdateItem"] and _stored_service(table, sid) == before and feed.take() == []
    assert api.post(f"/services/{sid}/tasks/1/end", {}).status == 204  # one fewer: now it ends
    feed.take()
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end").status == 204
    assert calls == ["UpdateItem"]  # at the bound: the one write
    assert [e.name for e in feed.take()] == ["ServiceCompleted"] + ["TaskCompleted"] * 3


def test_an_item_with_the_count_but_not_the_checksum_reads_its_children_after_it(api, table, feed,
                                                                                 reads_after):
    """An item written before `open_sum` (its `open` kept): the sum stays unknown through later starts
    and ends, and the end reads the children after the item."""

    sid = api.start()
    api.post(f"/services/{sid}/states/start", {})
    _forget(table, sid, "open_sum", "ax")  # nor a trusted summary of active children
    api.post(f"/services/{sid}/tasks/start", {})
    api.post(f"/services/{sid}/tasks/1/end", {})
    feed.take()

    assert api.post(f"/services/{sid}/end").status == 204
    assert len(reads_after) == 1
    assert [(e.name, e.data.get("state_id")) for e in feed.take()] == [("ServiceCompleted", None),
                                                                       ("StateCompleted", 1)]
