"""The benchmark's parts that call the handlers (on moto): the copies into other tenants, the
authorization slot, the latency chain of real requests, and the framework floor beside the handler."""

from __future__ import annotations

import pytest

from bench import authorization, data, floor, latency
from bench.calls import TRACKER
from bench.harness import TimedApi
from bench.operations import Op
from lib.store.keys import conversation_pk

EMBED = "active_states=true&completed_states=true&active_tasks=true&completed_tasks=true"


def test_clone_tenant_copies_items_under_other_tenants(table):
    api = TimedApi(headers={"ContactCenterId": "src-tenant"})
    data.expect(api.post("/services/start", {"customer_id": "c"}), 201)
    name = "context-services-test"
    source = data.tenant_items(table, name, "src-tenant")
    assert source
    written = data.clone_tenant(table, source, "src-tenant", 3, name, name="copy-{:d}")
    assert written == 3 * len(source)
    keys = {item["PK"]["S"] for item in table.scan(TableName=name)["Items"]}
    assert len(keys) == 4 * len({item["PK"]["S"] for item in source})
    copied = TimedApi(headers={"ContactCenterId": "copy-1"})
    assert copied.get("/customers/c/services").status == 200 and len(copied.get("/customers/c/services").json) == 1
    with pytest.raises(RuntimeError, match="no item"):
        data.clone_tenant(table, [], "src-tenant", 1, name)


def test_authorization_case_counts_the_grant_lookup_of_a_new_caller(table, monkeypatch):
    """With ACCESS_MODE=iam (as deployed), a newly granted caller's first request looks its grant up
    once (kept apart from the operation's calls), the next one finds it cached."""
    from bench import harness
    from lib import settings
    from lib.api import access

    name = "context-services-test"
    open_api = TimedApi()
    open_api.context_fragment = None
    service_id = data.expect(open_api.post("/services/start", {"customer_id": "c"}), 201)["service_id"]
    assert authorization.measure(open_api, f"/services/{service_id}", 1)["status"] == authorization.NOT_AVAILABLE
    monkeypatch.setenv("ACCESS_MODE", "iam")  # grants from the table, as deployed
    monkeypatch.delenv("AUTH", raising=False)
    monkeypatch.delenv("GRANTS_FILE", raising=False)
    monkeypatch.setattr(harness, "TABLE", name)
    settings.settings.cache_clear()
    access.reset()
    _count_calls_of_every_store_client(monkeypatch)
    monkeypatch.setattr(TRACKER, "side", authorization.is_grant_lookup)
    try:
        measured = authorization.measure(TimedApi(), f"/services/{service_id}", 1)
    finally:
        settings.settings.cache_clear()
        access.reset()
    assert measured["status"] == "measured", measured
    assert measured["extra_round_trips_cold"] == 1 and measured["extra_round_trips_warm"] == 0
    assert measured["round_trips_of_the_request"] == 1  # GetItem of the service; the grant lookup apart


def _count_calls_of_every_store_client(monkeypatch) -> None:
    """The benchmark hooks every botocore client at its creation (bench/calls.Tracker.install); here,
    each client the store makes (granting with scripts/grants.py makes a new one)."""
    from lib.store import table as store_table

    make = store_table.new_client

    def hooked():
        client = make()
        TRACKER.attach(client)
        return client

    monkeypatch.setattr(store_table, "new_client", hooked)
    TRACKER.attach(store_table.client())


def _open_api() -> TimedApi:
    api = TimedApi()
    api.context_fragment = None  # the tests' functions are open (no ACCESS_MODE)
    return api


def _conversation(api: TimedApi) -> str:
    service_id = data.expect(api.post("/services/start", {"customer_id": "latency"}), 201)["service_id"]
    for n in range(3):
        state = data.expect(api.post(f"/services/{service_id}/states/start", {"state_type": f"s{n}"}), 201)
        data.expect(api.post(f"/services/{service_id}/tasks/start", {"state_id": state["state_id"]}), 201)
    return service_id


def _recorded(api: TimedApi, request) -> tuple[object, list]:
    TRACKER.start()
    try:
        reply = request()
    finally:
        calls = TRACKER.stop()
    return reply, calls


def test_latency_chain_of_real_requests(table):
    """Replayed with a simulated round trip per call, a request waits at least one round trip per
    call it cannot overlap, never more than its calls, and its wall time holds every round trip of
    its chain; a single read is one round trip."""
    TRACKER.attach(table)
    api = _open_api()
    service_id = _conversation(api)
    for path in (f"/services/{service_id}", f"/services/{service_id}?{EMBED}", f"/services/{service_id}/states",
                 f"/services/{service_id}/tasks/active", "/customers/latency/services?" + EMBED):
        reply, calls = _recorded(api, lambda path=path: api.get(path))
        assert reply.status == 200 and calls, path
        measured = latency.measure(api, lambda path=path: api.get(path), calls, lambda again: again.status == 200,
                                   runs=2, rtt_s=0.02)
        chain = measured["latency_round_trips"]
        assert 1 <= chain <= len(calls), (path, measured)
        assert measured["latency_wall_ms"] >= chain * 20, (path, measured)
        assert len(measured["latency_round_trips_per_run"]) == 2
        if len(calls) == 1:
            assert chain == 1


