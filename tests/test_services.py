"""Service lifecycle routes (§4, §5, §7) through lambda_handler on moto."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from lib.store import keys as store
from tests.apiclient import event_for, invoke

ERROR_KEYS = {"message", "exception"}
FIVE_YEARS_MS = 5 * 365 * 86400 * 1000


def iso(ms: int) -> str:
    """Epoch milliseconds as the contract writes timestamps (computed here, not with lib.clock)."""
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def assert_error(reply, status: int, exception: str, mentions: str | None = None) -> None:
    assert reply.status == status, reply.text
    assert set(reply.json) == ERROR_KEYS
    assert reply.json["exception"] == exception
    if mentions:
        assert mentions in reply.json["message"], reply.json["message"]


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


def test_anonymous_service_has_no_customer(api):
    service_id = api.start(contact_key="+3312345")
    view = api.get(f"/services/{service_id}").json
    assert "customer_id" not in view and view["contact_key"] == "+3312345"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"service_type": 1}, "customer_id or contact_key"),
        ({"customer_id": 5}, "customer_id"),
        ({"customer_id": "c", "est_duration": "5"}, "est_duration"),
        ({"customer_id": "c", "est_duration": -1}, "est_duration"),
        ({"customer_id": "c", "session_id": "x" * 33}, "session_id"),
        ({"customer_id": "c", "interaction_id": "x" * 51}, "interaction_id"),
        ({"customer_id": "c", "application_id": "7"}, "application_id"),
        ({"customer_id": "c", "resource_id": True}, "resource_id"),
        ({"customer_id": "c", "service_type": 1.5}, "service_type"),
        ({"customer_id": "c", "timestamp": "yesterday"}, "timestamp"),
        ({"customer_id": "c", "ttl": "10"}, "ttl"),
        ({"customer_id": "c", "expiration_time": "soon"}, "expiration_time"),
        ({"customer_id": "c", "k" * 129: 1}, "attached-data key"),
        ({"customer_id": "c", "started": 1}, "started"),
        ({"customer_id": ""}, "customer_id"),
    ],
)
def test_start_rejects_bad_input_and_stores_nothing(api, items, body, field):
    assert_error(api.post("/services/start", body), 400, "ValidationException", field)
    assert items() == []


@pytest.mark.parametrize("raw, mention", [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"),
                                          ('"text"', "JSON object"), ("", "body")])
def test_body_must_be_a_json_object(api, items, raw, mention):
    assert_error(api.post("/services/start", raw_body=raw), 400, "ValidationException", mention)
    assert items() == []


def test_body_over_128_kib_is_413(api, items):
    reply = api.post("/services/start", {"customer_id": "c", "blob": "x" * (128 * 1024)})
    assert_error(reply, 413, "PayloadTooLargeException", "limit")
    assert items() == []


def test_record_over_the_item_limit_is_413_and_changes_nothing(api):
    service_id = api.start(customer_id="c")
    for i in range(3):
        assert api.post(f"/customers/c/services/{service_id}", {f"k{i}": "x" * 120_000}).status == 204
    reply = api.post(f"/customers/c/services/{service_id}", {"k9": "x" * 120_000})
    assert_error(reply, 413, "PayloadTooLargeException")
    assert "k9" not in api.get(f"/services/{service_id}?extensions=*").json


def test_business_attributes_keep_their_type(api):
    as_text = api.start(customer_id="c", service_type="7")
    as_number = api.start(customer_id="c", service_type=7)
    assert api.get(f"/services/{as_text}").json["service_type"] == "7"
    assert api.get(f"/services/{as_number}").json["service_type"] == 7


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


# ---------------------------------------------------------------- delete


def test_delete_removes_everything(api, items):
    service_id = api.start(customer_id="c", note="x")
    assert api.delete(f"/services/{service_id}").status == 204
    assert_error(api.get(f"/services/{service_id}"), 404, "NotFoundException")
    assert api.get("/customers/c/services").json == []
    assert [i for i in items() if service_id in i["PK"]] == []
    assert_error(api.delete(f"/services/{service_id}"), 404, "NotFoundException")


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


# ---------------------------------------------------------------- lists


def _ids(reply):
    assert reply.status == 200, reply.text
    return [s["service_id"] for s in reply.json]


def test_customer_lists_all_active_completed_in_start_order(api):
    late = api.start(customer_id="c", timestamp="2026-01-03T00:00:00Z")
    early = api.start(customer_id="c", timestamp="2026-01-01T00:00:00Z")
    middle = api.start(customer_id="c", timestamp="2026-01-02T00:00:00Z")
    api.start(customer_id="someone-else")
    api.post(f"/services/{middle}/end", {})
    assert _ids(api.get("/customers/c/services")) == [early, middle, late]
    assert _ids(api.get("/customers/c/services/active")) == [early, late]
    assert _ids(api.get("/customers/c/services/completed")) == [middle]


def test_same_start_time_orders_by_id(api):
    ids = [api.start(customer_id="c", timestamp="2026-01-01T00:00:00Z") for _ in range(4)]
    assert _ids(api.get("/customers/c/services")) == sorted(ids, key=int)


def test_anonymous_lists_exclude_identified_services(api):
    anonymous = api.start(contact_key="k")
    api.start(customer_id="c", contact_key="k")
    assert _ids(api.get("/services/anonymous/k")) == [anonymous]
    assert _ids(api.get("/services/anonymous/k/active")) == [anonymous]
    assert _ids(api.get("/services/anonymous/k/completed")) == []


def test_service_types_and_time_window_filters(api):
    a = api.start(customer_id="c", service_type="sales", timestamp="2026-01-01T00:00:00Z")
    b = api.start(customer_id="c", service_type=7, timestamp="2026-01-02T00:00:00Z")
    c = api.start(customer_id="c", service_type="care", timestamp="2026-01-03T00:00:00Z")
    assert _ids(api.get("/customers/c/services?service_types=sales,7")) == [a, b]
    window = "started_from=2026-01-02T00:00:00Z&started_to=2026-01-03T00:00:00Z"
    assert _ids(api.get(f"/customers/c/services?{window}")) == [b]
    assert _ids(api.get("/customers/c/services?started_from=2026-01-02T00:00:00Z")) == [b, c]
    assert _ids(api.get("/customers/c/services?started_to=2026-01-02T00:00:00Z")) == [a]


def test_paging_follows_link_headers(api):
    ids = [api.start(customer_id="c", timestamp=f"2026-01-01T00:00:0{i}Z") for i in range(5)]
    seen, path = [], "/customers/c/services?limit=2&service_types="
    pages = 0
    while path:
        reply = api.get(path)
        seen += _ids(reply)
        pages += 1
        link = reply.headers.get("Link")
        if link:
            url = re.fullmatch(r'<(.+)>; rel="next"', link).group(1)
            parts = urlsplit(url)
            assert parts.scheme == "" and parts.netloc == "", "Link is a path: nothing of Host is reflected"
            assert parts.path == "/Prod/genesys/1/cs/customers/c/services"
            path = parts.path.removeprefix("/Prod/genesys/1/cs") + "?" + parts.query
        else:
            path = None
    assert seen == ids and pages == 3


def test_tampered_or_foreign_page_token_is_400(api):
    for _ in range(3):
        api.start(customer_id="c")
    link = api.get("/customers/c/services?limit=1").headers["Link"]
    token = re.search(r"page_token=([^&>]+)", link).group(1)
    assert api.get(f"/customers/c/services?limit=1&page_token={token}").status == 200
    assert_error(api.get(f"/customers/c/services?limit=1&page_token={token[:-2]}xx"), 400, "ValidationException",
                 "page_token")
    assert_error(api.get(f"/customers/other/services?page_token={token}"), 400, "ValidationException")
    assert_error(api.get(f"/customers/c/services?page_token={token}", headers={"ContactCenterId": "t2"}), 400,
                 "ValidationException")


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "active_states=maybe",
                                   "started_from=notatime"])
def test_bad_list_parameters_are_400(api, query):
    assert_error(api.get(f"/customers/c/services?{query}"), 400, "ValidationException")


# ---------------------------------------------------------------- expiration


def test_default_expiration_is_five_years(api, frozen):
    service_id = api.start()
    view = api.get(f"/services/{service_id}").json
    from lib.clock import parse_timestamp

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
    from lib.clock import format_ms

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


# ---------------------------------------------------------------- deprecated extension PUT


def test_extension_put_replaces_one_key(api):
    service_id = api.start(customer_id="c", keep=1, change=1)
    reply = api.put(f"/services/{service_id}/extensions/change", [1, {"x": None}])
    assert reply.status == 200 and reply.json == {"change": [1, {"x": None}]}
    view = api.get(f"/services/{service_id}?extensions=*").json
    assert view["keep"] == 1 and view["change"] == [1, {"x": None}]
    assert_error(api.put("/services/42/extensions/change", 1), 404, "NotFoundException")
    assert_error(api.put(f"/services/{service_id}/extensions/bad", raw_body="{oops"), 400, "ValidationException")


# ---------------------------------------------------------------- tenancy


def test_tenants_and_groups_are_isolated(api):
    tenant_a = {"ContactCenterId": "cc-a"}
    group = {"ContactCenterId": "cc-a", "GroupId": "g.1"}
    service_id = api.post("/services/start", {"customer_id": "c"}, headers=tenant_a).json["service_id"]
    assert api.get(f"/services/{service_id}", headers=tenant_a).status == 200
    for other in ({}, {"ContactCenterId": "cc-b"}, group):
        assert_error(api.get(f"/services/{service_id}", headers=other), 404, "NotFoundException")
        assert_error(api.post(f"/services/{service_id}/end", {}, headers=other), 404, "NotFoundException")
        assert_error(api.delete(f"/services/{service_id}", headers=other), 404, "NotFoundException")
        assert_error(api.put(f"/services/{service_id}", {"ttl": 1}, headers=other), 404, "NotFoundException")
        assert_error(api.post(f"/customers/x/services/{service_id}", headers=other), 404, "NotFoundException")
        assert api.get("/customers/c/services", headers=other).json == []
    assert _ids(api.get("/customers/c/services", headers=tenant_a)) == [service_id]


@pytest.mark.parametrize("headers", [{"ContactCenterId": "has space"}, {"GroupId": "x" * 65},
                                     {"ContactCenterId": "a#b"}, {"ContactCenterId": ""}])
def test_bad_tenancy_headers_are_400(api, items, headers):
    reply = api.post("/services/start", {"customer_id": "c"}, headers=headers)
    assert_error(reply, 400, "ValidationException")
    assert items() == []


# ---------------------------------------------------------------- routing and unexpected errors


def test_unknown_route_is_404(api):
    # API Gateway answers unknown routes itself (template.yaml's MISSING_AUTHENTICATION_TOKEN
    # response); a function reached with a path it does not know answers the same way.
    event, handler = event_for("GET", "/services/1")
    event["path"] = "/genesys/1/cs/services/1/nothing-here"
    assert_error(invoke(event, handler), 404, "NotFoundException")


@pytest.mark.parametrize("method, path", [("GET", "/services/start"), ("DELETE", "/services/1/end"),
                                          ("POST", "/services/1"), ("PATCH", "/customers/c/services"),
                                          ("PUT", "/services/anonymous/k/active"), ("GET", "/services/1/extensions/x")])
def test_wrong_method_is_405(api, method, path):
    assert_error(api.request(method, path), 405, "MethodNotAllowedException", method)


def test_unexpected_failure_is_500_with_request_id_only(api, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    from lib.store import table

    monkeypatch.setattr(table, "get", explode)
    reply = api.get("/services/123")
    assert_error(reply, 500, "InternalException", "request id")
    assert "secret" not in reply.text and "Traceback" not in reply.text


# ---------------------------------------------------------------- retries


def test_idempotency_key_replays_the_first_reply(api, items):
    headers = {"Idempotency-Key": "retry-1"}
    first = api.post("/services/start", {"customer_id": "c"}, headers=headers)
    again = api.post("/services/start", {"customer_id": "c"}, headers=headers)
    assert first.status == again.status == 201
    assert first.json == again.json and first.headers["Location"] == again.headers["Location"]
    assert len(api.get("/customers/c/services").json) == 1
    other_body = api.post("/services/start", {"customer_id": "d"}, headers=headers)
    assert_error(other_body, 409, "ConflictException", "Idempotency-Key")
    other_tenant = api.post("/services/start", {"customer_id": "c"}, headers={**headers, "ContactCenterId": "t2"})
    assert other_tenant.status == 201 and other_tenant.json != first.json


def test_failed_request_leaves_no_idempotency_record(api):
    headers = {"Idempotency-Key": "fix-and-retry"}
    assert api.post("/services/start", {"customer_id": "c", "est_duration": "x"}, headers=headers).status == 400
    assert api.post("/services/start", {"customer_id": "c"}, headers=headers).status == 201


@pytest.mark.parametrize("key", ["", "x" * 129, "with space"])
def test_bad_idempotency_key_is_400(api, key):
    assert_error(api.post("/services/start", {"customer_id": "c"}, headers={"Idempotency-Key": key}), 400,
                 "ValidationException", "Idempotency-Key")


def test_tenancy_headers_are_case_insensitive(api):
    service_id = api.post("/services/start", {"customer_id": "c"},
                          headers={"contactcenterid": "lower", "groupid": "g"}).json["service_id"]
    assert api.get(f"/services/{service_id}", headers={"ContactCenterId": "lower", "GroupId": "g"}).status == 200
    assert_error(api.get(f"/services/{service_id}"), 404, "NotFoundException")


# ---------------------------------------------------------------- found by fuzzing the local server


@pytest.mark.parametrize("body, field", [
    ({"customer_id": "c", "ttl": 10**12}, "ttl"),
    ({"customer_id": "c", "expiration_time": "9999-12-31T23:00:00-05:00"}, "expiration_time"),
    ({"customer_id": "c", "timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp"),
    ({"customer_id": "c", "service_type": 2**70}, "service_type"),
    ({"customer_id": "c", "est_duration": 2**64}, "est_duration"),
    ({"customer_id": "c", "application_id": -(2**64)}, "application_id"),
])
def test_out_of_range_values_are_400(api, items, body, field):
    assert_error(api.post("/services/start", body), 400, "ValidationException", field)
    assert items() == []


def test_body_that_is_not_utf8_is_400(api):
    import base64

    event, handler = event_for("POST", "/services/start")
    event.update(body=base64.b64encode(b"{\x88\xff}").decode(), isBase64Encoded=True)
    assert_error(invoke(event, handler), 400, "ValidationException", "UTF-8")
    event.update(body=base64.b64encode(b'{"customer_id": "b64"}').decode())
    assert invoke(event, handler).status == 201


def test_owner_ids_in_paths_are_bounded(api):
    assert_error(api.get("/customers/" + "c" * 257 + "/services"), 400, "ValidationException")
    assert_error(api.post("/customers/" + "c" * 257 + "/services/123"), 400, "ValidationException")


def test_attached_data_keys_may_hold_any_character(api):
    keys = {"a.b": 1, "nul\u0000inside": 2, "#x": 3, ":v0": 4, "émoji 🎉": 5}
    service_id = api.start(customer_id="keys", **keys)
    assert api.post(f"/customers/keys/services/{service_id}", {"nul\u0000inside": 6}).status == 204
    assert api.post(f"/services/{service_id}/end", {"a.b": 7}).status == 204
    view = api.get(f"/services/{service_id}?extensions=*").json
    assert {k: view[k] for k in keys} == {**keys, "nul\u0000inside": 6, "a.b": 7}


def test_a_colliding_service_id_is_drawn_again(api, monkeypatch):
    from lib.rules import services

    first = api.start()
    drawn = iter([first, first, "4242424242"])
    monkeypatch.setattr(services, "new_service_id", lambda: next(drawn))
    assert api.start() == "4242424242"
    assert api.get(f"/services/{first}").json["customer_id"] == "c-1"
