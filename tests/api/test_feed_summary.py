"""Ends in one round trip (docs/DESIGN.md, "Ends in one round trip"): the service item's summary of
active children (lib.store.summary) gives a task's end and a service's end the values of their
events, which the publisher completes from the stream record's images. Checked here: the calls each
end makes, the events as the test's own reading of the records completes them (tests/api/feed_stream)
and as the publisher does (lib.feed.events), the summary against the children stored after every
kind of start and end, and the fallbacks (no summary, too many children, a type too long)."""

from __future__ import annotations

import os
from typing import Any

from lib.clock import format_ms, parse_timestamp
from lib.feed.events import events_of as published
from lib.store import summary
from lib.store.codec import decode_item
from tests.support import count_calls


def _item(table, sid: str) -> dict[str, Any]:
    from lib.store import keys as K

    raw = table.get_item(TableName=os.environ["TABLE_NAME"], ConsistentRead=True,
                         Key={k: {"S": v} for k, v in K.service_key("|", sid).items()})["Item"]
    return decode_item(raw)


def _untrust(table, sid: str) -> None:
    """The item's summary no longer trusted (as after an end that did not use it)."""
    from lib.store import keys as K

    table.update_item(TableName=os.environ["TABLE_NAME"], UpdateExpression="REMOVE ax",
                      Key={k: {"S": v} for k, v in K.service_key("|", sid).items()})


def _stored_children(api, sid: str) -> dict[str, dict[str, Any]]:
    """The active states and tasks as the API shows them, as summary entries."""
    found = {}
    for kind in ("state", "task"):
        for child in api.get(f"/services/{sid}/{kind}s/active?limit=1000").json:
            entry = {"m": _ms(child["started"]["timestamp"])}
            if child.get(f"{kind}_type") is not None:
                entry["y"] = child[f"{kind}_type"]
            if kind == "task" and child.get("state_id") is not None:
                entry["s"] = child["state_id"]
            found[summary.key(kind, child[f"{kind}_id"])] = entry
    return found


def _ms(text: str) -> int:
    return parse_timestamp(text)


def _published_events(feed) -> list[tuple[str, int, dict[str, Any]]]:
    return [(e.name, e.sequence, e.data) for r in feed.records() for e in published(r)]


def test_a_task_end_is_one_round_trip_and_its_event_is_completed_from_the_summary(api, table, feed, frozen):
    sid = api.start()
    api.post(f"/services/{sid}/states/start", {"state_type": "greet"})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "lookup", "state_id": 1})
    started = frozen.now
    feed.take()
    frozen.advance(5)
    records_before = feed.records()
    assert records_before == []
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/tasks/1/end", {"disposition": "ok", "note": 1}).status == 204
    # The transaction and the task's read (needed only without the summary) go at once: one round trip.
    assert sorted(calls) == ["GetItem", "TransactWriteItems"]
    records = feed.records()
    mine = [(e.name, e.sequence, e.data) for r in records for e in published(r)]
    assert mine == [
        ("TaskCompleted", 4, {"task_id": 1, "task_type": "lookup", "state_id": 1,
                              "completed": {"timestamp": format_ms(frozen.now)}, "disposition": "ok",
                              "disposition_desc": None, "duration": frozen.now - started, "reason": "request"}),
        ("AttachedDataChanged", 5, {"element": "task", "task_id": 1, "keys": ["note"]})]
    # The test's own reading of the records agrees with the publisher's.
    from tests.api.feed_stream import events_of
    assert [(e.name, e.sequence, e.data) for r in records for e in events_of(r)] == mine
    assert "t1" not in _item(table, sid)["act"]