def test_a_conversation_past_1_mb_is_read_whole_in_one_round_trip(table):
    """Its stored items pass 1 MB (the children's attached data, which the reply leaves out), each
    kind's stay below: the service with its states and the tasks are read by two Queries at once,
    neither following a page, so the caller waits one round trip (two one after the other when a
    single Query read from the service item through the tasks)."""
    TRACKER.attach(table)
    api = _open_api()
    service_id = data.expect(api.post("/services/start", {"customer_id": "big"}), 201)["service_id"]
    blob = "y" * 80_000
    for n in range(1, 9):  # 8 states and 8 tasks of 80 KB each: about 1.3 MB stored
        data.expect(api.post(f"/services/{service_id}/states/start", {"state_type": f"s{n}", "blob": blob}), 201)
        data.expect(api.post(f"/services/{service_id}/tasks/start", {"state_id": n, "blob": blob}), 201)
    whole = table.query(TableName="context-services-test", KeyConditionExpression="PK = :pk",
                        ExpressionAttributeValues={":pk": {"S": conversation_pk("|", service_id)}})
    assert "LastEvaluatedKey" in whole, "the conversation's stored items fit one page: the case is not made"
    path = f"/services/{service_id}?{EMBED}"
    reply, calls = _recorded(api, lambda: api.get(path))
    assert reply.status == 200 and len(reply.json["active_states"]) == 8 and len(reply.json["active_tasks"]) == 8
    assert [call.operation for call in calls] == ["Query", "Query"]
    assert not any("ExclusiveStartKey" in call.params for call in calls)  # no call waited for another's page
    measured = latency.measure(api, lambda: api.get(path), calls, lambda again: again.status == 200, runs=3)
    assert measured["latency_round_trips"] == 1, measured


def test_framework_floor_makes_the_same_calls_and_answers_the_same(table):
    """The floor app (bench/floor_app.py) is given the handler's recorded calls and reply: it makes
    exactly those calls (the replay refuses any other, and any left unused) and answers the same
    status; the three times are measured in one loop."""
    from bench import floor_app
    from bench.harness import raw_client

    for client in (table, floor_app.client, raw_client()):  # the handlers', the floor's, the bare calls'
        TRACKER.attach(client)
    api = _open_api()
    service_id = _conversation(api)
    ops = [Op("get_service", lambda _: api.get(f"/services/{service_id}")),
           Op("start_state", lambda _: api.post(f"/services/{service_id}/states/start", {"state_type": "x"}),
              expect=201),
           Op("list_customer_services_all", lambda _: api.get("/customers/latency/services?limit=100"),
              list_route=True)]
    for op in ops:
        reply, calls = _recorded(api, lambda op=op: op.call(None))
        assert reply.status == op.expect
        measured = floor.measure(api, op, None, calls, reply, runs=15)  # medians: steady under load
        assert measured["calls"] == [call.operation for call in calls]
        assert measured["handler_us"] > measured["bare_us"] > 0 and measured["floor_us"] > measured["bare_us"]
        # The ratio is of the unrounded medians; the times are printed to 0.1 µs: within rounding.
        assert measured["handler_to_floor"] == pytest.approx(measured["handler_us"] / measured["floor_us"], abs=0.0015)
        assert measured["target_handler_to_floor"] == (1.10 if op.list_route else 1.15)
        # The floor app again with the handler's client, in the same loop.
        assert measured["floor_same_client_us"] > 0
        assert measured["handler_to_floor_same_client"] == pytest.approx(
            measured["handler_us"] / measured["floor_same_client_us"], abs=0.0015)
        # The same calls timed in place: part of the same requests' time (medians of one loop, its own:
        # beside the first loop's medians they are noise apart), and the difference said.
        assert 0 < measured["handler_calls_us"] <= measured["calls_loop_handler_us"]
        assert 0 < measured["floor_calls_us"] <= measured["calls_loop_floor_us"]
        assert measured["calls_excess_us"] == pytest.approx(measured["handler_calls_us"] - measured["floor_calls_us"], abs=0.15)
    with pytest.raises(RuntimeError, match=r"GetItem called where the recording has \['Query'\]"):
        with TRACKER.replaying(calls):  # the list's one Query: the floor makes nothing else
            floor_app.client.get_item(TableName="context-services-test", Key={"PK": {"S": "x"}, "SK": {"S": "y"}})

