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

`make test` faults every call once (the kinds taking turns); `make faults` (FAULTS=all) faults every
call with every kind, also after a fault-free request ("job"); FAULT_AT=<call> runs one case again.
"""

from __future__ import annotations

import os
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
from tests.support import Api

KINDS = ("throttle", "internal", "timeout", "lost", "dies")
DAY1, LIMIT, DAY9 = "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z", "2026-01-09T00:00:00Z"
MATCHING = 6  # purged by every run; steps of 2 (PURGE_BATCH below): three steps, the last two in the job


class WorkerDied(BaseException):
    """The function stopped dead (timeout, crash): nothing after it runs, not even `except Exception`."""


@dataclass
class Injector:
    """Counts every AWS call the project makes (all services) and fails call `k` with `kind`."""

    k: int | None = None
    kind: str = ""
    count: int = 0
    calls: list[str] = field(default_factory=list)
    struck: str = ""  # the call the last fault fell on (call order varies a little between runs)
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
        injector.struck = f"{client.meta.service_model.service_name}.{operation}"
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
    """A jobs queue (moto SQS), an export bucket (moto S3) with small parts, steps of 2 services."""
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    sqs.harness = s3.harness = True  # never faulted, never counted
    queue = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    monkeypatch.setenv("JOBS_QUEUE_URL", queue)
    monkeypatch.setenv("MAINTENANCE_BUDGET_MS", "600000")
    monkeypatch.setattr(erasure, "PURGE_BATCH", 2)
    monkeypatch.setattr(files, "PART_BYTES", 2048)
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
    from tests.support import LambdaContext

    # 15 s left: a worker does about one step, then saves, lets go and queues the job again.
    return function.lambda_handler(event, LambdaContext("MaintenanceFunction", timeout_ms=15_050))


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
        else:
            frozen.advance(60)  # the queue gives it again later (a lease held by a dead worker ends)
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


def _purge_ends_right(world: dict[str, Any], api: Api, ids: list[str], keep: str, reply: Any, tenant: str, died: bool = False) -> list[str]:
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
    if any(_conversation_items(tenant, sid) for sid in ids):
        problems.append("items of a purged conversation were left behind")
    return problems


def _conversation_items(tenant: str, service_id: str) -> list[dict[str, Any]]:
    """Every stored item of one conversation (a Query on its partition; the table holds many runs)."""
    table = boto3.client("dynamodb")
    table.harness = True
    return table.query(TableName=os.environ["TABLE_NAME"], KeyConditionExpression="PK = :pk",
                       ExpressionAttributeValues={":pk": {"S": f"{tenant}|#C#{service_id}"}})["Items"]


def _faults(calls: list[str], part: int) -> list[tuple[int, str]]:
    """The (call, kind) pairs a run faults: of the calls k with k % PARTS == part (the parts of one
    sweep together fault every call). `make test` faults every call once, the kinds taking turns
    (call k gets KINDS[k % 5], so each kind falls on every fifth call and on every step); FAULTS=all
    (`make faults`) faults every call with every kind."""
    if EVERYWHERE:
        pairs = [(k, kind) for k in range(len(calls)) for kind in KINDS]
    else:
        pairs = [(k, KINDS[k % len(KINDS)]) for k in range(len(calls))]
    pairs = [(k, kind) for k, kind in pairs if k % PARTS == part]
    if at := os.environ.get("FAULT_AT"):  # one case again: FAULT_AT=<call> (kinds as above)
        pairs = [(k, kind) for k, kind in pairs if k == int(at)]
    return pairs


WHERES = {
    # the request does every step (a budget of 10 minutes); the fault may fall in any of its calls
    "request": 600_000,
    # the request does one step and hands over (no budget): the fault may fall in its step, the job's
    # record, its queueing, or later in the job
    "handover": 0,
    # the request does one step and hands over, fault-free; the fault falls in the job
    "job": 0,
}
# `make test` runs "handover" (whose faults fall in the request, the handover and the job's own
# calls, counted on from the request) and, for the purge, "request"; FAULTS=all (`make faults`) runs
# every place for both, with every kind.
EVERYWHERE = os.environ.get("FAULTS") == "all"
# Each sweep is cut into parts (a test each, every part repeating the fault-free run that counts the
# calls): the parts of one sweep run on whichever workers are free instead of one sweep holding a
# worker for minutes at the end of the tier.
PARTS = 3


def _scenario(world: dict[str, Any], api: Api, injector: Injector, where: str, k: int | None, kind: str,
              request: Callable[[], Any]) -> tuple[Any, dict[str, Any] | str | None]:
    """One run: the request (with the fault armed unless `where` is "job"), then, for a 202, its job
    settled with the fault armed if it did not strike yet. Returns (the answer, the job as it ended or
    what went wrong, None without a job)."""
    _budget(world, WHERES[where])
    injector.reset(k if where != "job" else None, kind)
    try:
        reply = request()
    except WorkerDied:
        reply = _Answer(500, {"message": "the function died"})
    job: dict[str, Any] | str | None = None
    if reply.status == 202:
        if where == "job":
            injector.reset(k, kind)
        job = _settle_or_report(world, api, reply.json["job_id"])
    injector.reset()
    return reply, job


def _counted(world: dict[str, Any], api: Api, injector: Injector, where: str, request: Callable[[], Any]
             ) -> tuple[list[str], Any, dict[str, Any] | str | None]:
    """A fault-free run: the calls a fault can be injected at, the answer, the job."""
    _budget(world, WHERES[where])
    injector.reset()
    reply = request()
    job = None
    if reply.status == 202:
        if where == "job":
            injector.reset()
        job = settle(world, api, reply.json["job_id"])
    calls = list(injector.calls)
    injector.reset()
    return calls, reply, job


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("where", list(WHERES) if EVERYWHERE else ["request", "handover"])
def test_a_purge_ends_with_the_fault_free_result_whatever_call_fails(world, injector, where, part):
    body = {"limit": LIMIT, "operation": "purge.service.all"}
    api = Api({"ContactCenterId": f"count-{where}"})  # each run below is in a tenant of its own
    _seed_purge(api)
    calls, reply, job = _counted(world, api, injector, where, lambda: api.post("/maintenance/purge", body))
    result = job["result"] if job is not None else reply.json
    assert result == {"purged": MATCHING}, (reply.text, job)
    assert {"dynamodb.TransactWriteItems", "dynamodb.Query"} <= set(calls)
    if where == "handover":
        assert "sqs.SendMessage" in calls, calls  # the queueing is among the calls faulted
    problems = []
    for k, kind in _faults(calls, part):
        tenant = f"{where}{k}{kind}"
        api = Api({"ContactCenterId": tenant})
        _drain(world)
        ids, keep = _seed_purge(api)
        injector.struck = ""
        reply, job = _scenario(world, api, injector, where, k, kind, lambda: api.post("/maintenance/purge", body))
        calls[k] = injector.struck or calls[k]
        if isinstance(job, str):
            problems.append(f"call {k} ({calls[k]}) {kind}: {job}")
            continue
        if job is not None:
            reply = _Answer(202, {"job_id": job["job_id"]})
        found = _purge_ends_right(world, api, ids, keep, reply, tenant, died=kind == "dies")
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


def _leftovers(world: dict[str, Any], names: list[str], kind: str = "", call: str = "") -> list[str]:
    """What an export left in the bucket besides its files. Some faults leave what no code can see or
    remove: a lost reply to CreateMultipartUpload (an upload whose id never arrived) and a function
    that died (nothing after runs) leave an open upload, which nobody can read and which the bucket's
    lifecycle rule aborts after a day; a dead function, or a fault in the clean-up that follows the
    export's end (listing and deleting its checkpoint tails), leaves tails under TAIL_PREFIX, which the
    bucket expires after a day. Never a file under an export's name."""
    s3, bucket = world["s3"], world["bucket"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    tails_may_stay = kind == "dies" or call in ("s3.ListObjectsV2", "s3.DeleteObjects")
    found = [f"object {key}" for key in keys - set(names)
             if not (tails_may_stay and key.startswith(files.TAIL_PREFIX))]
    return found + [f"open upload of {u['Key']}" for u in uploads if kind not in ("lost", "dies")]


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("where", list(WHERES) if EVERYWHERE else ["handover"])
def test_an_export_ends_with_the_fault_free_files_whatever_call_fails(world, injector, where, part):
    api = Api({"ContactCenterId": "exports"})
    for n in range(MATCHING):
        sid = api.start(customer_id=f"c{n}", timestamp=DAY1, blob="x" * 900)
        assert api.post(f"/services/{sid}/states/start", {"state_type": "s"}).status == 201
        assert api.post(f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": 1}).status == 201
    path = f"/maintenance/services/files?time_from={DAY1}&time_to={LIMIT}"
    world["monkeypatch"].setattr("lib.rules.runs.STEP", 2)  # three steps, as the purge
    _bucket(world, "baseline")
    calls, reply, job = _counted(world, api, injector, where, lambda: api.post(path))
    names = job["result"]["created"] if job is not None else reply.json["created"]
    assert {"s3.UploadPart", "s3.CompleteMultipartUpload", "s3.PutObject"} <= set(calls), calls
    if where == "handover":
        assert "sqs.SendMessage" in calls, calls
    expected = _export_files(world, names)
    assert all(expected.values()) and _leftovers(world, names) == []
    problems = []
    for k, kind in _faults(calls, part):
        _drain(world)
        _bucket(world, f"b-{where}-{k}-{kind}")
        injector.struck = ""
        reply, job = _scenario(world, api, injector, where, k, kind, lambda: api.post(path))
        calls[k] = injector.struck or calls[k]
        if reply.status >= 400:
            if _leftovers(world, [], kind, calls[k]) and kind != "dies":
                problems.append(f"call {k} ({calls[k]}) {kind}: an error left {_leftovers(world, [], kind, calls[k])}")
            reply = api.post(path)  # the client retries
            job = _settle_or_report(world, api, reply.json["job_id"]) if reply.status == 202 else None
        if isinstance(job, str) or (job is not None and job["status"] != "succeeded"):
            problems.append(f"call {k} ({calls[k]}) {kind}: job {job}")
            continue
        if job is not None:
            names = job["result"]["created"]
        elif reply.status == 200:
            names = reply.json["created"]
        else:
            problems.append(f"call {k} ({calls[k]}) {kind}: the retry answered {reply.status}")
            continue
        if _export_files(world, names) != expected:
            problems.append(f"call {k} ({calls[k]}) {kind}: the files differ")
        if _leftovers(world, names, kind, calls[k]):
            problems.append(f"call {k} ({calls[k]}) {kind}: left {_leftovers(world, names, kind, calls[k])}")
    assert problems == [], "\n".join(problems)


def test_the_export_bucket_aborts_the_uploads_a_lost_reply_or_a_dead_function_leaves():
    """What the export test accepts from those two faults is cleaned by the bucket itself."""
    from local.template import load

    rules = load()["Resources"]["ExportBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for rule in rules)
    assert any(rule.get("Prefix") == files.TAIL_PREFIX and rule.get("ExpirationInDays") == 1 for rule in rules)
