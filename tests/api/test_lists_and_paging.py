"""Lists and paging (§5) through lambda_handler on moto: owners' lists and child lists, their filters
(CSV or repeated, time windows), embedding and attached-data selection, `Link` pages and page tokens,
and pages that end before 5 MB."""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

import pytest

from tests.support import (
    Reply,
    assert_error,
    element_ids,
    event_for,
    invoke,
    next_path,
)

EVERY_EMBED = "active_states=true&completed_states=true&active_tasks=true&completed_tasks=true"


def get_multi(api, path: str, pairs: list[tuple[str, str]], headers: dict[str, str] | None = None) -> Reply:
    """GET with a query in which a name may repeat, as API Gateway passes it: every value, in order,
    in multiValueQueryStringParameters and the last one in queryStringParameters. Built here so the
    test does not depend on the test client keeping repeated parameters."""
    event, handler = event_for("GET", path, headers={**api.headers, **(headers or {})})
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    event["queryStringParameters"] = {name: values[-1] for name, values in multi.items()} or None
    event["multiValueQueryStringParameters"] = multi or None
    if "rawQueryString" in event:
        event["rawQueryString"] = urlencode(pairs)
    return invoke(event, handler)


# ---------------------------------------------------------------- owners' lists


def test_customer_lists_all_active_completed_in_start_order(api):
    late = api.start(customer_id="c", timestamp="2026-01-03T00:00:00Z")
    early = api.start(customer_id="c", timestamp="2026-01-01T00:00:00Z")
    middle = api.start(customer_id="c", timestamp="2026-01-02T00:00:00Z")
    api.start(customer_id="someone-else")
    api.post(f"/services/{middle}/end", {})
    assert element_ids(api.get("/customers/c/services")) == [early, middle, late]
    assert element_ids(api.get("/customers/c/services/active")) == [early, late]
    assert element_ids(api.get("/customers/c/services/completed")) == [middle]


def test_same_start_time_orders_by_id(api):
    ids = [api.start(customer_id="c", timestamp="2026-01-01T00:00:00Z") for _ in range(4)]
    assert element_ids(api.get("/customers/c/services")) == sorted(ids, key=int)


def test_anonymous_lists_exclude_identified_services(api):
    anonymous = api.start(contact_key="k")
    api.start(customer_id="c", contact_key="k")
    assert element_ids(api.get("/services/anonymous/k")) == [anonymous]
    assert element_ids(api.get("/services/anonymous/k/active")) == [anonymous]
    assert element_ids(api.get("/services/anonymous/k/completed")) == []


def test_service_types_and_time_window_filters(api):
    a = api.start(customer_id="c", service_type="sales", timestamp="2026-01-01T00:00:00Z")
    b = api.start(customer_id="c", service_type=7, timestamp="2026-01-02T00:00:00Z")
    c = api.start(customer_id="c", service_type="care", timestamp="2026-01-03T00:00:00Z")
    assert element_ids(api.get("/customers/c/services?service_types=sales,7")) == [a, b]
    window = "started_from=2026-01-02T00:00:00Z&started_to=2026-01-03T00:00:00Z"
    assert element_ids(api.get(f"/customers/c/services?{window}")) == [b]
    assert element_ids(api.get("/customers/c/services?started_from=2026-01-02T00:00:00Z")) == [b, c]
    assert element_ids(api.get("/customers/c/services?started_to=2026-01-02T00:00:00Z")) == [a]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "active_states=maybe",
                                   "started_from=notatime"])
def test_bad_list_parameters_are_400(api, query):
    assert_error(api.get(f"/customers/c/services?{query}"), 400, "ValidationException")


def test_child_lists_take_a_start_time_window(api):
    service_id = api.start()
    for second in range(4):
        api.start_state(service_id, timestamp=f"2030-01-01T00:00:0{second}Z")
        api.start_task(service_id, timestamp=f"2030-01-01T00:00:0{second}Z")
    window = "started_from=2030-01-01T00:00:01Z&started_to=2030-01-01T00:00:03Z"
    assert [s["state_id"] for s in api.get(f"/services/{service_id}/states?{window}").json] == [2, 3]
    assert [t["task_id"] for t in api.get(f"/services/{service_id}/tasks/active?{window}").json] == [2, 3]
    assert_error(api.get(f"/services/{service_id}/tasks?started_from=soon"), 400, "ValidationException")


def _list_routes(api) -> list[str]:
    sid = api.start(customer_id="win", contact_key="win-k")
    api.start(contact_key="win-k")
    api.start_state(sid)
    api.start_task(sid)
    routes = []
    for base in ("/customers/win/services", "/services/anonymous/win-k", f"/services/{sid}/states",
                 f"/services/{sid}/tasks"):
        routes += [base, base + "/active", base + "/completed"]
    return routes


