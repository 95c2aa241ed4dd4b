"""Services function: the service lifecycle routes of §4."""


from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lib.api import resolver as api
from lib.api.entry import handler_for
from lib.api.params import Creating, Select, ServiceId, ServiceListParams, Tenant
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
from lib.rules import composite, services

router = APIGatewayRouter()



@router.post("/services/start", operation_id="start_service", summary="Start a service",
             responses=responses(201, "Created; Location names the service", ServiceCreated, (400, 413)))
def start_service(headers: Creating, body: Annotated[ServiceStart, Body()]):
    def work() -> dict:
        service_id = services.start(headers.key, body)
        return {"status": 201, "body": {"service_id": service_id},
                "headers": {"Location": f"{api.BASE_PATH}/services/{service_id}"}}

    return api.create_once(router, headers, "services.start", work)


@router.get("/services/<service_id>", operation_id="get_service", summary="Get a service", responses=responses(200, "The service", ServiceOut))
def get_service(headers: Tenant, service_id: ServiceId, params: Select):
    return json_response(200, services.get(headers.key, service_id, params.selection()))


@router.delete("/services/<service_id>", operation_id="delete_service", summary="Delete a service with its states and tasks",
               responses=responses(204, "Deleted"))
def delete_service(headers: Tenant, service_id: ServiceId):
    services.delete(headers.key, service_id)
    return json_response(204)


@router.post("/services/<service_id>/end", operation_id="end_service", summary="End a service (and its active states and tasks)",
             responses=responses(204, "Completed", None, (400, 404, 409, 413)))
def end_service(headers: Tenant, service_id: ServiceId, body: Annotated[ServiceEnd | None, Body()] = None):
    services.end(headers.key, service_id, body)
    return json_response(204)


@router.put("/services/<service_id>", operation_id="put_service", summary="Change a service's expiration",
            responses=responses(200, "The new expiration", ExpirationOut))
def put_service(headers: Tenant, service_id: ServiceId, body: Annotated[ExpirationUpdate, Body()]):
    expiration_time = services.set_expiration(headers.key, service_id, body.ttl, body.expiration_time)
    return json_response(200, {"service_id": service_id, "expiration_time": expiration_time})


@router.put("/services/<service_id>/extensions/<ext_name>", operation_id="put_service_extension", summary="Replace one attached-data key",
            deprecated=True, responses=responses(200, "The key and its new value", None, (400, 404, 413)))
def put_service_extension(headers: Tenant, service_id: ServiceId, ext_name: str):
    body = api.json_body(router.current_event)
    services.put_extension(headers.key, service_id, ext_name, body)
    return json_response(200, {ext_name: body})


@router.post("/customers/<customer_id>/services/<service_id>", operation_id="associate_service", summary="Associate a service with a customer",
             responses=responses(204, "Associated", None, (400, 404, 413)))
def associate_service(headers: Tenant, customer_id: Annotated[str, Path(max_length=256)], service_id: ServiceId,
                      body: Annotated[ServiceAssociate | None, Body()] = None):
    services.associate(headers.key, customer_id, service_id, body)
    return json_response(204)


@router.post("/services_composite/start", operation_id="start_composite",
             summary="Find or create services, states and tasks in one call",
             responses=responses(200, "One result per element, in request order", CompositeOut, (400, 404, 409, 413)))
def start_composite(headers: Creating, body: Annotated[CompositeStart, Body()]):
    def work() -> dict:
        results = composite.start(headers.key, body.services)
        first = results[0]
        location = f"{api.BASE_PATH}/services/{first['service_id']}/" + (
            f"tasks/{first['task_id']}" if "task_id" in first else f"states/{first['state_id']}")
        return {"status": 200, "body": {"services": results}, "headers": {"Location": location}}

    return api.create_once(router, headers, "services.composite", work)


def _list_route(path: str, owner: str, status: str | None, label: str) -> None:
    """Register one of the six customer / anonymous list routes (all, active, completed)."""

    owner_param = "customer_id" if owner == "customer" else "contact_key"

    def list_services(headers: Tenant, owner_id: Annotated[str, Path(alias=owner_param, max_length=256)],
                      params: Annotated[ServiceListParams, Query()]):
        query = services.ListQuery(status=status, service_types=params.service_types,
                                   started_from=params.started_from, started_to=params.started_to,
                                   limit=params.limit, page_token=params.page_token)
        customer, contact = (owner_id, None) if owner == "customer" else (None, owner_id)
        views, token = services.list_for_owner(headers.key, customer, contact, query, params.selection())
        return list_response(router, views, token)

    list_services.__name__ = f"list_{owner}_services_{label}"
    summary = (f"List a customer's services ({label})" if owner == "customer"
               else f"List the anonymous services of a contact key ({label})")
    router.get(path, summary=summary, operation_id=list_services.__name__,
               responses=responses(200, "Services, oldest first", list[ServiceOut], (400,)))(list_services)


for _status, _suffix, _label in api.LIST_STATUSES:
    _list_route(f"/customers/<customer_id>/services{_suffix}", "customer", _status, _label)
    _list_route(f"/services/anonymous/<contact_key>{_suffix}", "anonymous", _status, _label)

app = api.make_app(router)
lambda_handler = handler_for(app)
