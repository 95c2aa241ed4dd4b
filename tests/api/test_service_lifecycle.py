"""A service's life through lambda_handler on moto (§4; §1 attached data, ids, end events): start and
read in the contract's shape, end, delete, association with a customer, attached data, service ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.support import (
    assert_error,
    element_ids,
    erase_deleted,
)

FIVE_YEARS_MS = 5 * 365 * 86400 * 1000


def iso(ms: int) -> str:
    """Epoch milliseconds as the contract writes timestamps (computed here, not with lib.clock)."""
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


# ---------------------------------------------------------------- start and get


def test_start_returns_id_and_location(api):
    reply = api.post("/services/start", {"customer_id": "c-1", "service_type": "billing"})
    assert reply.status == 201
    service_id = reply.json["service_id"]
    assert isinstance(service_id, str) and service_id.isdigit() and 0 < int(service_id) < 2**63
    # The test events come through the "Prod" stage (requestContext.path): Location keeps that prefix.
    assert reply.headers["Location"] == f"/Prod/genesys/1/cs/services/{service_id}"


def test_get_returns_the_contract_shape(api, frozen):
    body = {
        "customer_id": "c-1", "contact_key": "ck", "service_type": 42, "est_duration": 300,
        "session_id": "s" * 32, "interaction_id": 12345, "application_type": "IVR", "application_id": 7,
        "resource_type": 3, "resource_id": 9, "media_type": "voice", "timestamp": "2026-11-27T22:07:00+01:00",
    }
    service_id = api.start(**body)
    reply = api.get(f"/services/{service_id}")
    assert reply.status == 200
    assert reply.json == {
        "service_id": service_id, "customer_id": "c-1", "contact_key": "ck", "service_type": 42, "est_duration": 300,
        "started": {"timestamp": "2026-11-27T21:07:00.000Z", "session_id": "s" * 32, "interaction_id": "12345",
                    "application_type": "IVR", "application_id": 7, "resource_type": 3, "resource_id": 9,
                    "media_type": "voice"},
        # Default expiration (§7): 5 years after the last write, made at the frozen clock's time.
        "expiration_time": iso(frozen.now + FIVE_YEARS_MS),
    }


def test_timestamp_defaults_to_now_and_ids_grow_with_time(api, frozen):
    first = api.start()
    first_time = frozen.now
    frozen.advance(1)
    second = api.start()
    assert int(second) > int(first)
    started = api.get(f"/services/{first}").json["started"]["timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", started)
    # The server's clock, not some other time: the frozen one, at each start.
    assert started == iso(first_time)
    assert api.get(f"/services/{second}").json["started"]["timestamp"] == iso(first_time + 1000)


def test_attached_data_only_on_request(api):
    service_id = api.start(customer_id="c", account={"id": 7, "tier": "gold"}, note="hello", score=1.5)
    plain = api.get(f"/services/{service_id}").json
    assert "account" not in plain and "note" not in plain
    some = api.get(f"/services/{service_id}?extensions=note,score,missing").json
    assert some["note"] == "hello" and some["score"] == 1.5 and "account" not in some and "missing" not in some
    every = api.get(f"/services/{service_id}?extensions=*").json
    assert every["account"] == {"id": 7, "tier": "gold"}


def test_later_events_replace_only_the_keys_they_send(api):
    service_id = api.start(customer_id="c", a=1, b=2)
    assert api.post(f"/services/{service_id}/end", {"b": 3, "c": 4}).status == 204
    view = api.get(f"/services/{service_id}?extensions=*").json
    assert (view["a"], view["b"], view["c"]) == (1, 3, 4)


def test_attached_data_keys_may_hold_any_character(api):
    keys = {"a.b": 1, "nul\u0000inside": 2, "#x": 3, ":v0": 4, "émoji 🎉": 5}
    service_id = api.start(customer_id="keys", **keys)
    assert api.post(f"/customers/keys/services/{service_id}", {"nul\u0000inside": 6}).status == 204
    assert api.post(f"/services/{service_id}/end", {"a.b": 7}).status == 204
    view = api.get(f"/services/{service_id}?extensions=*").json
    assert {k: view[k] for k in keys} == {**keys, "nul\u0000inside": 6, "a.b": 7}


def test_anonymous_service_has_no_customer(api):
    service_id = api.start(contact_key="+3312345")
    view = api.get(f"/services/{service_id}").json
    assert "customer_id" not in view and view["contact_key"] == "+3312345"


def test_business_attributes_keep_their_type(api):
    as_text = api.start(customer_id="c", service_type="7")
    as_number = api.start(customer_id="c", service_type=7)
    assert api.get(f"/services/{as_text}").json["service_type"] == "7"
    assert api.get(f"/services/{as_number}").json["service_type"] == 7


# ---------------------------------------------------------------- ids


def test_ids_in_one_tenant_stay_unique_when_made_in_the_same_millisecond(api, frozen):
    ids = [api.start() for _ in range(40)]
    assert len(set(ids)) == 40


def test_a_colliding_service_id_is_drawn_again(api, monkeypatch):
    from lib.rules import services

    first = api.start()
    drawn = iter([first, first, "4242424242"])
    monkeypatch.setattr(services, "new_service_id", lambda: next(drawn))
    assert api.start() == "4242424242"
    assert api.get(f"/services/{first}").json["customer_id"] == "c-1"


# ---------------------------------------------------------------- end


def test_end_completes_with_duration_and_disposition(api, frozen):
    service_id = api.start(customer_id="c", timestamp="2026-11-27T10:00:00.000Z")
    reply = api.post(f"/services/{service_id}/end", {"timestamp": "2026-11-27T10:00:01.500Z", "disposition": 3,
                                                     "disposition_desc": "resolved", "media_type": "chat"})
    assert reply.status == 204 and reply.text == ""
    view = api.get(f"/services/{service_id}").json
    assert view["completed"] == {"timestamp": "2026-11-27T10:00:01.500Z", "media_type": "chat"}
    assert view["duration"] == 1500 and view["disposition"] == 3 and view["disposition_desc"] == "resolved"


def test_end_without_body_uses_now(api, frozen):
    service_id = api.start()
    frozen.advance(2.5)
    assert api.post(f"/services/{service_id}/end").status == 204
    view = api.get(f"/services/{service_id}").json
    assert view["completed"]["timestamp"] == iso(frozen.now)
    assert view["duration"] == 2500


def test_end_twice_is_409(api):
    service_id = api.start()
    assert api.post(f"/services/{service_id}/end", {}).status == 204
    assert_error(api.post(f"/services/{service_id}/end", {}), 409, "ConflictException", "already completed")


def test_end_unknown_service_is_404(api):
    assert_error(api.post("/services/123456/end", {}), 404, "NotFoundException")
    assert_error(api.post("/services/not-a-number/end", {}), 404, "NotFoundException")


def test_end_before_start_is_400(api):
    service_id = api.start(customer_id="c", timestamp="2026-11-27T10:00:00Z")
    assert_error(api.post(f"/services/{service_id}/end", {"timestamp": "2026-11-27T09:00:00Z"}), 400,
                 "ValidationException", "timestamp")
    assert "completed" not in api.get(f"/services/{service_id}").json


def test_end_with_bad_field_changes_nothing(api):
    service_id = api.start()
    assert_error(api.post(f"/services/{service_id}/end", {"disposition_desc": "x" * 65}), 400,
                 "ValidationException", "disposition_desc")
    assert "completed" not in api.get(f"/services/{service_id}").json


def test_complete_service_documentation_sequence(api):
    """https://docs.genesys.com/Documentation/CS/latest/API/StartService and .../CompleteService: start
    with attached data, complete with end-event fields and new attached data that replaces the old."""
    sid = api.start(customer_id="doc-cust", service_type=110, session_id="s1", interaction_id="i1",
                    application_type=1, application_id=2, resource_type=3, resource_id=4, media_type="voice",
                    Offer={"name": "first"})
    reply = api.post(f"/services/{sid}/end", {"session_id": "s2", "interaction_id": "i2", "disposition": 5,
                                              "disposition_desc": "done", "Offer": {"name": "second"}})
    assert reply.status == 204
    view = api.get(f"/services/{sid}?extensions=Offer").json
    assert view["Offer"] == {"name": "second"} and view["disposition"] == 5 and view["disposition_desc"] == "done"
    assert view["started"]["session_id"] == "s1" and view["completed"]["session_id"] == "s2"


# ---------------------------------------------------------------- end events that repeat the start's fields (§1, as clients of the original send them)


def test_service_end_repeating_service_type_and_customer_id_is_accepted_and_ignored(api):
    """Genesys' functional tests end a service with the service_type and customer_id it started with."""
    sid = api.start(customer_id="cust-7", service_type=110, note="n")
    before = api.get(f"/services/{sid}?extensions=*").json
    reply = api.post(f"/services/{sid}/end", {"service_type": 110, "customer_id": "cust-7", "disposition": 1,
                                              "timestamp": "2030-01-01T00:00:00Z"})
    assert reply.status == 204, reply.text
    after = api.get(f"/services/{sid}?extensions=*").json
    assert after["completed"] == {"timestamp": "2030-01-01T00:00:00.000Z"}
    assert after["service_type"] == 110 and after["customer_id"] == "cust-7" and after["note"] == "n"
    # Nothing was stored as attached data: the view differs from the start only by the end.
    assert set(after) - set(before) == {"completed", "duration", "disposition"}
    assert element_ids(api.get("/customers/cust-7/services/completed"), "service_id") == [sid]