def test_a_service_end_is_one_round_trip_with_its_cascade_from_the_summary(api, table, feed, frozen):
    sid = api.start()
    api.post(f"/services/{sid}/states/start", {"state_type": "s1"})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t1", "state_id": 1})
    api.post(f"/services/{sid}/tasks/start", {"task_type": 7})  # in no state, an integer type
    api.post(f"/services/{sid}/states/start", {"state_type": "s2"})
    first = frozen.now
    frozen.advance(3)
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t3", "state_id": 2})
    feed.take()
    frozen.advance(10)
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end", {"disposition": "done", "note": 2}).status == 204
    assert calls == ["UpdateItem"]  # one call, which reads nothing
    end = format_ms(frozen.now)

    def cascade(kind: str, child: int, type_: Any, state: int | None, started: int) -> tuple[str, dict[str, Any]]:
        data: dict[str, Any] = {f"{kind}_id": child, f"{kind}_type": type_}
        if kind == "task":
            data["state_id"] = state
        data.update({"completed": {"timestamp": end}, "disposition": None, "disposition_desc": None,
                     "duration": frozen.now - started, "reason": "service_completed"})
        return ("StateCompleted" if kind == "state" else "TaskCompleted"), data

    expected = [("ServiceCompleted", {"reason": "request", "completed": {"timestamp": end}, "disposition": "done",
                                      "disposition_desc": None, "duration": frozen.now - first})]
    expected += [cascade("state", 1, "s1", None, first), cascade("task", 1, "t1", 1, first),
                 cascade("state", 2, "s2", None, first), cascade("task", 3, "t3", 2, first + 3000),
                 cascade("task", 2, 7, None, first)]
    expected.append(("AttachedDataChanged", {"element": "service", "keys": ["note"]}))
    records = feed.records()
    mine = [(e.name, e.sequence, e.data) for r in records for e in published(r)]
    assert [(name, data) for name, _, data in mine] == expected
    assert [sequence for _, sequence, _ in mine] == list(range(7, 14))
    from tests.api.feed_stream import events_of
    assert [(e.name, e.sequence, e.data) for r in records for e in events_of(r)] == mine
    item = _item(table, sid)
    assert (item["seq"], item["cx"], item["open"]) == (8, 5, 0) and "act" not in item and "ax" not in item
    # Later events follow on: the cascade's events are counted in `cx`.
    assert api.put(f"/services/{sid}/extensions/color", "red").status == 200
    assert [(e.name, e.sequence) for r in feed.records() for e in published(r)] == [("AttachedDataChanged", 14)]
    assert api.delete(f"/services/{sid}").status == 204
    assert [(e.name, e.sequence) for r in feed.records() for e in published(r)] == [("ServiceDeleted", 15)]


def _stored_checksum_agrees(table, sid: str) -> bool:
    """The service item's `open` and `open_sum` against its active children as stored now."""
    from lib.store import cascades, events
    from lib.store.items import ServiceItem, from_plain

    service = from_plain(_item(table, sid))
    assert isinstance(service, ServiceItem)
    states, tasks = cascades.active_children(service)
    return service.open == len(states) + len(tasks) and service.open_sum == events.open_sum(states, tasks)


def test_the_checksum_and_the_summary_follow_every_kind_of_start_and_end(api, table, monkeypatch):
    """Starts, task ends, a state end with its tasks, a transition, a composite start, a big state end
    (its tasks completed over several transactions): after each, the item's count and checksum are
    those of the children active in the store, and so is its trusted summary; the big state end stops
    trusting it, and the next start after every child ended starts a new one."""
    from lib.store import ends, starts

    monkeypatch.setattr(ends, "TRANSACTION_LIMIT", 4)  # a state of 7 tasks is a big one
    monkeypatch.setattr(starts, "TRANSACTION_LIMIT", 4)
    reply = api.post("/services_composite/start", {"services": [{
        "service": {"customer_id": "sum", "service_type": "t"}, "state": {"state_type": "s"},
        "task": {"task_type": "k"}, "associate_state_task": True}]})
    sid = reply.json["services"][0]["service_id"]
    steps = [
        ("states/start", {}),
        ("tasks/start", {"task_type": "a", "state_id": 2}),
        ("tasks/start", {"task_type": "b"}),
        ("tasks/2/end", {}),
        ("states/1/end", {}),
        ("states/transition", {"from": {"state_id": 2}, "to": {"state_type": "next"}}),
        ("tasks/3/end", {}),
    ] + [("tasks/start", {"task_type": f"big{n}", "state_id": 3}) for n in range(7)]
    assert _stored_checksum_agrees(table, sid)
    item = _item(table, sid)
    assert item["ax"] is True and item["act"] == _stored_children(api, sid)
    for path, body in steps:
        assert api.post(f"/services/{sid}/{path}", body).status in (201, 204), path
        assert _stored_checksum_agrees(table, sid), path
        item = _item(table, sid)
        assert item.get("ax") is True, path
        assert item["act"] == _stored_children(api, sid), path
        assert len(item["act"]) == item["open"], path
    assert api.post(f"/services/{sid}/states/3/end", {}).status == 204
    assert _stored_checksum_agrees(table, sid)
    assert "ax" not in _item(table, sid)  # a big state end: no longer trusted
    assert _stored_children(api, sid) == {}
    assert api.post(f"/services/{sid}/states/start", {"state_type": "again"}).status == 201
    assert _stored_checksum_agrees(table, sid)
    item = _item(table, sid)
    assert item["ax"] is True and item["act"] == _stored_children(api, sid) == {"s4": item["act"]["s4"]}


