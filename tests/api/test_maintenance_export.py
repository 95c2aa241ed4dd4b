"""Exports (§8) through lambda_handler on moto: the export stream, its window edges, order, filters and
pages; export files in both formats; both scoped to the caller's tenant."""

from __future__ import annotations

import csv
import io
import json
import os
import re

import pytest

from tests.support import (
    Api,
    assert_error,
    at,
    next_path,
    reads,
    stream,
)

# ---------------------------------------------------------------- the stream and its window


def test_stream_pages_follow_start_time_then_end_time_across_shards(api, table):
    started = [api.start(customer_id="o", timestamp=at(2, hour)) for hour in range(23, -1, -1)]  # 24, any shards
    ended_before = [api.start(customer_id="o", timestamp=at(1, hour)) for hour in (5, 1, 9)]
    for hour, service in zip((7, 3, 5), ended_before):  # ended in the window, in this end order
        assert api.post(f"/services/{service}/end", {"timestamp": at(2, hour)}).status == 204
    by_start = sorted(started, key=lambda sid: api.get(f"/services/{sid}").json["started"]["timestamp"])
    by_end = [ended_before[1], ended_before[2], ended_before[0]]
    path, seen, pages = f"/maintenance/services/stream?time_from={at(2)}&time_to={at(3)}&limit=5", [], 0
    with reads(table) as cost:
        while path:
            reply = api.get(path)
            assert reply.status == 200, reply.text
            seen += reply.json
            pages += 1
            path = next_path(reply)
    assert seen == by_start + by_end
    assert pages == 6
    assert cost["items"] <= 2 * len(seen) + 8 * pages, cost["items"]  # about what the pages return


def test_stream_window_edges_by_event(api):
    early = api.start(customer_id="c", timestamp=at(1))
    edge = api.start(customer_id="c", timestamp=at(2))  # exactly at time_from: inside
    late = api.start(customer_id="c", timestamp=at(3))  # exactly at time_to: outside
    api.post(f"/services/{early}/end", {"timestamp": at(2, 12)})
    window = f"time_from={at(2)}&time_to={at(3)}"
    assert stream(api, window + "&filter_events=started") == [edge]
    assert stream(api, window + "&filter_events=completed") == [early]
    assert sorted(stream(api, window)) == sorted([edge, early])  # any: a start or an end in the window
    assert late not in stream(api, f"time_from={at(1)}&time_to={at(3)}")
    assert late in stream(api, f"time_from={at(1)}")  # time_to defaults to now


def test_stream_lists_a_service_once_when_both_events_fall_in_the_window(api):
    service = api.start(customer_id="c", timestamp=at(1))
    api.post(f"/services/{service}/end", {"timestamp": at(1, 5)})
    assert stream(api, f"time_from={at(1)}&time_to={at(2)}") == [service]


def test_stream_content_holds_whole_conversations_and_filters_state(api):
    active = api.start(customer_id="c", timestamp=at(1), note="a")
    done = api.start(customer_id="c", timestamp=at(1, 1))
    api.post(f"/services/{active}/states/start", {"state_type": "s", "k": 1})
    api.post(f"/services/{active}/tasks/start", {"task_type": "t", "state_id": 1, "j": 2})
    api.post(f"/services/{done}/end", {})
    window = f"time_from={at(1)}&time_to={at(2)}&export_content=true"
    whole = {s["service_id"]: s for s in stream(api, window)}
    assert set(whole) == {active, done}
    view = whole[active]
    assert view["note"] == "a" and view["active_states"][0]["k"] == 1 and view["active_tasks"][0]["j"] == 2
    assert [s["service_id"] for s in stream(api, window + "&filter_state=active")] == [active]
    assert [s["service_id"] for s in stream(api, window + "&filter_state=inactive")] == [done]


def test_stream_pages_and_rejects_bad_filters(api):
    ids = {api.start(customer_id="c", timestamp=at(1, h)) for h in range(5)}
    seen, path = [], f"/maintenance/services/stream?time_from={at(1)}&limit=2"
    while path:
        reply = api.get(path)
        seen += reply.json
        assert len(reply.json) <= 2
        path = next_path(reply)
    assert sorted(seen) == sorted(ids)
    assert_error(api.get("/maintenance/services/stream"), 400, "ValidationException", "time_from")
    assert_error(api.get(f"/maintenance/services/stream?time_from={at(2)}&time_to={at(1)}"), 400,
                 "ValidationException", "time_from")
    assert_error(api.get(f"/maintenance/services/stream?time_from={at(1)}&filter_state=active"), 400,
                 "ValidationException", "filter_state")
    assert_error(api.get(f"/maintenance/services/stream?time_from={at(1)}&filter_events=ended"), 400,
                 "ValidationException", "filter_events")
    assert_error(api.get("/maintenance/services/stream?time_from=yesterday"), 400, "ValidationException", "time_from")


