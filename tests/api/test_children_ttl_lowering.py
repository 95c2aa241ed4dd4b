"""An explicit expiration earlier than the children's TTL (§7: the conversation is erased together, the
children the change feed's hold later, lib.store.items.FEED_HOLD_S):
the write answers in one round trip, recording the lowering with its commit (docs/DESIGN.md,
Expiration); the scheduled maintenance lowers the children's TTL and removes the record. Readers
never depended on it: every read of a child checks its service."""

from __future__ import annotations

from lib.rules import maintenance
from lib.store import due, expiration
from lib.store import keys as store
from lib.store.items import FEED_HOLD_S
from tests.support import assert_error, count_calls


def ttl_of(items, service_id: str) -> dict[str, int]:
    """The TTL attribute of every stored item of the conversation, by sort key."""
    return {i["SK"]: i[store.TTL_ATTRIBUTE] for i in items() if i["PK"] == store.conversation_pk("|", service_id)}


def lowerings(items) -> list[dict]:
    return [i for i in items() if i.get("type") == "ttl_lowering"]


def conversation(api) -> str:
    service_id = api.start()
    api.start_state(service_id)
    api.start_task(service_id)
    return service_id


def expected_ttl(frozen, seconds: int) -> int:
    return -(-(frozen.now + seconds * 1000) // 1000)


def together(items, service_id: str) -> tuple[int, set[int]]:
    """(the service's TTL, the set of its children's TTLs less the change feed's hold): when the
    conversation is erased together, (T, {T})."""
    ttls = ttl_of(items, service_id)
    return ttls[store.SERVICE_SK], {ttl - FEED_HOLD_S for sk, ttl in ttls.items() if sk != store.SERVICE_SK}


def test_put_is_one_transaction_and_the_schedule_lowers_the_children(api, frozen, items, table):
    service_id = conversation(api)
    before = ttl_of(items, service_id)
    with count_calls(table) as calls:
        assert api.put(f"/services/{service_id}", {"ttl": 50}).status == 200
    assert calls == ["TransactWriteItems"]
    target = expected_ttl(frozen, 50)
    after = ttl_of(items, service_id)
    assert after[store.SERVICE_SK] == target
    assert {sk: ttl for sk, ttl in after.items() if sk != store.SERVICE_SK} == \
        {sk: ttl for sk, ttl in before.items() if sk != store.SERVICE_SK}  # not yet: due work
    assert all(ttl > target for sk, ttl in after.items() if sk != store.SERVICE_SK)
    [record] = lowerings(items)
    assert (record["service_id"], record["GSI5PK"]) == (service_id, store.due_pk(store.LOWER, service_id))

    assert maintenance.scheduled(60_000)["children_ttl_lowered"] == 1
    assert together(items, service_id) == (target, {target})
    assert lowerings(items) == []
    assert maintenance.scheduled(60_000)["children_ttl_lowered"] == 0

    frozen.advance(51)  # the reads never waited for the lowering
    assert_error(api.get(f"/services/{service_id}/states/1"), 404, "NotFoundException")


def test_children_are_hidden_at_once_before_the_schedule(api, frozen, items):
    service_id = conversation(api)
    api.put(f"/services/{service_id}", {"ttl": 50})
    frozen.advance(51)
    for path in ("", "/states", "/tasks", "/states/1", "/tasks/1"):
        assert_error(api.get(f"/services/{service_id}{path}"), 404, "NotFoundException")
    assert len(lowerings(items)) == 1


def test_a_later_expiration_replaces_the_record(api, frozen, items):
    service_id = conversation(api)
    api.put(f"/services/{service_id}", {"ttl": 50})
    api.put(f"/services/{service_id}", {"ttl": 500})
    [record] = lowerings(items)
    assert maintenance.scheduled(60_000)["children_ttl_lowered"] == 1
    assert together(items, service_id) == (expected_ttl(frozen, 500), {expected_ttl(frozen, 500)})
    assert lowerings(items) == []


def test_the_schedule_keeps_a_record_written_after_it_read(api, frozen, items):
    service_id = conversation(api)
    api.put(f"/services/{service_id}", {"ttl": 50})
    [read] = due.due_lowerings(frozen.now)
    frozen.advance(1)
    api.put(f"/services/{service_id}", {"ttl": 40})  # replaces the record the schedule read
    assert expiration.finish_lowering(read, frozen.now) is False  # not the service's expiration any more
    [kept] = lowerings(items)
    assert kept["op"] != read.op
    assert maintenance.scheduled(60_000)["children_ttl_lowered"] == 1
    assert together(items, service_id) == (expected_ttl(frozen, 40), {expected_ttl(frozen, 40)})


def test_children_started_before_the_schedule_are_lowered_too(api, frozen, items):
    service_id = conversation(api)
    api.put(f"/services/{service_id}", {"ttl": 50})
    api.start_state(service_id)
    api.start_task(service_id)
    maintenance.scheduled(60_000)
    ttls = ttl_of(items, service_id)
    assert len(ttls) == 5 and together(items, service_id) == (expected_ttl(frozen, 50), {expected_ttl(frozen, 50)})


def test_a_deleted_service_leaves_nothing_to_lower(api, frozen, items):
    service_id = conversation(api)
    api.put(f"/services/{service_id}", {"ttl": 50})
    assert api.delete(f"/services/{service_id}").status == 204
    assert maintenance.scheduled(60_000)["children_ttl_lowered"] == 0
    assert lowerings(items) == []


def test_an_end_that_sets_an_earlier_expiration_records_the_lowering(api, frozen, items):
    service_id = conversation(api)
    assert api.post(f"/services/{service_id}/end", {"ttl": 50}).status == 204
    assert len(lowerings(items)) == 1
    assert maintenance.scheduled(60_000)["children_ttl_lowered"] == 1
    assert together(items, service_id) == (expected_ttl(frozen, 50), {expected_ttl(frozen, 50)})


def test_an_end_that_sets_an_expiration_records_it_unread_and_the_schedule_finds_nothing_above(
        api, frozen, items, table):
    """An end reads nothing, so, like a PUT of the expiration, it records the lowering even when the
    children are not above it already (its one TransactWriteItems); the schedule then finds nothing
    to lower and the record goes."""
    service_id = conversation(api)
    api.put(f"/services/{service_id}", {"ttl": 50})
    maintenance.scheduled(60_000)
    before = together(items, service_id)
    with count_calls(table) as calls:
        assert api.post(f"/services/{service_id}/end", {"ttl": 50}).status == 204
    assert calls == ["TransactWriteItems"] and len(lowerings(items)) == 1
    assert maintenance.scheduled(60_000)["children_ttl_lowered"] == 0
    assert lowerings(items) == [] and together(items, service_id) == before


def test_raising_still_happens_before_the_commit(api, frozen, items):
    service_id = conversation(api)
    api.put(f"/services/{service_id}", {"ttl": 50})
    maintenance.scheduled(60_000)
    later = 200_000  # past the children's TTL (50 s and the feed's hold): raised
    assert api.put(f"/services/{service_id}", {"ttl": later}).status == 200
    assert together(items, service_id) == (expected_ttl(frozen, later), {expected_ttl(frozen, later)})  # at once
    assert maintenance.scheduled(60_000)["children_ttl_lowered"] == 0
    assert lowerings(items) == []


def test_an_end_with_an_expiration_already_past_still_has_its_children_lowered(api, frozen, items):
    """The conversation is gone at once for every read; the schedule, finding its expiration passed,
    brings the children down to now and the change feed's hold instead of leaving them the TTL they
    had (years, under the sliding default)."""
    service_id = conversation(api)
    assert api.post(f"/services/{service_id}/end", {"expiration_time": "2020-01-01T00:00:00Z"}).status == 204
    assert api.get(f"/services/{service_id}").status == 404
    assert len(lowerings(items)) == 1
    frozen.advance(120)
    assert maintenance.scheduled(60_000)["children_ttl_lowered"] == 1
    _, children = together(items, service_id)
    assert children == {frozen.now // 1000} and lowerings(items) == []


def test_an_end_with_a_short_ttl_keeps_its_children_a_day_past_it_for_the_change_feed(api, frozen, items):
    """Lowered after an end that sets a short expiration, the children still outlive the end by the
    change feed's hold (its publisher may read them for the end's cascade within the stream's day)."""
    service_id = conversation(api)
    ended = frozen.now // 1000
    assert api.post(f"/services/{service_id}/end", {"ttl": 60}).status == 204
    frozen.advance(30)
    assert maintenance.scheduled(60_000)["children_ttl_lowered"] == 1
    assert min(t for sk, t in ttl_of(items, service_id).items() if sk != store.SERVICE_SK) >= ended + FEED_HOLD_S


def test_a_write_that_keeps_an_explicit_expiration_raises_nothing(api, frozen, items, table):
    """A write that does not set the expiration, refused because it assumed a sliding one, is sent
    again leaving the explicit one alone: the children's TTL stays (the sliding expiration it first
    assumed, years away, is not the one it writes), two calls and nothing else."""
    service_id = conversation(api)
    assert api.put(f"/services/{service_id}", {"ttl": 7200}).status == 200
    maintenance.scheduled(60_000)
    before = ttl_of(items, service_id)
    for write in (lambda: api.put(f"/services/{service_id}/extensions/note", {"a": 1}),
                  lambda: api.post(f"/services/{service_id}/end", {})):
        with count_calls(table) as calls:
            assert write().status in (200, 204)
        assert calls == ["UpdateItem", "UpdateItem"]
        after = ttl_of(items, service_id)
        assert {sk: ttl for sk, ttl in after.items() if sk != store.SERVICE_SK} == \
            {sk: ttl for sk, ttl in before.items() if sk != store.SERVICE_SK}
    assert lowerings(items) == []


def test_an_end_raising_the_children_past_a_concurrent_raise_still_records_their_lowering(
        api, frozen, items, table, monkeypatch):
    """An end whose new expiration passes the children's TTL raises them, then commits. When another
    write raised them further meanwhile (here a PUT of a later expiration), the end learns it from
    the refused raise and records the lowering to its own expiration with its commit."""
    from lib.store import services as services_store

    service_id = conversation(api)
    years = 365 * 86400
    real = services_store.raise_children_ttl

    def put_first(service, target):
        monkeypatch.setattr(services_store, "raise_children_ttl", real)
        assert api.put(f"/services/{service_id}", {"ttl": 8 * years}).status == 200
        return real(service, target)

    monkeypatch.setattr(services_store, "raise_children_ttl", put_first)
    with count_calls(table) as calls:
        assert api.post(f"/services/{service_id}/end", {"ttl": 7 * years}).status == 204
    assert calls[0] == "TransactWriteItems" and calls[-1] == "TransactWriteItems", calls  # the end, with its record
    [record] = lowerings(items)
    assert record["expires_ms"] == frozen.now + 7 * years * 1000
    assert maintenance.scheduled(60_000)["children_ttl_lowered"] == 1
    assert together(items, service_id) == (expected_ttl(frozen, 7 * years), {expected_ttl(frozen, 7 * years)})


def test_a_write_refused_from_the_item_it_returned_raises_no_ttl(api, frozen, items, table):
    """A write refused with the domain's error the returned item shows (here an association whose
    new start is after the service's end: 400) is not prepared for a next attempt: the children's
    TTL stays, although the sliding expiration the write first assumed would pass it."""
    from lib.clock import format_ms

    service_id = conversation(api)
    assert api.post(f"/services/{service_id}/end", {}).status == 204
    before = ttl_of(items, service_id)
    frozen.advance(200 * 86400)  # a sliding expiration from now passes the children's TTL
    assert frozen.now // 1000 + 5 * 365 * 86400 > max(before.values())
    with count_calls(table) as calls:
        reply = api.post(f"/customers/someone/services/{service_id}", {"timestamp": format_ms(frozen.now)})
    assert_error(reply, 400, mentions="timestamp")
    assert calls == ["UpdateItem"] and ttl_of(items, service_id) == before


def test_an_end_refused_as_completed_changes_nothing_not_even_the_children_s_ttl(api, frozen, items, table):
    """An end answered 409 from the refused write's item raises nothing for a next attempt: the
    children of a completed service keep their TTL even when the sliding expiration the end assumed
    would pass it (the end is one call, and the data is kept no longer than it was)."""
    sid = api.start()
    api.post(f"/services/{sid}/states/start", {"state_type": "s"})
    assert api.post(f"/services/{sid}/end", {}).status == 204

    def children_ttl() -> int:
        [service] = [i for i in items() if i["PK"] == store.conversation_pk("|", sid) and i["SK"] == store.SERVICE_SK]
        return service["children_ttl"]

    before, recorded = ttl_of(items, sid), children_ttl()
    frozen.advance(200 * 86400)  # the end's sliding expiration would now pass the children's TTL
    assert frozen.now // 1000 + 5 * 365 * 86400 > recorded
    with count_calls(table) as calls:
        assert api.post(f"/services/{sid}/end", {}).status == 409
    assert calls == ["UpdateItem"]
    assert ttl_of(items, sid) == before and children_ttl() == recorded