def test_without_a_trusted_summary_ends_read_and_their_events_are_the_same(api, table, feed, frozen):
    """Past SIZE_MAX bytes of summary (some 40 active children) it is not trusted: a task end reads the
    task (two round trips); a service end is still one write, on condition that the item's counts
    (`open`, `open_sum`) are known, and the publisher reads the children those counts name
    (lib.store.events.cascade_read). The events are complete all the same, and the publisher's agree
    with the test's own reading of the records."""
    sid = api.start()
    started = 0
    while "ax" in _item(table, sid):
        assert api.post(f"/services/{sid}/tasks/start", {"task_type": f"t{started}"}).status == 201
        started += 1
        assert started < 100
    assert 30 < started < 60  # about 25 bytes each
    feed.take()
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/tasks/1/end", {}).status == 204
    assert sorted(calls[:2]) == ["GetItem", "TransactWriteItems"] and calls[2:] == ["TransactWriteItems"]
    [ended] = feed.take()
    assert (ended.name, ended.data["task_id"], ended.data["task_type"]) == ("TaskCompleted", 1, "t0")
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end").status == 204
    assert calls == ["UpdateItem"]  # past the summary too: one call, which reads nothing
    records = feed.records()
    item = _item(table, sid)
    assert (item["cx"], item["open"]) == (started - 1, 0) and "act" not in item
    from lib.rules.feed import active_children
    mine = [(e.name, e.sequence, e.data) for r in records for e in published(r, active_children)]
    assert [name for name, _, _ in mine] == ["ServiceCompleted"] + ["TaskCompleted"] * (started - 1)
    assert [data["task_type"] for _, _, data in mine[1:]] == [f"t{n}" for n in range(1, started)]
    from tests.api.feed_stream import events_of
    assert [(e.name, e.sequence, e.data) for r in records for e in events_of(r)] == mine
    # Once nothing is active, the next start starts a summary again.
    other = api.start()
    for n in range(started):
        api.post(f"/services/{other}/tasks/start", {"task_type": f"t{n}"})
    for n in range(1, started + 1):
        assert api.post(f"/services/{other}/tasks/{n}/end", {}).status == 204
    assert "ax" not in _item(table, other)
    assert api.post(f"/services/{other}/states/start", {"state_type": "fresh"}).status == 201
    assert _item(table, other)["ax"] is True and list(_item(table, other)["act"]) == ["s1"]


def test_a_type_too_long_for_the_summary_stops_trusting_it(api, table, feed):
    sid = api.start()
    api.post(f"/services/{sid}/tasks/start", {"task_type": "short"})
    assert _item(table, sid)["ax"] is True
    long_type = "x" * summary.SIZE_MAX
    api.post(f"/services/{sid}/tasks/start", {"task_type": long_type})
    assert "ax" not in _item(table, sid)
    feed.take()
    assert api.post(f"/services/{sid}/tasks/2/end", {}).status == 204
    assert api.post(f"/services/{sid}/end").status == 204
    assert [(e.name, e.data.get("task_type")) for e in feed.take()] == [
        ("TaskCompleted", long_type), ("ServiceCompleted", None), ("TaskCompleted", "short")]


def test_ends_relying_on_the_summary_answer_as_before(api, frozen):
    """The errors of a task end and a service end that rely on the summary: the service's 404 first,
    then the task's 404, 409 and 400, and the service's 409 and 400."""
    sid = api.start()
    api.post(f"/services/{sid}/tasks/start", {"task_type": "a"})
    assert api.post("/services/99/tasks/1/end", {}).status == 404
    assert api.post(f"/services/{sid}/tasks/9/end", {}).status == 404
    early = format_ms(frozen.now - 60_000)
    reply = api.post(f"/services/{sid}/tasks/1/end", {"timestamp": early})
    assert reply.status == 400 and "before" in reply.json["message"]
    assert api.post(f"/services/{sid}/tasks/1/end", {}).status == 204
    assert api.post(f"/services/{sid}/tasks/1/end", {}).status == 409
    reply = api.post(f"/services/{sid}/end", {"timestamp": early})
    assert reply.status == 400 and "before" in reply.json["message"]
    assert api.post(f"/services/{sid}/end", {}).status == 204
    assert api.post(f"/services/{sid}/end", {}).status == 409
    assert api.post(f"/services/{sid}/tasks/1/end", {}).status == 409


