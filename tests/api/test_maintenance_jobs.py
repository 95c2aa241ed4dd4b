"""Maintenance jobs (§8) through lambda_handler on moto: work past a request's budget continues as a
job (202, its status at /maintenance/jobs/{id}), through the jobs queue or a background thread, from
worker to worker, resuming from its checkpoint after an interruption (files and S3 multipart uploads)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from lib.rules import jobs as job_rules
from lib.rules.runs import RUNS
from lib.store import files
from lib.store.erasure import PURGE_BATCH
from tests.support import (
    Api,
    Write,
    assert_error,
    at,
    run_maintenance,
)
from tests.support import stored_jobs as upkeep


def _purge_without_budget(api, environment, monkeypatch, services: int) -> tuple[Any, list]:
    """`services` services, then a purge with no time budget (each request or worker does one step):
    the reply, and the jobs it queued (recorded instead of run)."""
    for n in range(services):
        api.start(customer_id=f"c{n}", timestamp=at(1))
    environment(MAINTENANCE_BUDGET_MS="0")
    queued: list = []
    monkeypatch.setattr(job_rules, "enqueue", lambda job, delay_s=0: queued.append(job))
    return api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}), queued


def _export_job_without_budget(api, environment, monkeypatch) -> str:
    """An export of day 1 with no time budget: a 202 whose job nobody runs yet; its id."""
    environment(MAINTENANCE_BUDGET_MS="0")
    monkeypatch.setattr(job_rules, "enqueue", lambda job, delay_s=0: None)
    reply = api.post(f"/maintenance/services/files?time_from={at(1)}&time_to={at(2)}")
    assert reply.status == 202
    return reply.json["job_id"]


def test_small_jobs_answer_200_directly_and_unknown_jobs_are_404(api):
    api.start(customer_id="c", timestamp=at(1))
    assert api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}).status == 200
    assert_error(api.get("/maintenance/jobs/0123456789abcdef01234567"), 404, "NotFoundException")


def test_a_purge_past_its_budget_becomes_a_job_that_finishes(api, environment, monkeypatch):
    reply, queued = _purge_without_budget(api, environment, monkeypatch, 105)
    assert reply.status == 202, reply.text
    job_id = reply.json["job_id"]
    assert reply.headers["Location"] == f"/Prod/genesys/1/cs/maintenance/jobs/{job_id}"
    assert reply.json["status"] == "running" and reply.json["counts"]["purged"] == PURGE_BATCH
    assert [job.job_id for job in queued] == [job_id]
    # The queue consumer: the maintenance function with an SQS event.
    event = {"Records": [{"messageId": "m1", "body": json.dumps({"tenant": "|", "job_id": job_id})}]}
    assert run_maintenance(event) == {"batchItemFailures": []}
    job = api.get(f"/maintenance/jobs/{job_id}").json
    assert job["status"] == "succeeded" and job["result"] == {"purged": 105} and job["counts"]["purged"] == 105
    assert_error(Api({"ContactCenterId": "other"}).get(f"/maintenance/jobs/{job_id}"), 404, "NotFoundException")


def test_a_job_left_to_a_background_thread_finishes(api, environment):
    for n in range(110):
        api.start(customer_id=f"c{n}", timestamp=at(1))
    environment(MAINTENANCE_BUDGET_MS="0")
    job_id = api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}).json["job_id"]
    deadline = time.time() + 60
    while api.get(f"/maintenance/jobs/{job_id}").json["status"] == "running" and time.time() < deadline:
        time.sleep(0.05)
    assert api.get(f"/maintenance/jobs/{job_id}").json["result"] == {"purged": 110}


def test_an_interrupted_export_job_resumes_from_its_checkpoint(api, exports, environment, monkeypatch, frozen):
    ids = [api.start(customer_id=f"c{n}", timestamp=at(1)) for n in range(130)]
    job_id = _export_job_without_budget(api, environment, monkeypatch)
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


# ---------------------------------------------------------------- deployed destinations: the jobs queue, S3


def test_a_job_continues_through_the_jobs_queue(api, environment):
    """JOBS_QUEUE_URL: the request queues the job; the function consumes the message and finishes it."""
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    environment(JOBS_QUEUE_URL=queue, MAINTENANCE_BUDGET_MS="0")
    for n in range(105):
        api.start(customer_id=f"c{n}", timestamp=at(1))
    job_id = api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}).json["job_id"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in messages] == [{"tenant": "|", "job_id": job_id}]
    event = {"Records": [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]}
    assert run_maintenance(event) == {"batchItemFailures": []}
    assert api.get(f"/maintenance/jobs/{job_id}").json["result"] == {"purged": 105}


def test_a_job_handed_from_worker_to_worker_through_the_queue_finishes(api, environment, monkeypatch):
    """Deployed timing (function timeout ~15 s here, worker budget ≈ 0): each queue message runs about
    one step and re-queues the job; the next message's worker must be able to take it (the stopping
    worker releases its lease), round after round, until the job is done."""
    reply, queued = _purge_without_budget(api, environment, monkeypatch, 300)
    assert reply.status == 202 and reply.json["counts"]["purged"] == PURGE_BATCH
    job_id = reply.json["job_id"]
    rounds = 0
    while queued:
        queued.pop()
        rounds += 1
        assert rounds <= 10, "the job does not progress"
        event = {"Records": [{"messageId": f"m{rounds}", "body": json.dumps({"tenant": "|", "job_id": job_id})}]}
        assert run_maintenance(event, timeout_ms=15_050) == {"batchItemFailures": []}
    assert rounds >= 2, "the job went through more than one queue round"
    job = api.get(f"/maintenance/jobs/{job_id}").json
    assert job["status"] == "succeeded", job
    assert job["result"] == {"purged": 300} and job["counts"]["purged"] == 300


def test_a_job_leased_by_another_live_worker_is_retried_later_not_dropped(api, environment, monkeypatch, frozen):
    for n in range(105):
        api.start(customer_id=f"c{n}", timestamp=at(1))
    environment(MAINTENANCE_BUDGET_MS="0")
    monkeypatch.setattr(job_rules, "enqueue", lambda job, delay_s=0: None)
    job_id = api.post("/maintenance/purge", {"limit": at(5), "operation": "purge.service.all"}).json["job_id"]
    assert upkeep.take_job("|", job_id, Write("|", frozen.now), lease_ms=frozen.now + 60_000) is not None
    event = {"Records": [{"messageId": "dup", "body": json.dumps({"tenant": "|", "job_id": job_id})}]}
    assert run_maintenance(event) == {"batchItemFailures": [{"itemIdentifier": "dup"}]}, "the message must come back"
    assert api.get(f"/maintenance/jobs/{job_id}").json["status"] == "running"
    frozen.advance(61)  # the other worker died: its lease ends, the message comes back and is taken
    assert run_maintenance(event) == {"batchItemFailures": []}
    assert api.get(f"/maintenance/jobs/{job_id}").json["result"] == {"purged": 105}
    done = {"Records": [{"messageId": "late", "body": json.dumps({"tenant": "|", "job_id": job_id})}]}
    assert run_maintenance(done) == {"batchItemFailures": []}, "a message of a finished job is dropped"


def test_export_files_stream_to_s3_in_parts_and_resume(api, environment, monkeypatch, frozen):
    """EXPORT_BUCKET: multipart uploads of 8 MiB parts; a job's checkpoint keeps the uploaded parts and
    saves the rest as a tail object, which the next worker reads back."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="exports")
    environment(EXPORT_BUCKET="exports")
    monkeypatch.setattr(files, "PART_BYTES", 5 * 1024 * 1024)  # S3's smallest part: several parts below
    blob = "x" * 60_000
    ids = [api.start(customer_id=f"c{n}", timestamp=at(1), blob=blob) for n in range(110)]
    job_id = _export_job_without_budget(api, environment, monkeypatch)
    job = upkeep.load_job("|", job_id)
    saved = job.checkpoint["files"]["services"]
    tail = f"{files.TAIL_PREFIX}{job.checkpoint['names']['services']}.{job.checkpoint['run']}.1"
    assert saved["tail"] == tail and saved["parts"]
    assert s3.head_object(Bucket="exports", Key=saved["tail"])["ContentLength"] > 0
    while not job_rules.continue_job("|", job_id, 900_000):
        pass
    names = api.get(f"/maintenance/jobs/{job_id}").json["result"]["created"]
    body = s3.get_object(Bucket="exports", Key=names[0])["Body"].read().decode()
    exported = [json.loads(line) for line in body.splitlines()]
    assert sorted(s["service_id"] for s in exported) == sorted(ids) and all(s["blob"] == blob for s in exported)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="exports").get("Contents", [])}
    assert keys == set(names), "no tail objects left behind"
    assert s3.list_multipart_uploads(Bucket="exports").get("Uploads", []) == []
