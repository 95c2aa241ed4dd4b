"""Tasks function: the task routes of §6."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from lib.api import resolver as api
from lib.api.entry import handler_for
from lib.api.params import ChildId, Creating, PathText, Select, ServiceId, TaskListParams, Tenant
from lib.api.resolver import json_response, list_response, responses
from lib.models import TaskCreated, TaskEnd, TaskOut, TaskStart
from lib.rules import attached, children
from lib.status import Status

routes = api.Routes()
router = routes.router


# Registered before the `/{id}` routes: Powertools tries parameterised routes in order, and
# `/tasks/active` must not be read as a task whose id is "active".
def _list_route(suffix: str, status: Status | None, label: str) -> None:
    def list_tasks(headers: Tenant, service_id: ServiceId, params: Annotated[TaskListParams, Query()]):
        state = children.check_child_id("state", params.state_id) if params.state_id is not None else None
        query = children.ChildQuery(status=status, types=params.task_types, state_id=state,
                                    limit=params.limit, page_token=params.page_token,
                                    started_from=params.started_from, started_to=params.started_to)
        views, token = children.list_children(headers.key, service_id, "task", query, params.selection())
        return list_response(routes, views, token)

    list_tasks.__name__ = f"list_tasks_{label}"
    routes.get(f"/services/<service_id>/tasks{suffix}", operation_id=list_tasks.__name__,
               summary=f"List a service's tasks ({label})",
               responses=responses(200, "Tasks by id", list[TaskOut]))(list_tasks)


for _status, _suffix, _label in api.LIST_STATUSES:
    _list_route(_suffix, _status, _label)


@routes.post("/services/<service_id>/tasks/start", operation_id="start_task", summary="Start a task",
             responses=responses(201, "Created; Location names the task", TaskCreated, (400, 404, 409, 413)))
def start_task(headers: Creating, service_id: ServiceId, body: Annotated[TaskStart | None, Body()] = None):
    start = body or TaskStart()  # every field is optional, so is the body

    def created(task_id: int) -> tuple[int, dict[str, int], str]:
        return 201, {"task_id": task_id}, f"/services/{service_id}/tasks/{task_id}"

    return api.create_once(routes, headers, f"tasks.start:{service_id}", created,
                           lambda claim: children.start_task(headers.key, service_id, start, claim))


@routes.post("/services/<service_id>/tasks/<task_id>/end", operation_id="end_task", summary="End a task",
             responses=responses(204, "Completed", None, (400, 404, 409, 413)))
def end_task(headers: Tenant, service_id: ServiceId, task_id: ChildId, body: Annotated[TaskEnd | None, Body()] = None):
    children.end_task(headers.key, service_id, children.check_child_id("task", task_id), body)
    return json_response(204)


@routes.get("/services/<service_id>/tasks/<task_id>", operation_id="get_task", summary="Get a task",
            responses=responses(200, "The task", TaskOut))
def get_task(headers: Tenant, service_id: ServiceId, task_id: ChildId, params: Select):
    task = children.check_child_id("task", task_id)
    return json_response(200, children.get_task(headers.key, service_id, task, params.selection()))


@routes.put("/services/<service_id>/tasks/<task_id>/extensions/<ext_name>", operation_id="put_task_extension",
            summary="Replace one attached-data key of a task", deprecated=True,
            responses=responses(200, "The key and its new value", None, (400, 404, 413)))
def put_task_extension(headers: Tenant, service_id: ServiceId, task_id: ChildId, ext_name: PathText):
    task = children.check_child_id("task", task_id)
    value = api.json_body(routes.current_event)
    attached.put(headers.key, service_id, "task", task, ext_name, value)
    return json_response(200, {ext_name: value})


@routes.put("/services/<service_id>/tasks/<task_id>/extensions/<ext_name>/merge",
            operation_id="merge_task_extension", summary="Merge Extension Data into one attached-data key of a task",
            responses=responses(200, "The key's new value", None, (400, 404, 409, 413)))
def merge_task_extension(headers: Tenant, service_id: ServiceId, task_id: ChildId, ext_name: PathText):
    task = children.check_child_id("task", task_id)
    patch = api.json_body(routes.current_event)
    return json_response(200, attached.merge(headers.key, service_id, "task", task, ext_name, patch))


app = api.make_app(routes)
lambda_handler = handler_for(app)