def test_a_time_window_that_ends_before_it_starts_is_400_on_every_list_route(api):
    """Real DynamoDB rejects `BETWEEN hi AND lo` (a 500 once deployed) while moto answers []."""
    problems = []
    for route in _list_routes(api):
        query = "started_from=2026-02-01T00:00:00Z&started_to=2026-01-01T00:00:00Z"
        reply = api.get(f"{route}?{query}")
        if reply.status != 400 or reply.json.get("exception") != "ValidationException":
            problems.append(f"GET {route}?{query}: {reply.status} {reply.text[:120]}")
        # Offsets count: 02:00+02:00 is 00:00Z, 1 ms before the end: a valid (empty) window.
        fine = api.get(f"{route}?started_from=2026-01-01T02:00:00%2B02:00&started_to=2026-01-01T00:00:00.001Z")
        if fine.status != 200:
            problems.append(f"GET {route} (window of 1 ms): {fine.status} {fine.text[:120]}")
    assert problems == []


# ---------------------------------------------------------------- lists given by repetition (§5, as clients of the original send them)


def test_service_types_given_by_repetition_and_mixed_with_csv(api):
    made = {t: api.start(customer_id="rep", service_type=t, timestamp=f"2026-01-01T00:00:0{i}Z")
            for i, t in enumerate(["A", "B", "C", "D"])}
    both = get_multi(api, "/customers/rep/services", [("service_types", "A"), ("service_types", "B")])
    assert element_ids(both, "service_id") == [made["A"], made["B"]]
    mixed = get_multi(api, "/customers/rep/services/active", [("service_types", "A"), ("service_types", "B,C")])
    assert element_ids(mixed, "service_id") == [made["A"], made["B"], made["C"]]
    anonymous = api.start(contact_key="rep-k", service_type="A")
    api.start(contact_key="rep-k", service_type="Z")
    assert element_ids(get_multi(api, "/services/anonymous/rep-k", [("service_types", "B"), ("service_types", "A")]),
               "service_id") == [anonymous]


def test_state_and_task_types_given_by_repetition(api):
    sid = api.start()
    states = {t: api.start_state(sid, state_type=t) for t in ("x", "y", "z")}
    tasks = {t: api.start_task(sid, task_type=t) for t in ("p", "q", "r")}
    assert element_ids(get_multi(api, f"/services/{sid}/states", [("state_types", "x"), ("state_types", "z")]),
               "state_id") == [states["x"], states["z"]]
    assert element_ids(get_multi(api, f"/services/{sid}/states/active", [("state_types", "y"), ("state_types", "x,z")]),
               "state_id") == sorted(states.values())
    assert element_ids(get_multi(api, f"/services/{sid}/tasks", [("task_types", "p"), ("task_types", "r")]),
               "task_id") == [tasks["p"], tasks["r"]]
    assert element_ids(get_multi(api, f"/services/{sid}/tasks/active", [("task_types", "q,p"), ("task_types", "r")]),
               "task_id") == sorted(tasks.values())


def test_extensions_given_by_repetition(api):
    sid = api.start(customer_id="ext-rep", a=1, b=2, c=3)
    state = api.start_state(sid, s=4, t=5)
    reply = get_multi(api, f"/services/{sid}", [("extensions", "a"), ("extensions", "b,State.s"),
                                                ("active_states", "true")])
    assert reply.status == 200, reply.text
    view = reply.json
    assert (view.get("a"), view.get("b"), "c" in view) == (1, 2, False)
    assert view["active_states"][0]["state_id"] == state
    assert view["active_states"][0].get("s") == 4 and "t" not in view["active_states"][0]
    listed = get_multi(api, "/customers/ext-rep/services", [("extensions", "c"), ("extensions", "a")])
    assert listed.status == 200 and (listed.json[0].get("a"), listed.json[0].get("c"), "b" in listed.json[0]) == \
        (1, 3, False)


# ---------------------------------------------------------------- embedding and attached-data selection


def test_embedding_and_extension_selection(api):
    service_id = api.start(customer_id="emb", s_key="S")
    state = api.start_state(service_id, st_key="ST", other="o")
    api.start_task(service_id, state_id=state, t_key="T")
    api.start_task(service_id, t_key="T2")
    query = "active_states=true&active_tasks=true&extensions=s_key,State.st_key,Task.*"
    view = api.get(f"/services/{service_id}?{query}").json
    assert view["s_key"] == "S"
    assert view["active_states"][0]["st_key"] == "ST" and "other" not in view["active_states"][0]
    assert [t.get("t_key") for t in view["active_tasks"]] == ["T", "T2"]
    assert "completed_states" not in view
    listed = api.get(f"/customers/emb/services?{query}").json[0]
    assert listed["active_states"] == view["active_states"]
    state_view = api.get(f"/services/{service_id}/states/{state}?active_tasks=true&extensions=*").json
    assert state_view["st_key"] == "ST" and state_view["other"] == "o"
    assert [t["task_id"] for t in state_view["active_tasks"]] == [1] and "t_key" not in state_view["active_tasks"][0]