def test_anonymous_service_end_repeating_contact_key_is_accepted_and_ignored(api):
    sid = api.start(contact_key="ani-555", service_type="ivr")
    reply = api.post(f"/services/{sid}/end", {"service_type": "ivr", "contact_key": "ani-555"})
    assert reply.status == 204, reply.text
    view = api.get(f"/services/{sid}?extensions=*").json
    assert view["contact_key"] == "ani-555" and "customer_id" not in view and "completed" in view
    assert set(view) <= {"service_id", "service_type", "contact_key", "started", "completed", "duration",
                         "expiration_time"}
    assert element_ids(api.get("/services/anonymous/ani-555/completed"), "service_id") == [sid]


def test_repeated_start_fields_with_other_values_never_change_the_service(api):
    sid = api.start(customer_id="cust-1", service_type="a")
    reply = api.post(f"/services/{sid}/end", {"service_type": "b", "customer_id": "cust-2"})
    assert reply.status == 204, reply.text  # §1: repeated start fields are accepted and ignored, whatever their value
    view = api.get(f"/services/{sid}?extensions=*").json
    assert view["service_type"] == "a" and view["customer_id"] == "cust-1"
    assert api.get("/customers/cust-2/services").json == []


# ---------------------------------------------------------------- delete


def test_delete_answers_at_its_commit_point_and_the_schedule_erases_the_rest(api, items, frozen):
    service_id = api.start(customer_id="c", note="x")
    state_id = api.start_state(service_id, state_type="s")
    task_id = api.start_task(service_id, task_type="t", state_id=state_id)
    assert api.delete(f"/services/{service_id}").status == 204
    # Gone for every reader at once, while its states, tasks and erasure record are still stored (§2);
    # its service key holds the erasure's fence naming the erasure (no index keys, no expiration: no
    # read, list, due work or conditional write takes it for a service).
    stored = [i for i in items() if service_id in i["PK"]]
    assert sorted(i["SK"][:2] for i in stored) == ["#S", "S#", "T#"]
    erasures = [i for i in items() if i["SK"] == "#ERASE"]
    assert len(erasures) == 1
    fence = next(i for i in stored if i["SK"] == "#SERVICE")
    assert fence["type"] == "erased" and fence["erasure_id"] == erasures[0]["erasure_id"]
    assert not any(name.startswith("GSI") or name in ("expires_ms", "auto_complete_at", "owner_done_pk")
                   for name in fence)
    assert_error(api.get(f"/services/{service_id}"), 404, "NotFoundException")
    for path in (f"/services/{service_id}/states/{state_id}", f"/services/{service_id}/tasks/{task_id}",
                 f"/services/{service_id}/states", f"/services/{service_id}/states/active",
                 f"/services/{service_id}/tasks", f"/services/{service_id}/tasks/completed"):
        assert_error(api.get(path), 404, "NotFoundException")
    for path in ("/customers/c/services", "/customers/c/services/active", "/customers/c/services/completed"):
        assert api.get(path).json == []
    window = "time_from=2000-01-01T00:00:00Z&time_to=2999-01-01T00:00:00Z"
    assert api.get(f"/maintenance/services/stream?{window}").json == []
    assert api.get(f"/maintenance/services/stream?{window}&export_content=true").json == []
    assert api.post(f"/services/{service_id}/states/{state_id}/end", {}).status == 404
    assert api.post(f"/services/{service_id}/tasks/{task_id}/end", {}).status == 404
    assert_error(api.delete(f"/services/{service_id}"), 404, "NotFoundException")
    # The scheduled maintenance erases the rest, the erasure record last.
    assert erase_deleted(frozen) == 1
    assert [i for i in items() if service_id in i["PK"] or i["SK"] == "#ERASE"] == []


