"""The change feed's events of the state and task routes (contract §6, §10), read from the table's
stream: starts, ends and their cascades (a big state's included), transitions, attached data."""

from __future__ import annotations

import pytest

from lib.clock import format_ms
from lib.store import ends


def test_state_and_task_starts_are_started_events(api, feed, frozen):
    sid = api.start()
    assert api.post(f"/services/{sid}/states/start", {"state_type": 3, "est_duration": 9, "media_type": "chat",
                                                       "b": 1, "a": 2}).status == 201
    assert api.post(f"/services/{sid}/states/start", {"state_type": "next", "previous_state_id": 1,
                                                       "timestamp": "2026-03-01T00:00:00Z"}).status == 201
    assert api.post(f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": "2", "est_duration": 4,
                                                      "k": True}).status == 201
    assert api.post(f"/services/{sid}/tasks/start", {"task_type": 7}).status == 201
    events = feed.take()
    now = format_ms(frozen.now)
    assert [(e.name, e.sequence) for e in events] == [("ServiceStarted", 1), ("StateStarted", 2), ("StateStarted", 3),
                                                      ("TaskStarted", 4), ("TaskStarted", 5)]
    assert events[1].data == {"state_id": 1, "state_type": 3, "previous_state_id": None, "est_duration": 9,
                              "started": {"media_type": "chat", "timestamp": now}, "attached_keys": ["a", "b"]}
    assert events[2].data == {"state_id": 2, "state_type": "next", "previous_state_id": 1, "est_duration": None,
                              "started": {"timestamp": "2026-03-01T00:00:00.000Z"}, "attached_keys": []}
    assert events[2].at == 1772323200000
    assert events[3].data == {"task_id": 1, "task_type": "t", "state_id": 2, "est_duration": 4,
                              "started": {"timestamp": now}, "attached_keys": ["k"]}
    assert events[4].data == {"task_id": 2, "task_type": 7, "state_id": None, "est_duration": None,
                              "started": {"timestamp": now}, "attached_keys": []}


def test_a_task_end_is_task_completed_then_its_attached_data(api, feed, frozen):
    sid = api.start()
    api.post(f"/services/{sid}/states/start", {})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": 1})
    feed.take()
    frozen.advance(3)
    assert api.post(f"/services/{sid}/tasks/1/end", {"disposition": 4, "disposition_desc": "d", "x": [1],
                                                     "task_type": "ignored"}).status == 204
    completed, attached = feed.take()
    assert (completed.name, completed.sequence, completed.at) == ("TaskCompleted", 4, frozen.now)
    assert completed.data == {"task_id": 1, "task_type": "t", "state_id": 1,
                              "completed": {"timestamp": format_ms(frozen.now)}, "disposition": 4,
                              "disposition_desc": "d", "duration": 3000, "reason": "request"}
    assert (attached.name, attached.sequence, attached.data) == \
        ("AttachedDataChanged", 5, {"element": "task", "task_id": 1, "keys": ["x"]})


def test_a_state_end_is_state_completed_its_tasks_cascade_then_its_attached_data(api, feed, frozen):
    sid = api.start()
    api.post(f"/services/{sid}/states/start", {"state_type": "s"})
    for task_type in ("a", "b", "c"):
        api.post(f"/services/{sid}/tasks/start", {"task_type": task_type, "state_id": 1})
    frozen.advance(1)
    api.post(f"/services/{sid}/tasks/2/end", {})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "loose"})
    feed.take()
    frozen.advance(2)
    assert api.post(f"/services/{sid}/states/1/end", {"disposition": "ok", "why": 1}).status == 204
    events = feed.take()
    end = format_ms(frozen.now)
    assert [(e.name, e.sequence) for e in events] == [("StateCompleted", 8), ("TaskCompleted", 9),
                                                      ("TaskCompleted", 10), ("AttachedDataChanged", 11)]
    assert events[0].data == {"state_id": 1, "state_type": "s", "completed": {"timestamp": end}, "disposition": "ok",
                              "disposition_desc": None, "duration": 3000, "reason": "request"}
    assert [(e.data["task_id"], e.data["reason"], e.data["completed"], e.data["duration"], e.data["disposition"])
            for e in events[1:3]] == [(1, "state_completed", {"timestamp": end}, 3000, None),
                                      (3, "state_completed", {"timestamp": end}, 3000, None)]
    assert events[3].data == {"element": "state", "state_id": 1, "keys": ["why"]}
    # The service's end then completes only what is still active: the loose task.
    assert api.post(f"/services/{sid}/end").status == 204
    assert [(e.name, e.data.get("task_id")) for e in feed.take()] == [("ServiceCompleted", None), ("TaskCompleted", 4)]


