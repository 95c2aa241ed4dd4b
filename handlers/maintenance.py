"""Maintenance function: the §8 routes, the jobs queue that carries big exports and purges past one
request, and the scheduled maintenance (recording auto-completions, finishing interrupted erasures)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from lib.api import resolver as api
from lib.api.entry import handler_for
from lib.api.params import FilesParams, PathText, StreamParams, Tenant
from lib.api.resolver import json_response, list_response, responses
from lib.models import FilesCreated, JobOut, Purged, PurgeRequest
from lib.observability import logger
from lib.rules import jobs, maintenance
from lib.rules.runs import Filters

routes = api.Routes()
router = routes.router


def _remaining() -> int | None:
    context = routes.router.lambda_context
    return context.get_remaining_time_in_millis() if hasattr(context, "get_remaining_time_in_millis") else None


def _answer(outcome: jobs.Outcome):
    headers = None
    if outcome.job_id is not None:
        headers = {"Location": api.public_path(routes.current_event, f"/maintenance/jobs/{outcome.job_id}")}
    return json_response(outcome.status, outcome.body, headers)


@routes.get("/maintenance/services/stream", operation_id="export_stream",
            summary="Services with an event in a time window: ids, or whole conversations",
            responses=responses(200, "Service ids, or whole services with their states, tasks and attached data",
                                list[Any], (400, 413)))
def export_stream(headers: Tenant, params: Annotated[StreamParams, Query()]):
    from lib import clock

    filters = Filters.parse(params.time_from, params.time_to, params.filter_events,
                                        params.export_content, params.filter_state, clock.now_ms(),
                                        service_types=params.service_types, started_from=params.started_from,
                                        started_to=params.started_to)
    views, token = maintenance.stream(headers.key, filters, params.limit, params.page_token)
    return list_response(routes, views, token)


@routes.post("/maintenance/services/files", operation_id="export_files",
             summary="Write export files (services, states, tasks) to the export destination",
             responses={**responses(200, "The files written", FilesCreated, (400,)),
                        202: {"description": "Continues as a job; Location names it",
                              "content": {"application/json": {"model": JobOut}}}})
def export_files(headers: Tenant, params: Annotated[FilesParams, Query()]):
    from lib import clock

    filters = Filters.parse(params.time_from, params.time_to, params.filter_events, True,
                                        params.filter_state, clock.now_ms(), files=True,
                                        service_types=params.service_types, started_from=params.started_from,
                                        started_to=params.started_to)
    return _answer(maintenance.export_files(headers.key, filters, params.format, _remaining()))


@routes.post("/maintenance/purge", operation_id="purge", summary="Delete matching services with their states and tasks",
             responses={**responses(200, "How many services were purged", Purged, (400, 413)),
                        202: {"description": "Continues as a job; Location names it",
                              "content": {"application/json": {"model": JobOut}}}})
def purge(headers: Tenant, body: Annotated[PurgeRequest, Body()]):
    return _answer(maintenance.purge(headers.key, body.operation, body.limit, _remaining()))


@routes.get("/maintenance/jobs/<job_id>", operation_id="get_job", summary="Follow a maintenance job",
            responses=responses(200, "The job: status, counts so far, and the result when done", JobOut))
def get_job(headers: Tenant, job_id: PathText):
    return json_response(200, maintenance.get_job(headers.key, job_id))


def background(event: dict[str, Any], context: Any) -> Any:
    """Jobs-queue messages (SQS) and the schedule (EventBridge)."""
    if "Records" in event:
        return _jobs(event, context)
    done = maintenance.scheduled(context.get_remaining_time_in_millis() if context else None)
    logger.info("scheduled maintenance", extra=done)
    return done


def _jobs(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Continue each job named by a queue message; one not finished is queued again (its lease
    released, so the next message's worker takes it). A worker that dies mid-way leaves its message
    to reappear: the job resumes from its last checkpoint once the dead worker's lease ends. A job
    leased by another live worker: the message is reported failed, so the queue gives it again later."""
    failures = []
    for record in event["Records"]:
        try:
            remaining = context.get_remaining_time_in_millis() if context else None
            jobs.continue_job_message(record["body"], remaining)
        except jobs.JobBusy as busy:
            logger.info("job message retried later: %s", busy)
            failures.append({"itemIdentifier": record.get("messageId")})
        except Exception:  # the message comes back; the job resumes from its checkpoint
            logger.exception("job message failed")
            failures.append({"itemIdentifier": record.get("messageId")})
    return {"batchItemFailures": failures}


app = api.make_app(routes)
lambda_handler = handler_for(app, background=background)
