"""Maintenance (§8) and auto-complete (§7) through lambda_handler on moto: the export stream and its
window edges, export files in both formats, each purge operation and its tenant scoping, jobs that
continue past a request (and resume after an interruption), auto-complete seen on read, in lists and
in exports, and its recording by the scheduled maintenance."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from typing import Any

import pytest

from lib import settings
from lib.rules import jobs as job_rules
from lib.rules.runs import RUNS
from lib.store import jobs as upkeep
from lib.store.concurrency import Write
from lib.store.erasure import PURGE_BATCH
from local.template import ROOT
from tests.apiclient import Api, invoke
from tests.calls import count_calls
from tests.test_services import assert_error

T0 = "2026-01-01T00:00:00.000Z"


def at(day: int, hour: int = 0) -> str:
    return f"2026-01-{day:02d}T{hour:02d}:00:00.000Z"


@pytest.fixture
def exports(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORT_DIR", str(tmp_path))
    settings.settings.cache_clear()
    yield tmp_path
    settings.settings.cache_clear()


def stream(api, query: str, headers=None) -> list:
    reply = api.get(f"/maintenance/services/stream?{query}", headers=headers or {})
    assert reply.status == 200, reply.text
    return reply.json


# ---------------------------------------------------------------- the stream and its window


def test_stream_pages_follow_start_time_then_end_time_across_shards(api, table):
    from tests.test_bounds import _next, reads

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
            path = _next(reply)
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
        link = reply.headers.get("Link")
        path = re.fullmatch(r'<(.+)>; rel="next"', link).group(1).removeprefix("/Prod/genesys/1/cs") if link else None
    assert sorted(seen) == sorted(ids)
    assert_error(api.get("/maintenance/services/stream"), 400, "ValidationException", "time_from")
    assert_error(api.get(f"/maintenance/services/stream?time_from={at(2)}&time_to={at(1)}"), 400,
                 "ValidationException", "time_from")
    assert_error(api.get(f"/maintenance/services/stream?time_from={at(1)}&filter_state=active"), 400,
                 "ValidationException", "filter_state")
    assert_error(api.get(f"/maintenance/services/stream?time_from={at(1)}&filter_events=ended"), 400,
                 "ValidationException", "filter_events")
    assert_error(api.get("/maintenance/services/stream?time_from=yesterday"), 400, "ValidationException", "time_from")


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


# ---------------------------------------------------------------- purge


def _population(api):
    """One service of each kind, all started on day 1, plus one started later."""
    made = {
        "active": api.start(customer_id="c", timestamp=at(1)),
        "active_anonymous": api.start(contact_key="k", timestamp=at(1)),
        "completed": api.start(customer_id="c", timestamp=at(1)),
        "completed_anonymous": api.start(contact_key="k", timestamp=at(1)),
        "later": api.start(customer_id="c", timestamp=at(10)),
    }
    for name in ("completed", "completed_anonymous"):
        api.post(f"/services/{made[name]}/states/start", {})
        api.post(f"/services/{made[name]}/end", {"timestamp": at(2)})
    return made


PURGED = {
    "purge.service.all": {"active", "active_anonymous", "completed", "completed_anonymous"},
    "purge.service.started": {"active", "active_anonymous"},
    "purge.service.started.anonymous": {"active_anonymous"},
    "purge.service.completed": {"completed", "completed_anonymous"},
    "purge.service.completed.anonymous": {"completed_anonymous"},
}


@pytest.mark.parametrize("operation", sorted(PURGED))
def test_each_purge_operation_in_isolation(api, items, operation):
    made = _population(api)
    reply = api.post("/maintenance/purge", {"limit": at(5), "operation": operation})
    assert reply.status == 200 and reply.json == {"purged": len(PURGED[operation])}
    for name, service_id in made.items():
        gone = name in PURGED[operation]
        assert (api.get(f"/services/{service_id}").status == 404) == gone, name
        assert (not any(service_id in i["PK"] for i in items() if "#C#" in i["PK"])) == gone, name
    assert not any("#ERASE#" in i["PK"] for i in items()), "erasure records are removed when done"


def test_purge_rejects_bad_operation_and_limit(api):
    assert_error(api.post("/maintenance/purge", {"limit": at(1), "operation": "purge.everything"}), 400,
                 "ValidationException", "operation")
    assert_error(api.post("/maintenance/purge", {"limit": "soon", "operation": "purge.service.all"}), 400,
                 "ValidationException", "limit")
    assert_error(api.post("/maintenance/purge", {"operation": "purge.service.all"}), 400, "ValidationException",
                 "limit")


def test_purge_writes_at_most_one_request_per_25_items(api, table):
    for n in range(30):
        service = api.start(customer_id=f"c{n}", timestamp=at(1))
        for _ in range(3):
            api.post(f"/services/{service}/states/start", {})
    with count_calls(table) as calls:
        assert api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}).json == {"purged": 30}
    writes = [c for c in calls if c in ("BatchWriteItem", "TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem")]
    assert "Scan" not in calls
    assert len(writes) <= (30 * 4) / 25 + 1, calls


# ---------------------------------------------------------------- jobs


def _purge_without_budget(api, monkeypatch, services: int) -> tuple[Any, list]:
    """`services` services, then a purge with no time budget (each request or worker does one step):
    the reply, and the jobs it queued (recorded instead of run)."""
    for n in range(services):
        api.start(customer_id=f"c{n}", timestamp=at(1))
    monkeypatch.setenv("MAINTENANCE_BUDGET_MS", "0")
    settings.settings.cache_clear()
    queued: list = []
    monkeypatch.setattr(job_rules, "enqueue", lambda job, delay_s=0: queued.append(job))
    return api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}), queued


def test_a_purge_past_its_budget_becomes_a_job_that_finishes(api, monkeypatch):
    reply, queued = _purge_without_budget(api, monkeypatch, 105)
    assert reply.status == 202, reply.text
    job_id = reply.json["job_id"]
    assert reply.headers["Location"] == f"/Prod/genesys/1/cs/maintenance/jobs/{job_id}"
    assert reply.json["status"] == "running" and reply.json["counts"]["purged"] == PURGE_BATCH
    assert [job.job_id for job in queued] == [job_id]
    # The queue consumer: the maintenance function with an SQS event.
    event = {"Records": [{"messageId": "m1", "body": json.dumps({"tenant": "|", "job_id": job_id})}]}
    assert _worker(event) == {"batchItemFailures": []}
    job = api.get(f"/maintenance/jobs/{job_id}").json
    assert job["status"] == "succeeded" and job["result"] == {"purged": 105} and job["counts"]["purged"] == 105
    assert_error(Api({"ContactCenterId": "other"}).get(f"/maintenance/jobs/{job_id}"), 404, "NotFoundException")
    settings.settings.cache_clear()


def _worker(event):
    """The maintenance function invoked as Lambda invokes it for a queue message or the schedule."""
    from handlers import maintenance as function
    from tests.apiclient import LambdaContext

    return function.lambda_handler(event, LambdaContext("MaintenanceFunction", timeout_ms=900_000))


def _export_job_without_budget(api, monkeypatch) -> str:
    """An export of day 1 with no time budget: a 202 whose job nobody runs yet; its id."""
    monkeypatch.setenv("MAINTENANCE_BUDGET_MS", "0")
    settings.settings.cache_clear()
    monkeypatch.setattr(job_rules, "enqueue", lambda job, delay_s=0: None)
    reply = api.post(f"/maintenance/services/files?time_from={at(1)}&time_to={at(2)}")
    assert reply.status == 202
    return reply.json["job_id"]


def test_an_interrupted_export_job_resumes_from_its_checkpoint(api, exports, monkeypatch, frozen):
    ids = [api.start(customer_id=f"c{n}", timestamp=at(1)) for n in range(130)]
    job_id = _export_job_without_budget(api, monkeypatch)
    # A worker takes the job, writes a step's lines, and dies before its next checkpoint.
    w = Write("|", frozen.now)
    job = upkeep.take_job("|", job_id, w, lease_ms=frozen.now + 60_000)
    run = RUNS[job.kind]("|", job.params, job.checkpoint)
    run.step(w, job_id, job.lease_ms)
    run.files["services"].checkpoint()  # its lines reach the file, not the job
    assert upkeep.take_job("|", job_id, Write("|", frozen.now), lease_ms=0) is None, "leased"
    frozen.advance(61)  # the lease ends; the queue gives the message again
    while not job_rules.continue_job("|", job_id, 900_000):
        pass
    job = api.get(f"/maintenance/jobs/{job_id}").json
    assert job["status"] == "succeeded"
    services = [json.loads(line)["service_id"] for line in (exports / job["result"]["created"][0]).read_text().splitlines()]
    assert sorted(services) == sorted(ids), "every service once: the lines of the dead worker were written again"
    settings.settings.cache_clear()


def test_small_jobs_answer_200_directly_and_unknown_jobs_are_404(api):
    api.start(customer_id="c", timestamp=at(1))
    assert api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}).status == 200
    assert_error(api.get("/maintenance/jobs/0123456789abcdef01234567"), 404, "NotFoundException")


def test_a_job_left_to_a_background_thread_finishes(api, monkeypatch):
    for n in range(110):
        api.start(customer_id=f"c{n}", timestamp=at(1))
    monkeypatch.setenv("MAINTENANCE_BUDGET_MS", "0")
    settings.settings.cache_clear()
    job_id = api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}).json["job_id"]
    deadline = time.time() + 60
    while api.get(f"/maintenance/jobs/{job_id}").json["status"] == "running" and time.time() < deadline:
        time.sleep(0.05)
    assert api.get(f"/maintenance/jobs/{job_id}").json["result"] == {"purged": 110}
    settings.settings.cache_clear()


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
    from lib.clock import format_ms

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
    result = _worker({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert result["auto_completed"] == 1
    stored = {i["service_id"]: i for i in items() if i["SK"] == "#SERVICE"}
    assert stored[due]["completed_ms"] == stored[due]["last_write_ms"] + 60_000
    assert "completed_ms" not in stored[not_due] and "completed_ms" not in stored[never]
    assert stream(api, f"time_from={T0}&filter_events=completed") == [due]


def test_auto_complete_after_defaults_from_the_environment(api, frozen, monkeypatch):
    monkeypatch.setenv("AUTO_COMPLETE_AFTER", "30")
    settings.settings.cache_clear()
    service = api.start(customer_id="ac")
    explicit = api.start(customer_id="ac", auto_complete_after=3600)
    frozen.advance(31)
    assert "completed" in api.get(f"/services/{service}").json
    assert "completed" not in api.get(f"/services/{explicit}").json
    settings.settings.cache_clear()


def test_interrupted_erasures_are_finished_by_the_schedule(api, items, frozen, monkeypatch):
    from lib.store import erasure as store

    service = api.start(customer_id="c")
    api.post(f"/services/{service}/states/start", {})

    def fail(erasure):
        raise RuntimeError("the function stopped here")

    finish = store.finish_erasure
    monkeypatch.setattr(store, "finish_erasure", fail)
    assert api.delete(f"/services/{service}").status == 204  # past the commit point: success
    assert api.get(f"/services/{service}").status == 404
    assert any(service in i["PK"] for i in items())  # its state is still stored, invisible
    monkeypatch.setattr(store, "finish_erasure", finish)
    frozen.advance(120)
    assert _worker({"source": "aws.events", "detail-type": "Scheduled Event"})["erasures_finished"] == 1
    assert not any(service in i["PK"] for i in items()) and not any("#ERASE#" in i["PK"] for i in items())


def test_events_route_every_maintenance_operation(table):
    for name in ("export_stream", "export_files", "purge", "get_job"):
        event = json.loads((ROOT / "events" / f"{name}.json").read_text())
        reply = invoke(event, "handlers.maintenance.lambda_handler")
        assert reply.status in (200, 202, 404), reply.text


# ---------------------------------------------------------------- deployed destinations


def test_export_files_stream_to_s3_in_parts_and_resume(api, table, monkeypatch, frozen):
    """EXPORT_BUCKET: multipart uploads of 8 MiB parts; a job's checkpoint keeps the uploaded parts and
    saves the rest as a tail object, which the next worker reads back."""
    import boto3

    from lib.store import files

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="exports")
    monkeypatch.setenv("EXPORT_BUCKET", "exports")
    monkeypatch.setattr(files, "PART_BYTES", 5 * 1024 * 1024)  # S3's smallest part: several parts below
    settings.settings.cache_clear()
    blob = "x" * 60_000
    ids = [api.start(customer_id=f"c{n}", timestamp=at(1), blob=blob) for n in range(110)]
    job_id = _export_job_without_budget(api, monkeypatch)
    job = upkeep.load_job("|", job_id)
    assert job.checkpoint["files"]["services"]["tail"] is True and job.checkpoint["files"]["services"]["parts"]
    while not job_rules.continue_job("|", job_id, 900_000):
        pass
    names = api.get(f"/maintenance/jobs/{job_id}").json["result"]["created"]
    body = s3.get_object(Bucket="exports", Key=names[0])["Body"].read().decode()
    exported = [json.loads(line) for line in body.splitlines()]
    assert sorted(s["service_id"] for s in exported) == sorted(ids) and all(s["blob"] == blob for s in exported)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="exports").get("Contents", [])}
    assert keys == set(names), "no tail objects left behind"
    assert s3.list_multipart_uploads(Bucket="exports").get("Uploads", []) == []
    settings.settings.cache_clear()


def test_a_job_continues_through_the_jobs_queue(api, table, monkeypatch):
    """JOBS_QUEUE_URL: the request queues the job; the function consumes the message and finishes it."""
    import boto3

    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    monkeypatch.setenv("JOBS_QUEUE_URL", queue)
    monkeypatch.setenv("MAINTENANCE_BUDGET_MS", "0")
    settings.settings.cache_clear()
    for n in range(105):
        api.start(customer_id=f"c{n}", timestamp=at(1))
    job_id = api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}).json["job_id"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in messages] == [{"tenant": "|", "job_id": job_id}]
    event = {"Records": [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]}
    assert _worker(event) == {"batchItemFailures": []}
    assert api.get(f"/maintenance/jobs/{job_id}").json["result"] == {"purged": 105}
    settings.settings.cache_clear()


# ---------------------------------------------------------------- review defects (issue 10)


def test_a_job_handed_from_worker_to_worker_through_the_queue_finishes(api, monkeypatch):
    """Deployed timing (function timeout ~15 s here, worker budget ≈ 0): each queue message runs about
    one step and re-queues the job; the next message's worker must be able to take it (the stopping
    worker releases its lease), round after round, until the job is done."""
    reply, queued = _purge_without_budget(api, monkeypatch, 300)
    assert reply.status == 202 and reply.json["counts"]["purged"] == PURGE_BATCH
    job_id = reply.json["job_id"]
    from handlers import maintenance as function
    from tests.apiclient import LambdaContext

    rounds = 0
    while queued:
        queued.pop()
        rounds += 1
        assert rounds <= 10, "the job does not progress"
        event = {"Records": [{"messageId": f"m{rounds}", "body": json.dumps({"tenant": "|", "job_id": job_id})}]}
        assert function.lambda_handler(event, LambdaContext("MaintenanceFunction", timeout_ms=15_050)) == \
            {"batchItemFailures": []}
    assert rounds >= 2, "the job went through more than one queue round"
    job = api.get(f"/maintenance/jobs/{job_id}").json
    assert job["status"] == "succeeded", job
    assert job["result"] == {"purged": 300} and job["counts"]["purged"] == 300
    settings.settings.cache_clear()


def test_a_job_leased_by_another_live_worker_is_retried_later_not_dropped(api, monkeypatch, frozen):
    for n in range(105):
        api.start(customer_id=f"c{n}", timestamp=at(1))
    monkeypatch.setenv("MAINTENANCE_BUDGET_MS", "0")
    settings.settings.cache_clear()
    monkeypatch.setattr(job_rules, "enqueue", lambda job, delay_s=0: None)
    job_id = api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}).json["job_id"]
    assert upkeep.take_job("|", job_id, Write("|", frozen.now), lease_ms=frozen.now + 60_000) is not None
    event = {"Records": [{"messageId": "dup", "body": json.dumps({"tenant": "|", "job_id": job_id})}]}
    assert _worker(event) == {"batchItemFailures": [{"itemIdentifier": "dup"}]}, "the message must come back"
    assert api.get(f"/maintenance/jobs/{job_id}").json["status"] == "running"
    frozen.advance(61)  # the other worker died: its lease ends, the message comes back and is taken
    assert _worker(event) == {"batchItemFailures": []}
    assert api.get(f"/maintenance/jobs/{job_id}").json["result"] == {"purged": 105}
    done = {"Records": [{"messageId": "late", "body": json.dumps({"tenant": "|", "job_id": job_id})}]}
    assert _worker(done) == {"batchItemFailures": []}, "a message of a finished job is dropped"
    settings.settings.cache_clear()


def test_purge_succeeds_when_the_erasure_after_the_commit_fails(api, items, frozen, monkeypatch):
    from botocore.exceptions import ClientError

    from lib.store import table as raw

    made = [api.start(customer_id=f"c{n}", timestamp=at(1)) for n in range(3)]
    for service in made:
        api.post(f"/services/{service}/states/start", {})
    real, failures = raw.delete_keys, []

    def flaky(keys):
        if not failures:
            failures.append(len(keys))
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "BatchWriteItem")
        return real(keys)

    monkeypatch.setattr(raw, "delete_keys", flaky)
    reply = api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"})
    assert failures, "the erasure was attempted and failed"
    assert reply.status == 200 and reply.json == {"purged": 3}, reply.text
    assert all(api.get(f"/services/{s}").status == 404 for s in made)
    assert any("#ERASE#" in i["PK"] for i in items()), "the erasure record is left for maintenance"
    frozen.advance(120)
    assert _worker({"source": "aws.events", "detail-type": "Scheduled Event"})["erasures_finished"] == 1
    assert not any(s in i["PK"] for s in made for i in items()) and not any("#ERASE#" in i["PK"] for i in items())


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
        link = reply.headers.get("Link")
        path = re.fullmatch(r'<(.+)>; rel="next"', link).group(1).removeprefix("/Prod/genesys/1/cs") if link else None
    assert sorted(seen) == sorted(made[(d, k)] for d in (1, 2, 3) for k in ("sales", 7))
    assert_error(api.get(f"/maintenance/services/stream?{window}&started_from={at(3)}&started_to={at(2)}"), 400,
                 "ValidationException", "started_from")