def test_events_after_a_cascade_counted_apart_follow_on_for_a_purge_and_an_expiry(api, table, feed, frozen):
    """A purge's ServicePurged (on its erasure record) and TTL's ServiceExpired take the service's
    events so far as `seq + cx`."""
    from lib.clock import format_ms as iso
    from lib.store.codec import encode_item
    from tests.feed_support import record

    sid = api.start(customer_id="c-9", timestamp=iso(1_700_000_001_000))
    api.post(f"/services/{sid}/states/start", {"timestamp": iso(1_700_000_001_000)})
    api.post(f"/services/{sid}/tasks/start", {"state_id": 1, "timestamp": iso(1_700_000_001_000)})
    assert api.post(f"/services/{sid}/end", {"timestamp": iso(1_700_000_002_000)}).status == 204
    item = _item(table, sid)
    assert (item["seq"], item["cx"]) == (4, 2)
    assert [e.sequence for e in feed.take()] == [1, 2, 3, 4, 5, 6]
    # TTL's removal of this item (as the stream would carry it) is ServiceExpired 7.
    [expired] = published(record("REMOVE", old=encode_item(item), ttl=True))
    assert (expired.name, expired.sequence) == ("ServiceExpired", 7)
    reply = api.post("/maintenance/purge", {"limit": iso(1_700_000_050_000), "operation": "purge.service.all"})
    assert reply.json == {"purged": 1}
    assert [(e.name, e.sequence) for e in feed.take()] == [("ServicePurged", 7)]


def test_a_start_that_read_no_trusted_summary_gives_up_one_started_since(api, table, feed, monkeypatch):
    """A state start reads the item (one active task, no `ax`); before it commits, that task ends and a
    task start, finding nothing active, starts a new summary. The state start's write (conditional on
    its own counter only) must not leave that summary trusted without its state."""
    from lib.store import starts

    sid = api.start()
    api.post(f"/services/{sid}/tasks/start", {"task_type": "first"})
    _untrust(table, sid)
    real, raced = starts._read_with_record, []

    def read_then_race(tenant, service_id, claim, extra=None):
        found = real(tenant, service_id, claim, extra)
        if not raced:
            raced.append(True)
            assert api.post(f"/services/{sid}/tasks/1/end", {}).status == 204
            assert api.post(f"/services/{sid}/tasks/start", {"task_type": "second"}).status == 201
            assert _item(table, sid)["ax"] is True  # the task start found nothing active
        return found

    monkeypatch.setattr(starts, "_read_with_record", read_then_race)
    assert api.post(f"/services/{sid}/states/start", {"state_type": "racing"}).status == 201
    item = _item(table, sid)
    assert "ax" not in item or item["act"] == _stored_children(api, sid)
    feed.take()
    assert api.post(f"/services/{sid}/end").status == 204
    assert sorted((e.name, e.data.get("state_id"), e.data.get("task_id")) for e in feed.take()) == [
        ("ServiceCompleted", None, None), ("StateCompleted", 1, None), ("TaskCompleted", None, 2)]


def test_a_child_started_before_a_service_end_relying_on_the_summary_is_in_its_cascade(api, table, feed,
                                                                                        monkeypatch):
    """The summary is on the item the end writes: a task started just before the end's write is in
    its cascade (the write's condition counts it); one started after is refused (409)."""
    from lib.store import recording

    sid = api.start()
    api.post(f"/services/{sid}/states/start", {})
    feed.take()
    real = recording.end_all

    def start_first(*args):  # while the end's write is built, before it is sent
        monkeypatch.setattr(recording, "end_all", real)
        assert api.post(f"/services/{sid}/tasks/start", {"task_type": "late", "state_id": 1}).status == 201
        return real(*args)

    monkeypatch.setattr(recording, "end_all", start_first)
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end").status == 204
    assert calls == ["GetItem", "TransactWriteItems", "UpdateItem"]  # the task's start, then the end: one write
    assert api.post(f"/services/{sid}/tasks/start", {"task_type": "later"}).status == 409
    assert [(e.name, e.data.get("state_id"), e.data.get("task_id"), e.data.get("task_type"))
            for e in feed.take()] == [
        ("TaskStarted", 1, 1, "late"), ("ServiceCompleted", None, None, None), ("StateCompleted", 1, None, None),
        ("TaskCompleted", 1, 1, "late")]


