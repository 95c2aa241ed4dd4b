"""The change feed's hold (lib.store.erasure.held_until): a service's end without a trusted summary of
its active children is one write, and the feed's publisher reads those children when it publishes
the end (lib.store.events.cascade_read). So whatever erases the conversation keeps them for
FEED_HOLD_MS after the end was written (the stream's 24 hours and an hour more): a DELETE's and a
purge's erasure, and an import's take-over of the id. The children's TTL is as long past their
service's expiration (lib.store.items.Expiry.children_ttl)."""

from __future__ import annotations

import contextlib
import os

from lib.feed.events import events_of as published
from lib.rules import maintenance
from lib.rules.feed import active_children
from lib.store import erasure
from lib.store import keys as K
from tests.api.feed_stream import events_of
from tests.support import count_calls, erase_deleted

HOLD_S = erasure.FEED_HOLD_MS // 1000


def _big(api, table) -> tuple[str, int]:
    """A service with active tasks past its summary's size (no trusted summary): (id, tasks)."""
    sid = api.start(customer_id="held")
    started = 0
    while "ax" in _item(table, sid):
        assert api.post(f"/services/{sid}/tasks/start", {"task_type": f"t{started}"}).status == 201
        started += 1
    return sid, started


def _item(table, sid: str) -> dict:
    from lib.store.codec import decode_item
    raw = table.get_item(TableName=os.environ["TABLE_NAME"],
                         Key={"PK": {"S": K.conversation_pk("|", sid)}, "SK": {"S": K.SERVICE_SK}}).get("Item")
    return decode_item(raw) or {}


def _stored(items, sid: str) -> list[str]:
    return sorted(i["SK"] for i in items() if i["PK"] == K.conversation_pk("|", sid))


def test_a_deleted_conversation_s_children_wait_for_the_publisher_then_go(api, table, items, feed, frozen):
    sid, tasks = _big(api, table)
    feed.take()
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end").status == 204
    assert "UpdateItem" in calls and "TransactWriteItems" not in calls  # one write
    end_records = feed.records()
    feed.seen += [e for r in end_records for e in events_of(r)]  # the test's own reading, for its gap check
    assert api.delete(f"/services/{sid}").status == 204
    assert erase_deleted(frozen) == 0  # held: not finished
    assert len(_stored(items, sid)) == tasks + 1  # the fence and every task
    assert [i for i in items() if i["SK"] == "#ERASE"][0]["GSI5SK"] > frozen.now  # due again after the hold
    # The publisher, late, still finds the children the end counted.
    events = [e for r in end_records for e in published(r, active_children)]
    assert [e.name for e in events] == ["ServiceCompleted"] + ["TaskCompleted"] * tasks
    frozen.advance(HOLD_S - 120)
    assert maintenance.scheduled(60_000)["erasures_finished"] == 0 and len(_stored(items, sid)) == tasks + 1
    frozen.advance(120)
    assert maintenance.scheduled(60_000)["erasures_finished"] == 1
    assert _stored(items, sid) == [] and [i for i in items() if i["SK"] == "#ERASE"] == []
    feed.take()


def test_without_active_children_nothing_is_held(api, table, items, feed, frozen):
    sid = api.start()
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t"})
    assert api.post(f"/services/{sid}/tasks/1/end", {}).status == 204
    assert api.post(f"/services/{sid}/end").status == 204
    assert api.delete(f"/services/{sid}").status == 204
    assert erase_deleted(frozen) == 1
    assert _stored(items, sid) == []
    feed.take()


def test_an_end_written_long_ago_holds_nothing(api, table, items, feed, frozen):
    sid, _ = _big(api, table)
    assert api.post(f"/services/{sid}/end").status == 204
    feed.take()
    frozen.advance(HOLD_S + 1)
    assert api.delete(f"/services/{sid}").status == 204
    assert erase_deleted(frozen) == 1
    assert _stored(items, sid) == []
    feed.take()


def test_a_purge_keeps_the_children_for_the_hold_and_the_schedule_erases_them_after(api, table, items, feed,
                                                                                  frozen):
    sid, tasks = _big(api, table)
    assert api.post(f"/services/{sid}/end").status == 204
    feed.take()
    reply = api.post("/maintenance/purge", {"limit": "2999-01-01T00:00:00.000Z",
                                            "operation": "purge.service.completed"})
    assert reply.status == 200 and reply.json == {"purged": 1}
    assert api.get(f"/services/{sid}").status == 404
    assert len(_stored(items, sid)) == tasks + 1  # the fence (with the end's time) and the tasks
    assert _item(table, sid)["ended_ms"] is not None
    frozen.advance(HOLD_S + 61)  # due again at the hold's end, past the erasures' grace
    assert maintenance.scheduled(60_000)["erasures_finished"] == 1
    assert _stored(items, sid) == []
    feed.take()