def test_bare_state_and_task_in_extensions_mean_every_key(api):
    sid = api.start(customer_id="bare", own=0)
    state = api.start_state(sid, state_type="s", Feedback={"rating": 7}, other="o")
    api.start_task(sid, task_type="t", state_id=state, Survey={"question1": 7}, more=[1])
    query = f"{EVERY_EMBED}&extensions=State,Task"
    view = api.get(f"/services/{sid}?{query}").json
    assert view["active_states"][0].get("Feedback") == {"rating": 7} and view["active_states"][0].get("other") == "o"
    assert view["active_tasks"][0].get("Survey") == {"question1": 7} and view["active_tasks"][0].get("more") == [1]
    assert "own" not in view, "State / Task select nothing on the service itself"
    listed = api.get(f"/customers/bare/services?{query}").json[0]
    assert listed["active_states"] == view["active_states"] and listed["active_tasks"] == view["active_tasks"]
    only_states = api.get(f"/services/{sid}?{EVERY_EMBED}&extensions=State").json
    assert only_states["active_states"][0].get("Feedback") == {"rating": 7}
    assert "Survey" not in only_states["active_tasks"][0]


# ---------------------------------------------------------------- pages


def test_paging_follows_link_headers(api):
    ids = [api.start(customer_id="c", timestamp=f"2026-01-01T00:00:0{i}Z") for i in range(5)]
    seen, path = [], "/customers/c/services?limit=2&service_types="
    pages = 0
    while path:
        reply = api.get(path)
        seen += element_ids(reply)
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


def test_a_page_token_that_is_not_ascii_is_a_400(api):
    sid = api.start(customer_id="pt")
    for path in ("/customers/pt/services?page_token=abc.%C3%A9", f"/services/{sid}/states?page_token=abc.%C3%A9"):
        answer = api.get(path)
        assert answer.status == 400 and "page_token" in answer.json["message"]


def _three_services(api, headers=None):
    for i in range(3):
        api.post("/services/start", {"customer_id": "linked", "timestamp": f"2026-01-01T00:00:0{i}Z"}, headers=headers)


def test_link_is_a_path_with_the_stage_and_reflects_no_host(api):
    _three_services(api)
    reply = api.get("/customers/linked/services?limit=1&extensions=*",
                    headers={"Host": "evil.example", "X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "evil.example"})
    link = reply.headers["Link"]
    target = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1)
    assert target.startswith("/Prod/genesys/1/cs/customers/linked/services?"), link
    assert not target.startswith("//") and "evil" not in link and "javascript" not in link
    parts = urlsplit(target)
    assert parts.scheme == "" and parts.netloc == ""
    assert "limit=1" in parts.query and "page_token=" in parts.query and "extensions=" in parts.query


def test_link_without_a_stage_in_the_request_path_has_none(api):
    """Called on a custom domain with no base path, requestContext.path carries no stage."""
    _three_services(api)
    event, handler = event_for("GET", "/customers/linked/services?limit=1", headers={"Host": "evil.example"})
    event["requestContext"]["path"] = event["path"]
    reply = invoke(event, handler)
    target = re.fullmatch(r'<([^>]+)>; rel="next"', reply.headers["Link"]).group(1)
    assert target.startswith("/genesys/1/cs/customers/linked/services?"), target
    following = api.get(next_path(reply))
    assert following.status == 200 and len(following.json) == 1


# ---------------------------------------------------------------- answers over 5 MB (§1 Size)


LIMIT = 5_000_000


def test_a_customer_list_page_ends_before_5_mb_with_a_link(api):
    """56 services with 120 KB of attached data each: one 6.7 MB page without Link."""
    ids = [api.start(customer_id="big", timestamp=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z", blob="x" * 120_000)
           for i in range(56)]
    seen, path, pages = [], "/customers/big/services?extensions=*&limit=100", 0
    while path:
        reply = api.get(path)
        assert reply.status == 200, reply.text[:200]
        assert len(reply.text.encode()) <= LIMIT
        assert all(s["blob"] == "x" * 120_000 for s in reply.json)
        seen += [s["service_id"] for s in reply.json]
        pages += 1
        path = next_path(reply)
        assert pages < 10
    assert pages >= 2 and seen == ids


def test_a_single_read_over_5_mb_is_413_naming_the_list_route(api):
    sid = api.start(customer_id="big")
    for _ in range(43):
        assert api.post(f"/services/{sid}/states/start", {"blob": "y" * 120_000}).status == 201
    reply = api.get(f"/services/{sid}?active_states=true&extensions=State.*")
    assert_error(reply, 413, "PayloadTooLargeException")
    assert "/states" in reply.json["message"], reply.json
    # The list route pages it, each page under the limit.
    seen, path = [], f"/services/{sid}/states/active?extensions=*&limit=1000"
    while path:
        page = api.get(path)
        assert page.status == 200 and len(page.text.encode()) <= LIMIT
        seen += [s["state_id"] for s in page.json]
        path = next_path(page)
    assert seen == list(range(1, 44))
    # Without the attached data the same read is small and fine.
    assert len(api.get(f"/services/{sid}?active_states=true").json["active_states"]) == 43
