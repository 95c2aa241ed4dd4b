"""The maintenance jobs' queue (deployed: SQS; the local run: its emulated SQS): a message names a
job, and the maintenance function's queue event source continues it."""

from __future__ import annotations

import json

from lib.settings import settings


def available() -> bool:
    """Whether jobs continue through a queue here (else the caller runs them in this process)."""
    return bool(settings().jobs_queue_url)


def send_job(tenant: str, job_id: str, delay_s: int = 0) -> None:
    """Queue a job's next step (after `delay_s`, at most 900)."""
    from lib.store.table import service_client  # built on first use: only the maintenance function sends

    service_client("sqs").send_message(QueueUrl=settings().jobs_queue_url,
                                       MessageBody=json.dumps({"tenant": tenant, "job_id": job_id}),
                                       DelaySeconds=min(delay_s, 900))


def job_of(message_body: str) -> tuple[str, str]:
    """(tenant, job id) named by a queue message."""
    message = json.loads(message_body)
    return message["tenant"], message["job_id"]
