"""The change feed's events of composite start (§4), purge (§8) and auto-complete (§7), read from the
table's stream: every created element emits its Started event; every purged service its
ServicePurged; a recorded auto-completion its ServiceCompleted and cascade, once, whoever records it."""

from __future__ import annotations

from lib.clock import format_ms
from lib.rules import maintenance

COMPOSITE = {"service": {"customer_id": "c-1", "service_type": "sales", "note": 1}, "state": {"state_type": "greet"},
             "task": {"task_type": "lookup", "k": 2}, "associate_state_task": True}


def test_a_composite_start_that_creates_everything_commits_the_three_started_events_at_once(api, feed, frozen):
    reply = api.post("/services_composite/start", {"services": [COMPOSITE]})
    assert reply.status == 200
    sid = reply.json["services"][0]["service_id"]
    [events] = feed.writes()
    now = format_ms(frozen.now)
    assert [(e.name, e.sequence, e.service_id) for e in events] == \
        [("ServiceStarted", 1, sid), ("StateStarted", 2, sid), ("TaskStarted", 3, sid)]
    assert events[0].data == {"service_type": "sales", "est_duration": None, "started": {"timestamp": now},
                              "expiration_time": events[0].data["expiration_time"], "auto_complete_after": None,
                              "attached_keys": ["note"]}
    assert events[1].data == {"state_id": 1, "state_type": "greet", "previous_state_id": None, "est_duration": None,
                              "started": {"timestamp": now}, "attached_keys": []}
    assert events[2].data == {"task_id": 1, "task_type": "lookup", "state_id": 1, "est_duration": None,
                              "started": {"timestamp": now}, "attached_keys": ["k"]}
    # Reused whole: nothing changes, nothing is emitted. A new task type in it: its TaskStarted only.
    assert api.post("/services_composite/start", {"services": [COMPOSITE]}).status == 200
    assert feed.take() == []
    other = {**COMPOSITE, "task": {"task_type": "pay"}}
    assert api.post("/services_composite/start", {"services": [other]}).json["services"][0]["task_created"]
    [started] = feed.take()
    assert (started.name, started.sequence, started.data["task_id"], started.data["task_type"]) == \
        ("TaskStarted", 4, 2, "pay")
    # The service ends: the state and both tasks are in its cascade.
    assert api.post(f"/services/{sid}/end").status == 204
    assert feed.names() == ["ServiceCompleted", "StateCompleted", "TaskCompleted", "TaskCompleted"]


def test_a_composite_start_in_a_service_of_the_plain_routes_emits_what_it_creates(api, feed):
    sid = api.start(customer_id="c-1", service_type="sales")
    feed.take()
    reply = api.post("/services_composite/start", {"services": [COMPOSITE, {**COMPOSITE, "state": {
        "state_type": "second"}, "task": None}]})
    assert reply.status == 200
    assert [r["service_id"] for r in reply.json["services"]] == [sid, sid]
    assert [(e.name, e.sequence) for e in feed.take()] == [("StateStarted", 2), ("TaskStarted", 3),
                                                           ("StateStarted", 4)]


def _at(seconds: int) -> str:
    return format_ms(1_700_000_000_000 + seconds * 1000)


def test_a_purge_is_service_purged_for_each_service_with_its_next_sequence(api, feed, frozen):
    first = api.start(customer_id="c-1", timestamp=_at(1))
    api.post(f"/services/{first}/states/start", {})
    api.post(f"/services/{first}/tasks/start", {"state_id": 1})
    anonymous = api.start(contact_key="k-1", timestamp=_at(2))
    later = api.start(customer_id="c-2", timestamp=_at(100))
    feed.take()
    reply = api.post("/maintenance/purge", {"limit": _at(50), "operation": "purge.service.all"})
    assert reply.json == {"purged": 2}
    events = sorted(feed.take(), key=lambda e: e.service_id != first)
    assert [(e.name, e.service_id, e.sequence, e.customer_id, e.contact_key, e.data, e.at) for e in events] == [
        ("ServicePurged", first, 4, "c-1", None, {}, frozen.now),
        ("ServicePurged", anonymous, 2, None, "k-1", {}, frozen.now)]
    assert api.get(f"/services/{later}").status == 200


