"""Parameters shared by routes, declared once as pydantic models that Powertools validates and
documents: the tenancy headers (§1), the query parameters of the GET routes (§5) and path values."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from lib.models import Model
from lib.rules.conversation import Selection
from lib.rules.services import MAX_ID, csv_values
from lib.store.keys import tenant_key

TENANT_HEADER_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,128}$"
HeaderValue = Annotated[str, Field(pattern=TENANT_HEADER_PATTERN)]
# A list parameter: CSV, repeated, or both (§5); clients of the original repeat it.
CsvList = Annotated[list[str] | None, Field(None)]


def _positive_int64(value: str) -> str:
    # The pattern has admitted 1-19 digits; 19 digits still reach past the largest 64-bit integer.
    if int(value) > MAX_ID:
        raise ValueError(f"must be at most {MAX_ID} (a positive 64-bit integer)")
    return value


# An id in a query parameter (§1): a positive 64-bit integer in decimal digits, as in bodies; 400 otherwise.
QueryId = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,18}$"), AfterValidator(_positive_int64)]


class Tenancy(Model):
    """`ContactCenterId` (tenant) and `GroupId` (business unit); absent means the default tenant
    and no group."""

    model_config = ConfigDict(populate_by_name=True, title="Tenancy")

    contact_center_id: HeaderValue | None = Field(None, alias="ContactCenterId", description="Tenant")
    group_id: HeaderValue | None = Field(None, alias="GroupId", description="Business unit")

    @property
    def key(self) -> str:
        return tenant_key(self.contact_center_id, self.group_id)


class TenancyAndRetry(Tenancy):
    """Headers of the POSTs that create something: tenancy and the optional Idempotency-Key."""

    model_config = ConfigDict(populate_by_name=True, title="TenancyAndRetry")

    idempotency_key: Annotated[str, Field(pattern=IDEMPOTENCY_KEY_PATTERN)] | None = Field(
        None, alias="Idempotency-Key", description="Repeat-safe retries: same key and body within 24 h replay the reply")


class SelectionParams(Model):
    """What a read embeds and which attached data it returns."""

    active_states: bool = Field(False, description="Embed active states")
    completed_states: bool = Field(False, description="Embed completed states")
    active_tasks: bool = Field(False, description="Embed active tasks")
    completed_tasks: bool = Field(False, description="Embed completed tasks")
    extensions: CsvList = Field(None, description="Attached-data keys to return (CSV or repeated): `<key>`, `*` "
                                                  "(all), `State.<key>`, `State.*`, `Task.<key>`, `Task.*`; "
                                                  "a bare `State` or `Task` means `State.*` / `Task.*`",
                                examples=["*"])

    def selection(self) -> Selection:
        return Selection.parse(csv_values(self.extensions), active_states=self.active_states,
                               completed_states=self.completed_states, active_tasks=self.active_tasks,
                               completed_tasks=self.completed_tasks)


class PageParams(SelectionParams):
    limit: int = Field(100, ge=1, le=1000, description="Page size")
    page_token: str | None = Field(None, max_length=2048, description="Token from the previous page's Link header")


class ListParams(PageParams):
    """Paging, embedding and the start-time window shared by every list route."""

    started_from: str | None = Field(None, description="Start time window, inclusive (ISO 8601)")
    started_to: str | None = Field(None, description="Start time window, exclusive (ISO 8601)")


class ServiceListParams(ListParams):
    service_types: CsvList = Field(None, description="Service types (CSV or repeated)")


class StateListParams(ListParams):
    state_types: CsvList = Field(None, description="State types (CSV or repeated)")


class TaskListParams(ListParams):
    task_types: CsvList = Field(None, description="Task types (CSV or repeated)")
    state_id: QueryId | None = Field(None, description="Only the tasks of this state")


class StreamParams(Model):
    """The export filters of §8, and the list filters and paging of §5."""

    time_from: str = Field(description="Window start, inclusive (ISO 8601)", examples=["2026-01-01T00:00:00Z"])
    time_to: str | None = Field(None, description="Window end, exclusive (default: now)")
    filter_events: Literal["any", "started", "completed"] = Field("any", description="Which events fall in the window")
    export_content: bool = Field(False, description="Whole conversations instead of service ids")
    filter_state: Literal["any", "active", "inactive"] | None = Field(
        None, description="Status now (with export_content=true)")
    service_types: CsvList = Field(None, description="Service types (CSV or repeated)")
    started_from: str | None = Field(None, description="Start time window, inclusive (ISO 8601)")
    started_to: str | None = Field(None, description="Start time window, exclusive (ISO 8601)")
    limit: int = Field(100, ge=1, le=1000, description="Page size")
    page_token: str | None = Field(None, max_length=2048, description="Token from the previous page's Link header")


class FilesParams(Model):
    """The export filters of §8 and the file format."""

    time_from: str = Field(description="Window start, inclusive (ISO 8601)", examples=["2026-01-01T00:00:00Z"])
    time_to: str | None = Field(None, description="Window end, exclusive (default: now)")
    filter_events: Literal["any", "started", "completed"] = Field("any", description="Which events fall in the window")
    export_content: bool = Field(True, description="Files always hold whole records; accepted for symmetry")
    filter_state: Literal["any", "active", "inactive"] | None = Field(None, description="Status now")
    service_types: CsvList = Field(None, description="Service types (CSV or repeated)")
    started_from: str | None = Field(None, description="Start time window, inclusive (ISO 8601)")
    started_to: str | None = Field(None, description="Start time window, exclusive (ISO 8601)")
    format: Literal["json", "csv"] = Field("json", description="json: JSON Lines; csv")


def _decoded(value: object) -> object:
    """Route parameters arrive percent-encoded (lib.api.resolver.routing_path): decode them."""
    return unquote(value) if isinstance(value, str) else value


Decoded = BeforeValidator(_decoded)

# Route parameter annotations shared by the handlers.
Tenant = Annotated[Tenancy, Header()]
Creating = Annotated[TenancyAndRetry, Header()]
Select = Annotated[SelectionParams, Query()]
ServiceId = Annotated[str, Path(description="Service id (decimal digits)"), Decoded]
ChildId = Annotated[str, Path(description="State or task id (decimal digits)"), Decoded]
PathText = Annotated[str, Path(), Decoded]
