"""Tasks function: the task routes of §6."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lib.api import resolver as api
from lib.api.entry import handler_for
from lib.api.params import Creating, Select, ServiceId, TaskListParams, Tenant
from lib.api.resolver import json_response, list_response, responses
from lib.models import TaskCreated, TaskEnd, TaskOut, TaskStart
from lib.rules import children

router = APIGatewayRouter()

TaskId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Task id")]


# Registered before the `/{id}` routes: Powertools tries parameterised routes in order, and
# `/states/active` must not be read as a state whose id is "active".
def _list_route(suffix: str, status: str | None, label: str) -> None:
    def list_tasks(headers: Tenant, service_id: ServiceId, params: Annotated[TaskListParams, Query()]):
        query = children.ChildQuery(status=status, types=params.task_types, state_id=params.state_id,
                                    limit=params.limit, page_token=params.page_token,
                                    started_from=params.started_from, started_to=params.started_to)
        views, token = children.list_children(headers.key, service_id, children.TASK, query, params.selection())
        return list_response(router, views, token)

    list_tasks.__name__ = f"list_tasks_{label}"
    router.get(f"/services/<service_id>/tasks{suffix}", operation_id=list_tasks.__name__,
               summary=f"List a service's tasks ({label})",
               responses=responses(200, "Tasks by id", list[TaskOut]))(list_tasks)


for _status, _suffix, _label in api.LIST_STATUSES:
    _list_route(_suffix, _status, _label)


@router.post("/services/<service_id>/tasks/start", operation_id="start_task", summary="Start a task",
             responses=responses(201, "Created; Location names the task", TaskCreated, (400, 404, 409, 413)))
def start_task(headers: Creating, service_id: ServiceId, body: Annotated[TaskStart | None, Body()] = None):
    def work() -> dict:
        task_id = children.start_task(headers.key, service_id, body or TaskStart())  # the body is optional
        return {"status": 201, "body": {"task_id": task_id},
                "headers": {"Location": f"{api.BASE_PATH}/services/{service_id}/tasks/{task_id}"}}

    return api.create_once(router, headers, f"tasks.start:{service_id}", work)


@router.post("/services/<service_id>/tasks/<task_id>/end", operation_id="end_task", summary="End a task",
             responses=responses(204, "Completed", None, (400, 404, 409, 413)))
def end_task(headers: Tenant, service_id: ServiceId, task_id: TaskId, body: Annotated[TaskEnd | None, Body()] = None):
    children.end_task(headers.key, service_id, task_id, body)
    return json_response(204)


@router.get("/services/<service_id>/tasks/<task_id>", operation_id="get_task", summary="Get a task",
            responses=responses(200, "The task", TaskOut))
def get_task(headers: Tenant, service_id: ServiceId, task_id: TaskId, params: Select):
    return json_response(200, children.get_task(headers.key, service_id, task_id, params.selection()))


@router.put("/services/<service_id>/tasks/<task_id>/extensions/<ext_name>", operation_id="put_task_extension",
            summary="Replace one attached-data key of a task", deprecated=True,
            responses=responses(200, "The key and its new value", None, (400, 404, 413)))
def put_task_extension(headers: Tenant, service_id: ServiceId, task_id: TaskId, ext_name: str):
    value = api.json_body(router.current_event)
    children.put_extension(headers.key, service_id, children.TASK, task_id, ext_name, value)
    return json_response(200, {ext_name: value})


app = api.make_app(router)
lambda_handler = handler_for(app)