@pytest.mark.parametrize("events", ["any", "started", "completed"])
def test_stream_filters_service_types_and_start_window(api, events):
    made = {}
    for day in (1, 2, 3):
        for kind in ("billing", "sales", 7):
            made[(day, kind)] = api.start(customer_id="c", timestamp=at(day), service_type=kind)
    for service in made.values():
        api.post(f"/services/{service}/end", {"timestamp": at(4)})
    window = f"time_from={at(1)}&time_to={at(5)}&filter_events={events}"
    assert sorted(stream(api, window)) == sorted(made.values())
    typed = stream(api, window + "&service_types=billing&service_types=7")
    assert sorted(typed) == sorted(made[(d, k)] for d in (1, 2, 3) for k in ("billing", 7))
    started = stream(api, window + f"&started_from={at(2)}&started_to={at(3)}")
    assert sorted(started) == sorted(made[(2, k)] for k in ("billing", "sales", 7))
    both = stream(api, window + f"&started_from={at(2)}&service_types=sales&export_content=true")
    assert sorted(s["service_id"] for s in both) == sorted([made[(2, "sales")], made[(3, "sales")]])
    # Paged with a filter: every page at most `limit`, a Link while more may exist, each one once.
    seen, path = [], f"/maintenance/services/stream?{window}&service_types=sales,7&limit=2"
    while path:
        reply = api.get(path)
        assert reply.status == 200 and len(reply.json) <= 2
        seen += reply.json
        path = next_path(reply)
    assert sorted(seen) == sorted(made[(d, k)] for d in (1, 2, 3) for k in ("sales", 7))
    assert_error(api.get(f"/maintenance/services/stream?{window}&started_from={at(3)}&started_to={at(2)}"), 400,
                 "ValidationException", "started_from")


def test_maintenance_is_tenant_scoped(api):
    mine = api.start(customer_id="c", timestamp=at(1))
    other = Api({"ContactCenterId": "other"})
    theirs = other.start(customer_id="c", timestamp=at(1))
    assert stream(api, f"time_from={at(1)}") == [mine]
    assert stream(other, f"time_from={at(1)}") == [theirs]
    reply = other.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"})
    assert reply.json == {"purged": 1}
    assert api.get(f"/services/{mine}").status == 200 and other.get(f"/services/{theirs}").status == 404


# ---------------------------------------------------------------- files


def _read(folder, name):
    return (folder / name).read_text()


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_files_names_and_contents(api, exports, frozen, fmt):
    service = api.start(customer_id="c", timestamp=at(1), note={"deep": [1, 2]}, service_type="billing")
    api.post(f"/services/{service}/states/start", {"state_type": "s", "k": "v"})
    api.post(f"/services/{service}/tasks/start", {"task_type": "t", "state_id": 1})
    api.post(f"/services/{service}/tasks/start", {"task_type": "free"})
    api.start(customer_id="c", timestamp=at(20))  # outside the window
    reply = api.post(f"/maintenance/services/files?time_from={at(1)}&time_to={at(2)}&format={fmt}")
    assert reply.status == 200, reply.text
    names = reply.json["created"]
    ext = "csv" if fmt == "csv" else "jsonl"
    assert [n.rsplit("_", 1)[1] for n in names] == [f"services.{ext}", f"states.{ext}", f"tasks.{ext}"]
    assert all(re.fullmatch(rf"export\d{{8}}_\d{{6}}_\d{{3}}_(services|states|tasks)\.{ext}", n) for n in names)
    assert sorted(os.listdir(exports)) == sorted(names)
    texts = [_read(exports, n) for n in names]
    if fmt == "json":
        services, states, tasks = ([json.loads(line) for line in text.splitlines()] for text in texts)
        assert services == [{**api.get(f"/services/{service}?extensions=*").json}]
        assert [s["state_id"] for s in states] == [1] and states[0]["k"] == "v"
        assert [t["task_id"] for t in tasks] == [1, 2]
    else:
        services, states, tasks = (list(csv.DictReader(io.StringIO(text))) for text in texts)
        assert services[0]["service_id"] == service and services[0]["service_type"] == "billing"
        assert json.loads(services[0]["attached_data"]) == {"note": {"deep": [1, 2]}}
        assert services[0]["started"] == at(1)
        assert json.loads(states[0]["attached_data"]) == {"k": "v"} and states[0]["state_type"] == "s"
        assert [t["task_id"] for t in tasks] == ["1", "2"] and tasks[0]["state_id"] == "1"
    assert_error(api.post(f"/maintenance/services/files?time_from={at(1)}&format=xml"), 400, "ValidationException",
                 "format")


def test_export_files_take_the_list_filters(api, exports, frozen):
    billing = api.start(customer_id="c", timestamp=at(1), service_type="billing")
    api.start(customer_id="c", timestamp=at(1), service_type="sales")
    late = api.start(customer_id="c", timestamp=at(1, 5), service_type="billing")
    reply = api.post(f"/maintenance/services/files?time_from={at(1)}&time_to={at(2)}&service_types=billing"
                     f"&started_to={at(1, 3)}")
    assert reply.status == 200, reply.text
    services = [json.loads(line) for line in _read(exports, reply.json["created"][0]).splitlines()]
    assert [s["service_id"] for s in services] == [billing] and late != billing
    assert_error(api.post(f"/maintenance/services/files?time_from={at(1)}&started_from={at(2)}&started_to={at(1)}"),
                 400, "ValidationException", "started_from")


def test_csv_attached_data_keeps_keys_named_like_columns(api, exports):
    service = api.start(customer_id="c", timestamp=at(1), x=1, started_event={"e": 1}, note="n",
                        attached_data="a", completed_event=[2])
    api.post(f"/services/{service}/states/start", {"state_type": "s", "started_event": "se", "k": 3})
    reply = api.post(f"/maintenance/services/files?time_from={at(1)}&time_to={at(2)}&format=csv")
    assert reply.status == 200, reply.text
    services, states, _ = (list(csv.DictReader(io.StringIO(_read(exports, n)))) for n in reply.json["created"])
    assert json.loads(services[0]["attached_data"]) == {"x": 1, "started_event": {"e": 1}, "note": "n",
                                                         "attached_data": "a", "completed_event": [2]}
    assert json.loads(states[0]["attached_data"]) == {"started_event": "se", "k": 3}
    assert services[0]["started"] == at(1) and json.loads(services[0]["started_event"])["timestamp"] == at(1)