def test_the_schedule_finishes_every_erasure_due_not_only_its_first_batch(api, items, frozen):
    sids = [api.start(customer_id=f"c{n}") for n in range(30)]
    for sid in sids:
        api.start_state(sid, state_type="s")
        assert api.delete(f"/services/{sid}").status == 204
    assert erase_deleted(frozen) == 30
    assert items() == []


# ---------------------------------------------------------------- associate


def test_associate_anonymous_service_with_customer(api):
    service_id = api.start(contact_key="ck-1", service_type="sales")
    assert [s["service_id"] for s in api.get("/services/anonymous/ck-1").json] == [service_id]
    reply = api.post(f"/customers/cust-9/services/{service_id}", {"media_type": "email", "tag": "vip"})
    assert reply.status == 204
    assert api.get("/services/anonymous/ck-1").json == []
    listed = api.get("/customers/cust-9/services/active?extensions=tag").json
    assert [s["service_id"] for s in listed] == [service_id]
    assert listed[0]["customer_id"] == "cust-9" and listed[0]["tag"] == "vip"
    assert listed[0]["started"]["media_type"] == "email"


def test_associate_moves_between_customers_and_keeps_status(api):
    service_id = api.start(customer_id="old")
    api.post(f"/services/{service_id}/end", {})
    assert api.post(f"/customers/new/services/{service_id}").status == 204
    assert api.get("/customers/old/services").json == []
    assert [s["service_id"] for s in api.get("/customers/new/services/completed").json] == [service_id]
    assert api.get("/customers/new/services/active").json == []


def test_associate_unknown_service_is_404(api):
    assert_error(api.post("/customers/c/services/99999"), 404, "NotFoundException")
