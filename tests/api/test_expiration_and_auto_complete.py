"""Expiration and auto-complete (§7) through lambda_handler on moto: the default and explicit expiration,
`ttl` and `expiration_time` on a start, an end and a PUT, children that share their service's expiry,
and auto-complete seen on read, in lists and in exports, and recorded by writes and the schedule."""

from __future__ import annotations

import pytest

from lib.clock import format_ms, parse_timestamp
from lib.store import keys as store
from lib.store.items import FEED_HOLD_S
from tests.support import (
    assert_error,
    at,
    run_maintenance,
    stream,
)

# ---------------------------------------------------------------- expiration


def test_default_expiration_is_five_years(api, frozen):
    service_id = api.start()
    view = api.get(f"/services/{service_id}").json

    assert parse_timestamp(view["expiration_time"]) == frozen.now + 5 * 365 * 86400 * 1000


def test_ttl_on_start_expires_reads_and_lists(api, frozen, items):
    service_id = api.start(customer_id="c", ttl=60)
    stored = [i for i in items() if i["SK"] == store.SERVICE_SK][0]
    assert stored[store.TTL_ATTRIBUTE] == -(-(frozen.now + 60_000) // 1000)
    assert api.get(f"/services/{service_id}").status == 200
    frozen.advance(61)
    assert_error(api.get(f"/services/{service_id}"), 404, "NotFoundException")
    assert api.get("/customers/c/services").json == []
    assert_error(api.post(f"/services/{service_id}/end", {}), 404, "NotFoundException")


def test_put_expiration_ttl_wins_and_returns_the_time(api, frozen):
    service_id = api.start()
    reply = api.put(f"/services/{service_id}", {"ttl": 10, "expiration_time": "2099-01-01T00:00:00Z"})
    assert reply.status == 200
    assert reply.json == {"service_id": service_id, "expiration_time": format_ms(frozen.now + 10_000)}
    reply = api.put(f"/services/{service_id}", {"expiration_time": "2099-01-01T00:00:00+02:00"})
    assert reply.json["expiration_time"] == "2098-12-31T22:00:00.000Z"
    assert api.get(f"/services/{service_id}").json["expiration_time"] == "2098-12-31T22:00:00.000Z"


def test_explicit_expiration_survives_later_writes(api):
    service_id = api.start(customer_id="c", expiration_time="2099-01-01T00:00:00Z")
    api.post(f"/customers/c/services/{service_id}", {"note": 1})
    api.post(f"/services/{service_id}/end", {})
    assert api.get(f"/services/{service_id}").json["expiration_time"] == "2099-01-01T00:00:00.000Z"


def test_past_expiration_time_expires_at_once(api):
    service_id = api.start()
    assert api.put(f"/services/{service_id}", {"expiration_time": "2001-01-01T00:00:00Z"}).status == 200
    assert_error(api.get(f"/services/{service_id}"), 404, "NotFoundException")


def test_end_can_set_expiration(api, frozen):
    service_id = api.start()
    api.post(f"/services/{service_id}/end", {"ttl": 5})
    frozen.advance(6)
    assert_error(api.get(f"/services/{service_id}"), 404, "NotFoundException")


@pytest.mark.parametrize("body", [{}, {"ttl": -1}, {"ttl": "1"}, {"expiration_time": "x"}, {"other": 1}])
def test_put_expiration_needs_a_valid_value(api, body):
    service_id = api.start()
    assert_error(api.put(f"/services/{service_id}", body), 400, "ValidationException")


def test_children_share_the_conversation_expiry_and_tenant(api, frozen, items):
    service_id = api.start(ttl=100)
    api.start_state(service_id)
    api.start_task(service_id)
    stored = [i for i in items() if service_id in i["PK"]]
    assert all(store.TTL_ATTRIBUTE in i for i in stored) and len(stored) == 3
    assert_error(api.get(f"/services/{service_id}/states/1", headers={"ContactCenterId": "x"}), 404, "NotFoundException")
    frozen.advance(101)
    assert_error(api.get(f"/services/{service_id}/states/1"), 404, "NotFoundException")
    assert_error(api.get(f"/services/{service_id}/tasks"), 404, "NotFoundException")


def test_put_expiration_rewrites_children_ttl(api, frozen, items):
    service_id = api.start()
    api.start_state(service_id)
    api.start_task(service_id)
    api.put(f"/services/{service_id}", {"ttl": 50})
    run_maintenance({"source": "aws.events", "detail-type": "Scheduled Event"})  # lowering is due work
    expected = -(-(frozen.now + 50_000) // 1000)
    ttls = {i["SK"]: i[store.TTL_ATTRIBUTE] for i in items() if service_id in i["PK"]}
    assert ttls.pop(store.SERVICE_SK) == expected
    assert set(ttls.values()) == {expected + FEED_HOLD_S}  # the children: the change feed's hold later


def test_ending_a_task_of_an_expired_service_is_404(api, frozen):
    sid = api.start(customer_id="exp", ttl=10)
    ended = api.post(f"/services/{sid}/tasks/start", {"task_type": "t"}).json["task_id"]
    active = api.post(f"/services/{sid}/tasks/start", {"task_type": "t"}).json["task_id"]
    assert api.post(f"/services/{sid}/tasks/{ended}/end", {}).status == 204
    frozen.advance(20)
    assert api.get(f"/services/{sid}").status == 404
    assert api.post(f"/services/{sid}/tasks/{ended}/end", {}).status == 404
    late = api.post(f"/services/{sid}/tasks/{active}/end", {"timestamp": "2001-01-01T00:00:00Z"})
    assert late.status == 404, late.text


# ---------------------------------------------------------------- auto-complete


def test_auto_complete_is_seen_on_read_in_lists_and_in_exports(api, frozen):
    service = api.start(customer_id="ac", auto_complete_after=60)
    api.post(f"/services/{service}/states/start", {})
    api.post(f"/services/{service}/tasks/start", {"state_id": 1})
    last_write = frozen.now
    frozen.advance(59)
    assert "completed" not in api.get(f"/services/{service}").json
    assert [s["service_id"] for s in api.get("/customers/ac/services/active").json] == [service]
    frozen.advance(2)
    view = api.get(f"/services/{service}?completed_states=true&completed_tasks=true").json
    assert view["completed"] == {"timestamp": format_ms(last_write + 60_000)}
    assert view["completed_states"][0]["completed"]["timestamp"] == format_ms(last_write + 60_000)
    assert len(view["completed_tasks"]) == 1
    assert api.get("/customers/ac/services/active").json == []
    assert [s["service_id"] for s in api.get("/customers/ac/services/completed").json] == [service]
    assert api.get(f"/services/{service}/states/active").json == []
    window = f"time_from={format_ms(last_write)}&filter_events=completed"
    assert stream(api, window) == [service]
    assert_error(api.post(f"/services/{service}/states/start", {}), 409, "ConflictException")
    assert_error(api.post(f"/services/{service}/end", {}), 409, "ConflictException")


def test_every_write_to_the_service_record_moves_the_deadline(api, frozen):
    service = api.start(customer_id="ac", auto_complete_after=60)
    frozen.advance(50)
    api.post(f"/services/{service}/states/start", {})  # a write to the service record
    frozen.advance(50)
    assert "completed" not in api.get(f"/services/{service}").json
    frozen.advance(11)
    assert "completed" in api.get(f"/services/{service}").json


def test_a_write_after_the_moment_records_the_completion_it_missed(api, frozen, items):
    service = api.start(customer_id="ac", auto_complete_after=60)
    completed_at = frozen.now + 60_000
    frozen.advance(3600)
    assert api.put(f"/services/{service}/extensions/note", "late").status == 200
    stored = next(i for i in items() if i["SK"] == "#SERVICE")
    assert stored["completed_ms"] == completed_at and "GSI5PK" not in stored
    assert [s["service_id"] for s in api.get("/customers/ac/services/completed").json] == [service]


def test_the_schedule_records_due_completions(api, frozen, items):
    due = api.start(customer_id="ac", auto_complete_after=60)
    not_due = api.start(customer_id="ac", auto_complete_after=3600)
    never = api.start(customer_id="ac")
    frozen.advance(120)
    result = run_maintenance({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert result["auto_completed"] == 1
    stored = {i["service_id"]: i for i in items() if i["SK"] == "#SERVICE"}
    assert stored[due]["completed_ms"] == stored[due]["last_write_ms"] + 60_000
    assert "completed_ms" not in stored[not_due] and "completed_ms" not in stored[never]
    assert stream(api, f"time_from={at(1)}&filter_events=completed") == [due]


def test_auto_complete_after_defaults_from_the_environment(api, frozen, environment):
    environment(AUTO_COMPLETE_AFTER="30")
    service = api.start(customer_id="ac")
    explicit = api.start(customer_id="ac", auto_complete_after=3600)
    frozen.advance(31)
    assert "completed" in api.get(f"/services/{service}").json
    assert "completed" not in api.get(f"/services/{explicit}").json


def test_auto_complete_never_completes_before_the_start(api, frozen):
    sid = api.start(customer_id="neg", timestamp=format_ms(frozen.now + 3600_000), auto_complete_after=1)
    frozen.advance(2)
    service = api.get(f"/services/{sid}").json
    assert service["completed"]["timestamp"] == service["started"]["timestamp"]
    assert service["duration"] == 0
    listed = api.get("/customers/neg/services/completed").json
    assert [s["duration"] for s in listed] == [0]


def test_an_associated_timed_service_auto_completes_in_its_new_customers_lists(api, frozen):
    sid = api.start(contact_key="ck", auto_complete_after=60)
    assert api.post(f"/customers/newc/services/{sid}", {}).status == 204
    assert [s["service_id"] for s in api.get("/customers/newc/services/active").json] == [sid]
    frozen.advance(61)
    assert [s["service_id"] for s in api.get("/customers/newc/services/completed").json] == [sid]
    assert api.get("/customers/newc/services/active").json == []