def test_a_purge_deletes_a_service_changed_since_it_was_read_with_the_sequence_it_has_then(api, feed, monkeypatch):
    from lib.store import erasure, table

    sid = api.start(customer_id="c-1", timestamp=_at(1))
    feed.take()
    real = erasure._read

    def read_then_change(tenant, service_ids):
        found = real(tenant, service_ids)
        assert api.put(f"/services/{sid}/extensions/late", 1).status == 200  # committed after the read
        return found

    monkeypatch.setattr(erasure, "_read", read_then_change)
    assert api.post("/maintenance/purge", {"limit": _at(50), "operation": "purge.service.all"}).json == {"purged": 1}
    assert [(e.name, e.sequence) for e in feed.take()] == [("AttachedDataChanged", 2), ("ServicePurged", 3)]
    assert table.get({"PK": f"|#C#{sid}", "SK": "#SERVICE"}) is None


def _auto_completing(api, frozen) -> str:
    sid = api.start(customer_id="c-1", auto_complete_after=60)
    api.post(f"/services/{sid}/states/start", {"state_type": "s"})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "in", "state_id": 1})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "loose"})
    api.post(f"/services/{sid}/tasks/2/end", {})
    return sid


def test_the_schedule_records_an_auto_completion_with_its_cascade(api, feed, frozen):
    sid = _auto_completing(api, frozen)
    quiet = api.start(customer_id="c-2", auto_complete_after=30)
    deadline = frozen.now + 60_000
    feed.take()
    frozen.advance(120)
    assert maintenance.scheduled(60_000)["auto_completed"] == 2
    events = feed.take()
    mine = [e for e in events if e.service_id == sid]
    assert [(e.name, e.sequence) for e in mine] == [("ServiceCompleted", 6), ("StateCompleted", 7),
                                                    ("TaskCompleted", 8)]
    assert mine[0].at == deadline
    assert mine[0].data == {"reason": "auto_complete", "completed": {"timestamp": format_ms(deadline)},
                            "disposition": None, "disposition_desc": None, "duration": 60_000}
    assert [(e.data["reason"], e.data["completed"]) for e in mine[1:]] == \
        [("service_completed", {"timestamp": format_ms(deadline)})] * 2
    assert [(e.name, e.sequence, e.data["duration"]) for e in events if e.service_id == quiet] == \
        [("ServiceCompleted", 2, 30_000)]
    # Recorded once: the next run, and a write meeting the service now, record nothing more.
    assert maintenance.scheduled(60_000)["auto_completed"] == 0
    assert api.put(f"/services/{sid}/extensions/after", 1).status == 200
    assert [(e.name, e.sequence) for e in feed.take()] == [("AttachedDataChanged", 9)]


def test_a_write_that_meets_a_past_deadline_records_the_auto_completion_first(api, feed, frozen):
    sid = _auto_completing(api, frozen)
    deadline = frozen.now + 60_000
    feed.take()
    frozen.advance(90)
    assert api.put(f"/services/{sid}/extensions/late", True).status == 200
    events = feed.take()
    assert [(e.name, e.sequence) for e in events] == [("ServiceCompleted", 6), ("StateCompleted", 7),
                                                      ("TaskCompleted", 8), ("AttachedDataChanged", 9)]
    assert (events[0].data["reason"], events[0].at, events[3].at) == ("auto_complete", deadline, frozen.now)
    assert maintenance.scheduled(60_000)["auto_completed"] == 0
    assert feed.take() == []
    # A start or an end is then refused (409): nothing more is emitted.
    assert api.post(f"/services/{sid}/states/start", {}).status == 409
    assert api.post(f"/services/{sid}/end").status == 409
    assert feed.take() == []
