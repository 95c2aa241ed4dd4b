"""States function: the state routes of §6."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lib.api import resolver as api
from lib.api.entry import handler_for
from lib.api.params import Creating, Select, ServiceId, StateListParams, Tenant
from lib.api.resolver import json_response, list_response, responses
from lib.models import StateCreated, StateEnd, StateOut, StateStart, Transition
from lib.rules import children

router = APIGatewayRouter()

StateId = Annotated[int, Path(ge=1, le=2**63 - 1, description="State id")]


def _created(service_id: str, state_id: int) -> dict:
    return {"status": 201, "body": {"state_id": state_id},
            "headers": {"Location": f"{api.BASE_PATH}/services/{service_id}/states/{state_id}"}}


# Registered before the `/{id}` routes: Powertools tries parameterised routes in order, and
# `/states/active` must not be read as a state whose id is "active".
def _list_route(suffix: str, status: str | None, label: str) -> None:
    def list_states(headers: Tenant, service_id: ServiceId, params: Annotated[StateListParams, Query()]):
        query = children.ChildQuery(status=status, types=params.state_types, limit=params.limit,
                                    page_token=params.page_token, started_from=params.started_from,
                                    started_to=params.started_to)
        views, token = children.list_children(headers.key, service_id, children.STATE, query, params.selection())
        return list_response(router, views, token)

    list_states.__name__ = f"list_states_{label}"
    router.get(f"/services/<service_id>/states{suffix}", operation_id=list_states.__name__,
               summary=f"List a service's states ({label})",
               responses=responses(200, "States by id", list[StateOut]))(list_states)


for _status, _suffix, _label in api.LIST_STATUSES:
    _list_route(_suffix, _status, _label)


@router.post("/services/<service_id>/states/start", operation_id="start_state", summary="Start a state",
             responses=responses(201, "Created; Location names the state", StateCreated, (400, 404, 409, 413)))
def start_state(headers: Creating, service_id: ServiceId, body: Annotated[StateStart | None, Body()] = None):
    event = body or StateStart()  # every field is optional, so is the body
    return api.create_once(router, headers, f"states.start:{service_id}",
                           lambda: _created(service_id, children.start_state(headers.key, service_id, event)))


@router.post("/services/<service_id>/states/transition", operation_id="transition_state",
             summary="Complete a state and start the next one atomically",
             responses=responses(201, "Created; Location names the new state", StateCreated, (400, 404, 409, 413)))
def transition_state(headers: Creating, service_id: ServiceId, body: Annotated[Transition, Body()]):
    return api.create_once(router, headers, f"states.transition:{service_id}",
                           lambda: _created(service_id, children.transition(headers.key, service_id, body)))


@router.post("/services/<service_id>/states/<state_id>/end", operation_id="end_state",
             summary="End a state (and its active tasks)", responses=responses(204, "Completed", None, (400, 404, 409, 413)))
def end_state(headers: Tenant, service_id: ServiceId, state_id: StateId,
              body: Annotated[StateEnd | None, Body()] = None):
    children.end_state(headers.key, service_id, state_id, body)
    return json_response(204)


@router.get("/services/<service_id>/states/<state_id>", operation_id="get_state", summary="Get a state",
            responses=responses(200, "The state", StateOut))
def get_state(headers: Tenant, service_id: ServiceId, state_id: StateId, params: Select):
    return json_response(200, children.get_state(headers.key, service_id, state_id, params.selection()))


@router.put("/services/<service_id>/states/<state_id>/extensions/<ext_name>", operation_id="put_state_extension",
            summary="Replace one attached-data key of a state", deprecated=True,
            responses=responses(200, "The key and its new value", None, (400, 404, 413)))
def put_state_extension(headers: Tenant, service_id: ServiceId, state_id: StateId, ext_name: str):
    value = api.json_body(router.current_event)
    children.put_extension(headers.key, service_id, children.STATE, state_id, ext_name, value)
    return json_response(200, {ext_name: value})


app = api.make_app(router)
lambda_handler = handler_for(app)