def test_an_import_cannot_take_over_a_held_conversation(api, table, items, feed, frozen):
    sid, tasks = _big(api, table)
    assert api.post(f"/services/{sid}/end").status == 204
    assert api.delete(f"/services/{sid}").status == 204
    feed.take()
    try:
        erasure.take_over("|", sid, "tok")
        raise AssertionError("taken over while held")
    except erasure.ErasureHeld as held:
        assert held.until_ms > frozen.now
    assert len(_stored(items, sid)) == tasks + 1  # nothing changed
    assert _item(table, sid)["erasure_id"] != "import-tok"
    frozen.advance(HOLD_S)
    assert erasure.take_over("|", sid, "tok") == tasks


def test_an_end_that_took_its_cascade_from_the_summary_holds_nothing(api, table, items, feed, frozen):
    """With a trusted summary the publisher reads nothing: the end marks it so (`ended_ms` true) and
    a DELETE's erasure removes the still active children at once."""
    sid = api.start()
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t"})
    assert _item(table, sid)["ax"] is True
    assert api.post(f"/services/{sid}/end").status == 204
    assert _item(table, sid)["ended_ms"] is True
    assert api.delete(f"/services/{sid}").status == 204
    assert erase_deleted(frozen) == 1
    assert _stored(items, sid) == []
    feed.take()


def test_an_end_whose_children_would_not_outlive_the_hold_reads_them_first(api, table, items, feed, frozen,
                                                                          monkeypatch):
    """With a short default expiration (1 hour) the children's TTL, set 25 hours past their service's
    at their start, is used up by a day of sliding writes: an end without a trusted summary then does
    not leave the children to the publisher (they could be gone before a late re-drive reads them) but
    reads them and commits the whole cascade with it, as before: two writes, nothing held."""
    with _default_expiration(monkeypatch, "1h"):
        sid, tasks = _big(api, table)
        for _ in range(24):
            frozen.advance(3000)
            assert api.put(f"/services/{sid}/extensions/k", 1).status == 200  # slides the expiration
        feed.take()
        with count_calls(table) as calls:
            assert api.post(f"/services/{sid}/end").status == 204
        assert calls.count("UpdateItem") == 2  # the one write refused: the children read, then the write
        assert isinstance(_item(table, sid).get("ended_ms"), type(None))
        events = feed.take()
        assert [e.name for e in events] == ["ServiceCompleted"] + ["TaskCompleted"] * tasks
        assert api.delete(f"/services/{sid}").status == 204
        assert erase_deleted(frozen) == 1  # nothing to hold: the cascade is in the record


@contextlib.contextmanager
def _default_expiration(monkeypatch, value: str):
    from lib import settings

    monkeypatch.setenv("DEFAULT_EXPIRATION", value)
    settings.settings.cache_clear()
    try:
        yield
    finally:
        settings.settings.cache_clear()


def _published_names(feed) -> list[str]:
    """The names of the events the publisher makes of the records since the last take (the test's
    own reading of them goes to the gap check)."""
    records = feed.records()
    feed.seen += [e for r in records for e in events_of(r)]
    return [e.name for r in records for e in published(r, active_children)]


def test_an_end_a_day_after_the_start_leaves_the_children_to_the_publisher_under_a_week_s_expiration(
        api, table, feed, frozen, monkeypatch):
    """The children's TTL must outlast the end by the hold, not the service's new expiration by it:
    under a 7-day default expiration (children 25 hours past their service), an end 20 hours after
    the start, sliding writes between, is still the one write."""
    with _default_expiration(monkeypatch, "7d"):
        sid, tasks = _big(api, table)
        for _ in range(4):
            frozen.advance(5 * 3600)
            assert api.put(f"/services/{sid}/extensions/k", 1).status == 200  # slides the expiration
        feed.take()
        with count_calls(table) as calls:
            assert api.post(f"/services/{sid}/end").status == 204
        assert calls == ["UpdateItem"]
        assert _published_names(feed) == ["ServiceCompleted"] + ["TaskCompleted"] * tasks


def test_an_end_after_its_expiration_slid_past_the_children_s_ttl_raises_it_and_is_still_unread(
        api, table, feed, frozen, monkeypatch):
    """A sliding write whose new expiration passes the children's TTL raises them first, as before;
    an end refused for that alone raises them and is sent again: it still leaves the cascade to the
    publisher (`cx` counts it, `ended_ms` starts the hold) instead of reading the children."""
    with _default_expiration(monkeypatch, "7d"):
        sid, tasks = _big(api, table)
        frozen.advance(30 * 3600)  # idle past the children's margin (25 hours under a week's expiration)
        assert _item(table, sid)["children_ttl"] < frozen.now // 1000 + 7 * 86400
        feed.take()
        with count_calls(table) as calls:
            assert api.post(f"/services/{sid}/end").status == 204
        assert calls[0] == "UpdateItem" and calls[-1] == "UpdateItem" and "TransactWriteItems" in calls
        item = _item(table, sid)
        assert (item["cx"], item["ended_ms"]) == (tasks, frozen.now)  # left to the publisher, held from now
        assert item["children_ttl"] >= frozen.now // 1000 + 7 * 86400 + HOLD_S
        assert _published_names(feed) == ["ServiceCompleted"] + ["TaskCompleted"] * tasks