def test_a_service_with_an_explicit_expiration_ends_in_two_writes_that_read_nothing(api, table, feed, frozen):
    """An end's first write assumes an expiration that slides, as every write that does not read the
    item does; for a service with an explicit expiration it is refused and returns the item, and the
    end is sent once more, leaving the expiration alone: two calls, nothing read, from the summary
    or, past it, from the counts (the publisher reads the children)."""
    from lib.rules.feed import active_children
    from tests.api.feed_stream import events_of

    small = api.start(ttl=7200)
    api.post(f"/services/{small}/states/start", {"state_type": "s"})
    api.post(f"/services/{small}/tasks/start", {"task_type": "t", "state_id": 1})
    big = api.start(expiration_time=format_ms(frozen.now + 86_400_000))
    tasks = 60
    for n in range(tasks):
        api.post(f"/services/{big}/tasks/start", {"task_type": f"t{n}"})
    assert "ax" in _item(table, small) and "ax" not in _item(table, big)
    expires = {sid: (_item(table, sid)["expires_ms"], _item(table, sid)["expire_at"]) for sid in (small, big)}
    feed.take()
    frozen.advance(30)
    for sid in (small, big):
        with count_calls(table) as calls:
            assert api.post(f"/services/{sid}/end", {}).status == 204
        assert calls == ["UpdateItem", "UpdateItem"], sid
        item = _item(table, sid)
        assert (item["expires_ms"], item["expire_at"], item["expiry_explicit"]) == (*expires[sid], True)
        assert api.get(f"/services/{sid}").json["expiration_time"] == format_ms(expires[sid][0])
    records = feed.records()
    mine = [(e.service_id, e.name, e.sequence, e.data) for r in records for e in published(r, active_children)]
    assert [(sid, name) for sid, name, _, _ in mine] == [
        (small, "ServiceCompleted"), (small, "StateCompleted"), (small, "TaskCompleted"),
        (big, "ServiceCompleted"), *[(big, "TaskCompleted")] * tasks]
    assert [(e.service_id, e.name, e.sequence, e.data) for r in records for e in events_of(r)] == mine
    assert api.post(f"/services/{small}/end", {}).status == 409
    # A first write refused for another reason (here: the service completed) is not sent again.
    with count_calls(table) as calls:
        assert api.post(f"/services/{big}/end", {}).status == 409
    assert calls == ["UpdateItem"]


def test_an_expiration_changed_between_an_explicit_end_s_two_writes_stays_as_changed(api, table, feed, frozen,
                                                                                       monkeypatch):
    """The second write leaves whatever explicit expiration the item has when it lands: a PUT between
    the two is kept, and its event comes before the end's."""
    from lib.store import recording

    sid = api.start(ttl=7200)
    api.post(f"/services/{sid}/states/start", {"state_type": "s"})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": 1})
    feed.take()
    real = recording.may_end_all

    def put_between(*args):  # the second write is built from the refused one's item: the PUT lands first
        monkeypatch.setattr(recording, "may_end_all", real)
        assert api.put(f"/services/{sid}", {"ttl": 60}).status == 200
        return real(*args)

    monkeypatch.setattr(recording, "may_end_all", put_between)
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end", {}).status == 204
    assert calls == ["UpdateItem", "TransactWriteItems", "UpdateItem"]  # the PUT's write between the end's two
    item = _item(table, sid)
    assert (item["expires_ms"], item["expiry_explicit"], item["open"]) == (frozen.now + 60_000, True, 0)
    assert [(e.name, e.data.get("expiration_time")) for e in feed.take()] == [
        ("ServiceExpirationChanged", format_ms(frozen.now + 60_000)), ("ServiceCompleted", None),
        ("StateCompleted", None), ("TaskCompleted", None)]


def test_an_end_whose_write_meets_a_concurrent_transaction_is_sent_again_not_read(api, table, feed, monkeypatch):
    """A write that meets another transaction on the item (TransactionConflict) is sent again as it
    was: the end still reads nothing."""
    from lib.store import services as services_store
    from lib.store.table import ConcurrentChange

    sid = api.start()
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t"})
    feed.take()
    real, met = services_store.table.update, []

    def conflict_once(*args, **kwargs):
        if not met:
            met.append(True)
            raise ConcurrentChange()
        return real(*args, **kwargs)

    monkeypatch.setattr(services_store.table, "update", conflict_once)
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end", {}).status == 204
    assert met and calls == ["UpdateItem"]  # the conflicting attempt never reached the table here
    assert [e.name for e in feed.take()] == ["ServiceCompleted", "TaskCompleted"]