def test_a_transition_completes_the_state_and_its_tasks_then_starts_the_next(api, feed, frozen):
    sid = api.start()
    api.post(f"/services/{sid}/states/start", {"state_type": "first"})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "a", "state_id": 1})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "b", "state_id": 1})
    api.post(f"/services/{sid}/tasks/1/end", {})
    feed.take()
    frozen.advance(4)
    reply = api.post(f"/services/{sid}/states/transition", {
        "from": {"state_id": 1, "disposition": "moved", "disposition_desc": "on"},
        "to": {"state_type": "second", "est_duration": 5}, "session_id": "s", "note": 1})
    assert reply.status == 201 and reply.json == {"state_id": 2}
    events = feed.take()
    at = format_ms(frozen.now)
    assert [(e.name, e.sequence) for e in events] == [("StateCompleted", 6), ("TaskCompleted", 7), ("StateStarted", 8)]
    assert events[0].data == {"state_id": 1, "state_type": "first", "completed": {"session_id": "s", "timestamp": at},
                              "disposition": "moved", "disposition_desc": "on", "duration": 4000,
                              "reason": "transition"}
    assert events[1].data == {"task_id": 2, "task_type": "b", "state_id": 1, "completed": {"timestamp": at},
                              "disposition": None, "disposition_desc": None, "duration": 4000,
                              "reason": "state_completed"}
    assert events[2].data == {"state_id": 2, "state_type": "second", "previous_state_id": 1, "est_duration": 5,
                              "started": {"session_id": "s", "timestamp": at}, "attached_keys": ["note"]}


def test_state_and_task_extension_put_and_merge_are_attached_data_changed(api, feed):
    sid = api.start()
    api.post(f"/services/{sid}/states/start", {})
    api.post(f"/services/{sid}/tasks/start", {})
    feed.take()
    assert api.put(f"/services/{sid}/states/1/extensions/k", 1).status == 200
    assert api.put(f"/services/{sid}/states/1/extensions/m/merge", {"a": 1}).status == 200
    assert api.put(f"/services/{sid}/tasks/1/extensions/k", [2]).status == 200
    assert api.put(f"/services/{sid}/tasks/1/extensions/m/merge", {"a": None}).status == 200
    assert [(e.name, e.sequence, e.data) for e in feed.take()] == [
        ("AttachedDataChanged", 4, {"element": "state", "state_id": 1, "keys": ["k"]}),
        ("AttachedDataChanged", 5, {"element": "state", "state_id": 1, "keys": ["m"]}),
        ("AttachedDataChanged", 6, {"element": "task", "task_id": 1, "keys": ["k"]}),
        ("AttachedDataChanged", 7, {"element": "task", "task_id": 1, "keys": ["m"]})]


# A transaction's limit, lowered for these tests (DynamoDB's is 100): a "big" state is one with more
# active tasks than one transaction holds, and starting a hundred tasks through the handlers takes
# seconds. The store reads the limit from its modules (ends, starts) at each call.
LIMIT = 12


@pytest.fixture
def small_transactions(monkeypatch):
    from lib.store import starts

    monkeypatch.setattr(ends, "TRANSACTION_LIMIT", LIMIT)
    monkeypatch.setattr(starts, "TRANSACTION_LIMIT", LIMIT)


