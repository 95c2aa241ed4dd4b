"""The framework floor: the least a Powertools REST function with the production features costs.

A minimal app as Powertools' own examples write one, with what the deployed functions use:
`APIGatewayRestResolver(enable_validation=True)` with the base path stripped; the same route shapes
(a tenancy header model, typed path parameters, a query model, a body model, each validated by
Powertools); Logger (INFO) with the Lambda context and API Gateway's correlation id; Metrics with the
cold-start metric; Tracer patching botocore when inside Lambda with tracing on (as lib/observability
decides), the handler captured without its response; a DynamoDB client built at init. Minimal: it
writes no log line and adds no metric of its own (the project's request log line and business
metrics are the project's cost, not the framework's).

Each route makes the DynamoDB calls it is given (`PENDING`: the calls the project's handler made for
the same request, recorded by the benchmark) with the client's own methods, in order, and answers
`REPLY` (the handler's reply: status, body, headers), serialised by Powertools. It does none of the
project's work (access check, domain rules, item encoding, paging): what the handler costs beyond
this app is the project's own code.

Self-contained: it imports Powertools, pydantic and boto3 only, so that the cold-start benchmark
can import it next to a built package (bench/coldstart.py).
"""

import os
import warnings
from typing import Annotated, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

BASE_PATH = "/genesys/1/cs"
HEADER_VALUE = r"^[A-Za-z0-9._-]{1,64}$"
ID = r"^[1-9][0-9]{0,18}$"

logger = Logger(service="context-services-floor")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ContextServices"),
                  service="context-services-floor")
tracer = None
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in (
        "1", "true") and "AWS_SAM_LOCAL" not in os.environ:
    from aws_lambda_powertools import Tracer

    tracer = Tracer(patch_modules=("botocore",))
client = boto3.client("dynamodb")
app = APIGatewayRestResolver(enable_validation=True, strip_prefixes=[BASE_PATH])
warnings.filterwarnings("ignore", message="No application metrics to publish")  # as lib/observability

# What the next request's route does: [(client method name, parameters)], and (status, body, headers).
PENDING: list[tuple[str, dict[str, Any]]] = []
REPLY: tuple[int, Any, dict[str, str] | None] = (200, {}, None)


class Tenancy(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    contact_center_id: Annotated[str, Field(pattern=HEADER_VALUE)] | None = Field(None, alias="ContactCenterId")
    group_id: Annotated[str, Field(pattern=HEADER_VALUE)] | None = Field(None, alias="GroupId")


class Creating(Tenancy):
    idempotency_key: Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,128}$")] | None = Field(
        None, alias="Idempotency-Key")


class Selection(BaseModel):
    active_states: bool = False
    completed_states: bool = False
    active_tasks: bool = False
    completed_tasks: bool = False
    extensions: list[str] | None = None


class ListParams(Selection):
    limit: int = Field(100, ge=1, le=1000)
    page_token: str | None = Field(None, max_length=2048)
    started_from: str | None = None
    started_to: str | None = None
    service_types: list[str] | None = None


class StreamParams(BaseModel):
    time_from: str
    time_to: str | None = None
    export_content: bool = False
    limit: int = Field(100, ge=1, le=1000)
    page_token: str | None = Field(None, max_length=2048)


class StateStart(BaseModel):
    model_config = ConfigDict(extra="allow")  # attached data

    state_type: int | str | None = None
    previous_state_id: Annotated[str, Field(pattern=ID)] | None = None
    est_duration: Annotated[int, Field(ge=0)] | None = None
    session_id: Annotated[str, Field(max_length=32)] | None = None
    media_type: int | str | None = None


ServiceId = Annotated[str, Path(pattern=ID)]


def answer() -> Response:
    """Make the pending calls, then the reply."""
    for method, params in PENDING:
        try:
            getattr(client, method)(**params)
        except ClientError:
            pass  # the handler met the same refusal (a failed condition) and answered it
    status, body, headers = REPLY
    if status == 204:
        return Response(status_code=204, content_type=None, body="", headers=headers)
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


@app.get("/services/<service_id>")
def get_service(headers: Annotated[Tenancy, Header()], service_id: ServiceId,
                params: Annotated[Selection, Query()]):
    return answer()


@app.post("/services/<service_id>/states/start")
def start_state(headers: Annotated[Creating, Header()], service_id: ServiceId,
                body: Annotated[StateStart | None, Body()] = None):
    return answer()


@app.get("/services/<service_id>/states/<state_id>")
def get_state(headers: Annotated[Tenancy, Header()], service_id: ServiceId,
              state_id: Annotated[str, Path(pattern=ID)], params: Annotated[Selection, Query()]):
    return answer()


@app.get("/services/<service_id>/tasks/<task_id>")
def get_task(headers: Annotated[Tenancy, Header()], service_id: ServiceId,
             task_id: Annotated[str, Path(pattern=ID)], params: Annotated[Selection, Query()]):
    return answer()


@app.get("/customers/<customer_id>/services")
def list_customer_services(headers: Annotated[Tenancy, Header()], customer_id: Annotated[str, Path()],
                           params: Annotated[ListParams, Query()]):
    return answer()


@app.get("/maintenance/services/stream")
def export_stream(headers: Annotated[Tenancy, Header()], params: Annotated[StreamParams, Query()]):
    return answer()


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)


lambda_handler = metrics.log_metrics(
    logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)(_handle),
    capture_cold_start_metric=True)
if tracer is not None:
    lambda_handler = tracer.capture_lambda_handler(lambda_handler, capture_response=False)
