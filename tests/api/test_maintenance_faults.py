"""Maintenance survives faults (issue 21 point 2; contract §2, §8): a fault at EVERY call (DynamoDB,
S3, SQS) of a multi-step purge and of a multi-step export, in the request and in the job, and then
the job messages delivered as the queue delivers them (deleted on success, given again on failure)
and the schedule run whenever nothing is queued. Each run must end with the fault-free result:

* the request answers an error only when it changed nothing (then the client's retry finishes it),
  otherwise 200, or 202 with a job that ends `succeeded`;
* a purge's count is exact (the matching services, no more, no fewer) and every purged conversation
  is erased whole; a service outside the purge is untouched;
* export files hold exactly the fault-free files' bytes; no tail object or open upload is left.

Faults (raised to the project's code as botocore raises them once its own retries are spent):
throttle (ThrottlingException), internal (InternalServerError, HTTP 500), timeout (nothing applied),
lost (applied, then a read timeout), dies (the worker stops dead at that call: no clean-up at all,
its message comes back when it is visible again, its lease ends by time).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, ReadTimeoutError

from lib import settings
from lib.rules import jobs as job_rules
from lib.store import erasure, files
from lib.store import jobs as stored_jobs
from tests.apiclient import Api

KINDS = ("throttle", "internal", "timeout", "lost", "dies")
DAY1, LIMIT, DAY9 = "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z", "2026-01-09T00:00:00Z"
MATCHING = 12  # purged by every run; steps of 5 (PURGE_BATCH below): three steps, a job in between


class WorkerDied(BaseException):
    """The function stopped dead (timeout, crash): nothing after it runs, not even `except Exception`."""


@dataclass
class Injector:
    """Counts every AWS call the project makes (all services) and fails call `k` with `kind`."""

    k: int | None = None
    kind: str = ""
    count: int = 0
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, k: int | None = None, kind: str = "") -> None:
        self.k, self.kind, self.count, self.calls = k, kind, 0, []


@pytest.fixture
def injector(monkeypatch) -> Injector:
    injector = Injector()
    real = BaseClient._make_api_call

    def call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if getattr(client, "harness", False):  # the test's own clients (the queue's event source, S3 checks)
            return real(client, operation, params)
        with injector.lock:
            n = injector.count
            injector.count += 1
            injector.calls.append(f"{client.meta.service_model.service_name}.{operation}")
        if n != injector.k:
            return real(client, operation, params)
        if injector.kind == "dies":
            raise WorkerDied(f"died at call {n}")
        if injector.kind == "timeout":
            raise ReadTimeoutError(endpoint_url="injected")
        if injector.kind == "lost":
            real(client, operation, params)
            raise ReadTimeoutError(endpoint_url="injected")
        code, status = ("ThrottlingException", 400) if injector.kind == "throttle" else ("InternalServerError", 500)
        raise ClientError({"Error": {"Code": code, "Message": "injected"},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, operation)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)
    return injector


@pytest.fixture
def world(table, monkeypatch, frozen):
    """A jobs queue (moto SQS), an export bucket (moto S3) with small parts, steps of 5 services."""
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    sqs.harness = s3.harness = True  # never faulted, never counted
    queue = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    monkeypatch.setenv("JOBS_QUEUE_URL", queue)
    monkeypatch.setenv("MAINTENANCE_BUDGET_MS", "600000")
    monkeypatch.setattr(erasure, "PURGE_BATCH", 5)
    monkeypatch.setattr(files, "PART_BYTES", 4096)
    import moto.s3.models

    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)
    monkeypatch.setattr(job_rules, "RETRY_DELAY_S", 0)
    settings.settings.cache_clear()
    yield {"sqs": sqs, "s3": s3, "queue": queue, "frozen": frozen, "monkeypatch": monkeypatch}
    settings.settings.cache_clear()


def _budget(world: dict[str, Any], ms: int) -> None:
    world["monkeypatch"].setenv("MAINTENANCE_BUDGET_MS", str(ms))
    settings.settings.cache_clear()


def _worker(event: dict[str, Any]) -> Any:
    from handlers import maintenance as function
    from tests.apiclient import LambdaContext

    return function.lambda_handler(event, LambdaContext("MaintenanceFunction", timeout_ms=900_000))


def settle(world: dict[str, Any], api: Api, job_id: str) -> dict[str, Any]:
    """Deliver the job's messages as the queue would; when none is visible, let time pass and run the
    schedule (which queues a job nothing moves on). Returns the job as it ended."""
    sqs, queue, frozen = world["sqs"], world["queue"], world["frozen"]
    for _ in range(60):
        job = _read_job(api, job_id)
        if job["status"] != "running":
            return job
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages", [])
        if not messages:
            frozen.advance(stored_jobs.STALL_MS / 1000 + 60)  # past any lease and any stall
            try:
                _worker({"source": "aws.events", "detail-type": "Scheduled Event"})
            except WorkerDied:
                pass
            continue
        message = messages[0]
        try:
            failed = _worker({"Records": [{"messageId": message["MessageId"], "body": message["Body"]}]})
        except WorkerDied:
            continue  # the invocation crashed: the message is not deleted and comes back
        if not failed["batchItemFailures"]:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        elif "leased" in json.dumps(failed):
            frozen.advance(1)
    raise AssertionError(f"job {job_id} did not end")


def _read_job(api: Api, job_id: str) -> dict[str, Any]:
    """The job as the client sees it (a read the fault hit is read again, as a client would)."""
    for _ in range(3):
        try:
            reply = api.get(f"/maintenance/jobs/{job_id}")
        except WorkerDied:
            continue  # that function died: the client sees a 502 and reads again
        if reply.status == 200:
            return reply.json
    raise AssertionError(f"GET job {job_id} failed three times")


def _deliver_all(world: dict[str, Any]) -> None:
    """Every visible job message, to the worker (the queue's event source, without faults)."""
    sqs, queue = world["sqs"], world["queue"]
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages", []):
        event = {"Records": [{"messageId": messages[0]["MessageId"], "body": messages[0]["Body"]}]}
        if not _worker(event)["batchItemFailures"]:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
        else:
            world["frozen"].advance(120)


def _drain(world: dict[str, Any]) -> None:
    """Messages left from an earlier run (duplicates of finished jobs) are dropped."""
    sqs, queue = world["sqs"], world["queue"]
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


# ---------------------------------------------------------------- purge


def _seed_purge(api: Api) -> tuple[list[str], str]:
    ids = [api.start(customer_id=f"c{n}", timestamp=DAY1) for n in range(MATCHING)]
    for sid in ids[:3]:
        assert api.post(f"/services/{sid}/states/start", {"state_type": "s"}).status == 201
    keep = api.start(customer_id="late", timestamp=DAY9)  # started after the limit: never purged
    return ids, keep


def _purge_ends_right(world: dict[str, Any], api: Api, items: Callable[[], list[dict[str, Any]]], ids: list[str],
                      keep: str, reply: Any, tenant: str, died: bool = False) -> list[str]:
    """Whatever the request answered, the purge ends with exactly the matching services gone. An error
    answer must have changed nothing, unless the function died (then nothing could answer for it:
    what it committed stays, its job is found by the schedule, and the client's retry does the rest)."""
    problems = []
    body = {"limit": LIMIT, "operation": "purge.service.all"}
    expected = MATCHING
    if reply.status >= 400:
        left = [sid for sid in ids if api.get(f"/services/{sid}").status == 200]
        if left != ids and not died:
            problems.append(f"{reply.status} after deleting {len(ids) - len(left)} services")
        expected = len(left)
        reply = api.post("/maintenance/purge", body)  # the client retries
    if reply.status == 202:
        job = settle(world, api, reply.json["job_id"])
        if job["status"] != "succeeded" or job["result"] != {"purged": expected}:
            problems.append(f"job ended {job}, expected {expected} purged")
    elif reply.status == 200:
        if reply.json != {"purged": expected}:
            problems.append(f"200 {reply.json}, expected {expected} purged")
    else:
        problems.append(f"retry answered {reply.status} {reply.text}")
    if any(api.get(f"/services/{sid}").status != 404 for sid in ids):
        problems.append("a matching service is still there")
    if api.get(f"/services/{keep}").status != 200:
        problems.append("a service outside the purge was deleted")
    # The schedule: finishes interrupted erasures, and runs a dead request's job (to nothing left).
    for _ in range(3):
        world["frozen"].advance(stored_jobs.STALL_MS / 1000 + 60)
        _worker({"source": "aws.events", "detail-type": "Scheduled Event"})
        _deliver_all(world)
    pks = {f"{tenant}|#C#{sid}" for sid in ids}
    if any(item["PK"] in pks for item in items()):
        problems.append("items of a purged conversation were left behind")
    return problems


@pytest.mark.parametrize("where", ["request", "job"])
def test_a_purge_ends_with_the_fault_free_result_whatever_call_fails(world, injector, items, where):
    body = {"limit": LIMIT, "operation": "purge.service.all"}
    # A fault-free run, to count the calls (each run below is in a tenant of its own).
    api = Api({"ContactCenterId": "count"})
    ids, keep = _seed_purge(api)
    if where == "job":
        _budget(world, 0)
    injector.reset()
    reply = api.post("/maintenance/purge", body)
    if where == "job":
        assert reply.status == 202, reply.text
        injector.reset()
        assert settle(world, api, reply.json["job_id"])["result"] == {"purged": MATCHING}
    else:
        assert reply.json == {"purged": MATCHING}, reply.text
    calls = list(injector.calls)
    assert {"dynamodb.TransactWriteItems", "dynamodb.Query"} <= set(calls)
    if where == "job":
        assert "sqs.SendMessage" in calls or "sqs.ReceiveMessage" in calls
    problems = []
    for k in range(len(calls)):
        for kind in KINDS:
            tenant = f"t{k}{kind}"
            api = Api({"ContactCenterId": tenant})
            _drain(world)
            injector.reset()
            ids, keep = _seed_purge(api)
            if where == "job":
                reply = api.post("/maintenance/purge", body)
                assert reply.status == 202, reply.text
                injector.reset(k, kind)
                job = _settle_or_report(world, api, reply.json["job_id"])
                injector.reset()
                if isinstance(job, str):
                    problems.append(f"call {k} ({calls[k]}) {kind}: {job}")
                    continue
                reply = _Answer(202, {"job_id": reply.json["job_id"]})
            else:
                injector.reset(k, kind)
                try:
                    reply = api.post("/maintenance/purge", body)
                except WorkerDied:
                    reply = _Answer(500, {"message": "the request's function died"})
                injector.reset()
            found = _purge_ends_right(world, api, items, ids, keep, reply, tenant, died=kind == "dies")
            problems += [f"call {k} ({calls[k]}) {kind}: {p}" for p in found]
    assert problems == [], "\n".join(problems)


@dataclass
class _Answer:
    status: int
    json: Any
    text: str = ""


def _settle_or_report(world: dict[str, Any], api: Api, job_id: str) -> dict[str, Any] | str:
    try:
        return settle(world, api, job_id)
    except AssertionError as error:
        return str(error)


# ---------------------------------------------------------------- export files


def _export_files(world: dict[str, Any], names: list[str]) -> dict[str, bytes]:
    """The files' bytes by kind (services, states, tasks): names carry the request's time."""
    s3 = world["s3"]
    return {name.rsplit("_", 1)[1]: s3.get_object(Bucket=world["bucket"], Key=name)["Body"].read() for name in names}


def _bucket(world: dict[str, Any], name: str) -> None:
    world["s3"].create_bucket(Bucket=name)
    world["bucket"] = name
    world["monkeypatch"].setenv("EXPORT_BUCKET", name)
    settings.settings.cache_clear()


def _leftovers(world: dict[str, Any], names: list[str], kind: str = "") -> list[str]:
    """What an export left in the bucket besides its files. Two faults leave something no code can
    see: a lost reply to CreateMultipartUpload (an upload whose id never arrived) and a function that
    died (nothing after runs). What they leave is an open upload, which nobody can read and which the
    bucket's lifecycle rule aborts after a day (template.yaml: AbortIncompleteMultipartUpload), or,
    for a dead function, a checkpoint's tail object; never a file under an export's name."""
    s3, bucket = world["s3"], world["bucket"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    found = [f"object {key}" for key in keys - set(names)
             if not (kind == "dies" and key.endswith(".tail"))]
    return found + [f"open upload of {u['Key']}" for u in uploads if kind not in ("lost", "dies")]


@pytest.mark.parametrize("where", ["request", "job"])
def test_an_export_ends_with_the_fault_free_files_whatever_call_fails(world, injector, where):
    api = Api({"ContactCenterId": "exports"})
    for n in range(MATCHING):
        sid = api.start(customer_id=f"c{n}", timestamp=DAY1, blob="x" * 900)
        assert api.post(f"/services/{sid}/states/start", {"state_type": "s"}).status == 201
        assert api.post(f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": 1}).status == 201
    path = f"/maintenance/services/files?time_from={DAY1}&time_to={LIMIT}"
    monkeypatch = world["monkeypatch"]
    monkeypatch.setattr("lib.rules.runs.STEP", 5)  # three steps, as the purge
    if where == "job":
        _budget(world, 0)
    _bucket(world, "baseline")
    injector.reset()
    reply = api.post(path)
    if where == "job":
        job_id = reply.json["job_id"]
        injector.reset()
        job = settle(world, api, job_id)
        names = job["result"]["created"]
    else:
        assert reply.status == 200, reply.text
        names = reply.json["created"]
    calls = list(injector.calls)
    assert {"s3.UploadPart", "s3.CompleteMultipartUpload", "s3.PutObject"} <= set(calls), calls
    expected = _export_files(world, names)
    assert all(expected.values()) and _leftovers(world, names) == []
    problems = []
    for k in range(len(calls)):
        for kind in KINDS:
            _drain(world)
            _bucket(world, f"b{k}-{kind}")
            injector.reset()
            if where == "job":
                reply = api.post(path)
                injector.reset(k, kind)
            else:
                injector.reset(k, kind)
                try:
                    reply = api.post(path)
                except WorkerDied:
                    reply = _Answer(500, {})
            if reply.status >= 400:
                injector.reset()
                if _leftovers(world, [], kind) and kind != "dies":
                    problems.append(f"call {k} ({calls[k]}) {kind}: an error left {_leftovers(world, [], kind)}")
                reply = api.post(path)  # the client retries
            if reply.status == 202:
                job = _settle_or_report(world, api, reply.json["job_id"])
                injector.reset()
                if isinstance(job, str) or job["status"] != "succeeded":
                    problems.append(f"call {k} ({calls[k]}) {kind}: job {job}")
                    continue
                names = job["result"]["created"]
            elif reply.status == 200:
                names = reply.json["created"]
            else:
                problems.append(f"call {k} ({calls[k]}) {kind}: the retry answered {reply.status}")
                continue
            injector.reset()
            if _export_files(world, names) != expected:
                problems.append(f"call {k} ({calls[k]}) {kind}: the files differ")
            if _leftovers(world, names, kind):
                problems.append(f"call {k} ({calls[k]}) {kind}: left {_leftovers(world, names, kind)}")
    assert problems == [], "\n".join(problems)


def test_the_export_bucket_aborts_the_uploads_a_lost_reply_or_a_dead_function_leaves():
    """What the export test accepts from those two faults is cleaned by the bucket itself."""
    from local.template import load

    rules = load()["Resources"]["ExportBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for rule in rules)
