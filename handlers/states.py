"""States function: the state routes of §6."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from lib.api import resolver as api
from lib.api.entry import handler_for
from lib.api.params import ChildId, Creating, PathText, Select, ServiceId, StateListParams, Tenant
from lib.api.resolver import json_response, list_response, responses
from lib.models import StateCreated, StateEnd, StateOut, StateStart, Transition
from lib.rules import attached, children
from lib.status import Status

routes = api.Routes()
router = routes.router


def _created(service_id: str) -> api.Created:
    def created(state_id: int) -> tuple[int, dict[str, int], str]:
        return 201, {"state_id": state_id}, f"/services/{service_id}/states/{state_id}"

    return created


# Registered before the `/{id}` routes: Powertools tries parameterised routes in order, and
# `/states/active` must not be read as a state whose id is "active".
def _list_route(suffix: str, status: Status | None, label: str) -> None:
    def list_states(headers: Tenant, service_id: ServiceId, params: Annotated[StateListParams, Query()]):
        query = children.ChildQuery(status=status, types=params.state_types, limit=params.limit,
                                    page_token=params.page_token, started_from=params.started_from,
                                    started_to=params.started_to)
        views, token = children.list_children(headers.key, service_id, "state", query, params.selection())
        return list_response(routes, views, token)

    list_states.__name__ = f"list_states_{label}"
    routes.get(f"/services/<service_id>/states{suffix}", operation_id=list_states.__name__,
               summary=f"List a service's states ({label})",
               responses=responses(200, "States by id", list[StateOut]))(list_states)


for _status, _suffix, _label in api.LIST_STATUSES:
    _list_route(_suffix, _status, _label)


@routes.post("/services/<service_id>/states/start", operation_id="start_state", summary="Start a state",
             responses=responses(201, "Created; Location names the state", StateCreated, (400, 404, 409, 413)))
def start_state(headers: Creating, service_id: ServiceId, body: Annotated[StateStart | None, Body()] = None):
    event = body or StateStart()  # every field is optional, so is the body
    return api.create_once(routes, headers, f"states.start:{service_id}", _created(service_id),
                           lambda claim: children.start_state(headers.key, service_id, event, claim))


@routes.post("/services/<service_id>/states/transition", operation_id="transition_state",
             summary="Complete a state and start the next one atomically",
             responses=responses(201, "Created; Location names the new state", StateCreated, (400, 404, 409, 413)))
def transition_state(headers: Creating, service_id: ServiceId, body: Annotated[Transition, Body()]):
    return api.create_once(routes, headers, f"states.transition:{service_id}", _created(service_id),
                           lambda claim: children.transition(headers.key, service_id, body, claim))


@routes.post("/services/<service_id>/states/<state_id>/end", operation_id="end_state",
             summary="End a state (and its active tasks)", responses=responses(204, "Completed", None, (400, 404, 409, 413)))
def end_state(headers: Tenant, service_id: ServiceId, state_id: ChildId, body: Annotated[StateEnd | None, Body()] = None):
    children.end_state(headers.key, service_id, children.check_child_id("state", state_id), body)
    return json_response(204)


@routes.get("/services/<service_id>/states/<state_id>", operation_id="get_state", summary="Get a state",
            responses=responses(200, "The state", StateOut, (400, 404, 413)))
def get_state(headers: Tenant, service_id: ServiceId, state_id: ChildId, params: Select):
    state = children.check_child_id("state", state_id)
    return json_response(200, children.get_state(headers.key, service_id, state, params.selection()))


@routes.put("/services/<service_id>/states/<state_id>/extensions/<ext_name>", operation_id="put_state_extension",
            summary="Replace one attached-data key of a state", deprecated=True,
            responses=responses(200, "The key and its new value", None, (400, 404, 413)))
def put_state_extension(headers: Tenant, service_id: ServiceId, state_id: ChildId, ext_name: PathText):
    state = children.check_child_id("state", state_id)
    value = api.json_body(routes.current_event)
    attached.put(headers.key, service_id, "state", state, ext_name, value)
    return json_response(200, {ext_name: value})


@routes.put("/services/<service_id>/states/<state_id>/extensions/<ext_name>/merge",
            operation_id="merge_state_extension", summary="Merge Extension Data into one attached-data key of a state",
            responses=responses(200, "The key's new value", None, (400, 404, 409, 413)))
def merge_state_extension(headers: Tenant, service_id: ServiceId, state_id: ChildId, ext_name: PathText):
    state = children.check_child_id("state", state_id)
    patch = api.json_body(routes.current_event)
    return json_response(200, attached.merge(headers.key, service_id, "state", state, ext_name, patch))


app = api.make_app(routes)
lambda_handler = handler_for(app)