def _big_state(api, tasks: int) -> str:
    sid = api.start()
    api.post(f"/services/{sid}/states/start", {"state_type": "big"})
    for _ in range(tasks):
        assert api.post(f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": 1}).status == 201
    return sid


def test_a_big_state_end_commits_all_its_cascade_events_with_the_end(api, feed, frozen, small_transactions):
    n = LIMIT + 1  # more active tasks than one transaction holds (LIMIT - 2 with the state)
    sid = _big_state(api, n)
    api.post(f"/services/{sid}/tasks/{n // 2}/end", {})
    api.post(f"/services/{sid}/tasks/start", {"task_type": "loose"})
    feed.take()
    assert api.post(f"/services/{sid}/states/1/end", {}).status == 204
    [events] = feed.writes()  # one write of the service item commits them all
    assert (events[0].name, events[0].sequence) == ("StateCompleted", n + 5)
    assert [(e.name, e.sequence) for e in events[1:]] == [("TaskCompleted", k) for k in range(n + 6, 2 * n + 5)]
    assert [e.data["task_id"] for e in events[1:]] == [k for k in range(1, n + 1) if k != n // 2]
    assert {e.data["reason"] for e in events[1:]} == {"state_completed"}
    # Every task is completed, and the service's end cascades only to the loose task.
    assert api.get(f"/services/{sid}/tasks/active").json == [{"task_id": n + 1, "task_type": "loose",
                                                                "service_id": sid,
                                                                "started": {"timestamp": format_ms(frozen.now)}}]
    assert api.post(f"/services/{sid}/end").status == 204
    assert [(e.name, e.data.get("task_id")) for e in feed.take()] == [("ServiceCompleted", None),
                                                                      ("TaskCompleted", n + 1)]


def test_a_service_end_while_a_big_state_cascade_is_unfinished_leaves_its_tasks_out(api, feed, monkeypatch,
                                                                                     small_transactions):
    n = LIMIT
    sid = _big_state(api, n)
    api.post(f"/services/{sid}/tasks/start", {"task_type": "loose"})  # the service end has a cascade to read
    monkeypatch.setattr(ends, "finish_cascade", lambda *args, **kwargs: None)  # interrupted after its commit
    assert api.post(f"/services/{sid}/states/1/end", {}).status == 204
    names = feed.names()
    assert names.count("TaskCompleted") == n and names[-(n + 1)] == "StateCompleted"
    assert [t["task_id"] for t in api.get(f"/services/{sid}/tasks/active").json] == [n + 1]  # reads apply the mark
    assert api.post(f"/services/{sid}/end").status == 204
    # Two of the state's tasks are still active in their items, but completed with their state (its
    # events are committed): the service's end cascades to the loose task only, never to them twice.
    assert [(e.name, e.data.get("task_id")) for e in feed.take()] == [("ServiceCompleted", None),
                                                                      ("TaskCompleted", n + 1)]


def _end_task_at_second_read(api, monkeypatch, module, sid, task_id):
    """`module.tasks_of_state` ends task `task_id` through the API right after its second read (the
    read made after the service item's, for the commit)."""
    real = module.tasks_of_state
    reads = {"n": 0}

    def read_then_end(*args):
        found = real(*args)
        reads["n"] += 1
        if reads["n"] == 2:
            assert api.post(f"/services/{sid}/tasks/{task_id}/end", {}).status == 204
        return found

    monkeypatch.setattr(module, "tasks_of_state", read_then_end)


def test_a_task_ending_while_a_big_state_ends_is_completed_once(api, feed, monkeypatch, small_transactions):
    """A task beyond the first transaction's share ends between the big state end's read of its tasks
    and its commit: the commit (conditional on the service item's `seq`) is refused and read again,
    so that task's completion is its own end's, never the cascade's as well."""
    n = LIMIT + 1
    sid = _big_state(api, n)
    feed.take()
    _end_task_at_second_read(api, monkeypatch, ends, sid, n - 1)
    assert api.post(f"/services/{sid}/states/1/end", {}).status == 204
    events = feed.take()
    assert [(e.name, e.data["reason"]) for e in events[:1]] == [("TaskCompleted", "request")]
    assert events[0].data["task_id"] == n - 1 and events[1].name == "StateCompleted"
    cascaded = [e.data["task_id"] for e in events[2:]]
    assert cascaded == [k for k in range(1, n + 1) if k != n - 1]


def test_a_task_ending_while_a_big_state_transitions_is_completed_once(api, feed, monkeypatch, small_transactions):
    from lib.store import starts

    n = LIMIT + 1
    sid = _big_state(api, n)
    feed.take()
    _end_task_at_second_read(api, monkeypatch, starts, sid, n)
    reply = api.post(f"/services/{sid}/states/transition", {"from": {"state_id": 1}, "to": {"state_type": "n"}})
    assert reply.status == 201
    events = feed.take()
    assert (events[0].name, events[0].data["task_id"], events[0].data["reason"]) == ("TaskCompleted", n, "request")
    assert (events[1].name, events[1].data["reason"], events[-1].name) == ("StateCompleted", "transition",
                                                                          "StateStarted")
    assert [e.data["task_id"] for e in events[2:-1]] == list(range(1, n))
