"""Services function: the service lifecycle routes of §4."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from lib.api import resolver as api
from lib.api.entry import handler_for
from lib.api.params import Creating, Decoded, PathText, Select, ServiceId, ServiceListParams, Tenant
from lib.api.resolver import json_response, list_response, responses
from lib.models import (
    CompositeOut,
    CompositeStart,
    ExpirationOut,
    ExpirationUpdate,
    ServiceAssociate,
    ServiceCreated,
    ServiceEnd,
    ServiceOut,
    ServiceStart,
)
from lib.rules import attached, composite, services
from lib.status import Status

routes = api.Routes()
router = routes.router


@routes.post("/services/start", operation_id="start_service", summary="Start a service",
             responses=responses(201, "Created; Location names the service", ServiceCreated, (400, 409, 413)))
def start_service(headers: Creating, body: Annotated[ServiceStart, Body()]):
    def created(service_id: str) -> tuple[int, dict[str, str], str]:
        return 201, {"service_id": service_id}, f"/services/{service_id}"

    return api.create_once(routes, headers, "services.start", created,
                           lambda claim: services.start(headers.key, body, claim))


@routes.get("/services/<service_id>", operation_id="get_service", summary="Get a service",
            responses=responses(200, "The service", ServiceOut, (400, 404, 413)))
def get_service(headers: Tenant, service_id: ServiceId, params: Select):
    return json_response(200, services.get(headers.key, service_id, params.selection()))


@routes.delete("/services/<service_id>", operation_id="delete_service",
               summary="Delete a service with its states and tasks", responses=responses(204, "Deleted"))
def delete_service(headers: Tenant, service_id: ServiceId):
    services.delete(headers.key, service_id)
    return json_response(204)


@routes.post("/services/<service_id>/end", operation_id="end_service",
             summary="End a service (and its active states and tasks)",
             responses=responses(204, "Completed", None, (400, 404, 409, 413)))
def end_service(headers: Tenant, service_id: ServiceId, body: Annotated[ServiceEnd | None, Body()] = None):
    services.end(headers.key, service_id, body)
    return json_response(204)


@routes.put("/services/<service_id>", operation_id="put_service", summary="Change a service's expiration",
            responses=responses(200, "The new expiration", ExpirationOut))
def put_service(headers: Tenant, service_id: ServiceId, body: Annotated[ExpirationUpdate, Body()]):
    expiration_time = services.set_expiration(headers.key, service_id, body.ttl, body.expiration_time)
    return json_response(200, {"service_id": service_id, "expiration_time": expiration_time})


@routes.put("/services/<service_id>/extensions/<ext_name>", operation_id="put_service_extension",
            summary="Replace one attached-data key", deprecated=True,
            responses=responses(200, "The key and its new value", None, (400, 404, 413)))
def put_service_extension(headers: Tenant, service_id: ServiceId, ext_name: PathText):
    value = api.json_body(routes.current_event)
    attached.put(headers.key, service_id, "service", None, ext_name, value)
    return json_response(200, {ext_name: value})


@routes.put("/services/<service_id>/extensions/<ext_name>/merge", operation_id="merge_service_extension",
            summary="Merge Extension Data: apply a JSON Merge Patch to one attached-data key",
            responses=responses(200, "The key's new value", None, (400, 404, 409, 413)))
def merge_service_extension(headers: Tenant, service_id: ServiceId, ext_name: PathText):
    patch = api.json_body(routes.current_event)
    return json_response(200, attached.merge(headers.key, service_id, "service", None, ext_name, patch))


@routes.post("/customers/<customer_id>/services/<service_id>", operation_id="associate_service",
             summary="Associate a service with a customer",
             responses=responses(204, "Associated", None, (400, 404, 413)))
def associate_service(headers: Tenant, customer_id: PathText, service_id: ServiceId,
                      body: Annotated[ServiceAssociate | None, Body()] = None):
    services.associate(headers.key, customer_id, service_id, body)
    return json_response(204)


@routes.post("/services_composite/start", operation_id="start_composite",
             summary="Find or create services, states and tasks in one call",
             responses=responses(200, "One result per element, in request order", CompositeOut, (400, 404, 409, 413)))
def start_composite(headers: Creating, body: Annotated[CompositeStart, Body()]):
    def created(results: list[dict[str, Any]]) -> tuple[int, dict[str, Any], str]:
        first = results[0]
        child = f"tasks/{first['task_id']}" if "task_id" in first else f"states/{first['state_id']}"
        return 200, {"services": results}, f"/services/{first['service_id']}/{child}"

    return api.create_once(routes, headers, "services.composite", created,
                           lambda claim: composite.start(headers.key, body.services, claim))


def _list_route(path: str, owner: str, status: Status | None, label: str) -> None:
    """Register one of the six customer / anonymous list routes (all, active, completed)."""

    owner_param = "customer_id" if owner == "customer" else "contact_key"

    def list_services(headers: Tenant, owner_id: Annotated[str, Path(alias=owner_param), Decoded],
                      params: Annotated[ServiceListParams, Query()]):
        query = services.ListQuery(status=status, service_types=params.service_types,
                                   started_from=params.started_from, started_to=params.started_to,
                                   limit=params.limit, page_token=params.page_token)
        customer, contact = (owner_id, None) if owner == "customer" else (None, owner_id)
        views, token = services.list_for_owner(headers.key, customer, contact, query, params.selection())
        return list_response(routes, views, token)

    list_services.__name__ = f"list_{owner}_services_{label}"
    summary = (f"List a customer's services ({label})" if owner == "customer"
               else f"List the anonymous services of a contact key ({label})")
    routes.get(path, summary=summary, operation_id=list_services.__name__,
               responses=responses(200, "Services, oldest first", list[ServiceOut], (400,)))(list_services)


for _status, _suffix, _label in api.LIST_STATUSES:
    _list_route(f"/customers/<customer_id>/services{_suffix}", "customer", _status, _label)
    _list_route(f"/services/anonymous/<contact_key>{_suffix}", "anonymous", _status, _label)

app = api.make_app(routes)
lambda_handler = handler_for(app)
