"""Parameters shared by routes, declared once as pydantic models that Powertools validates and
documents: the tenancy headers (§1) and the query parameters of the GET routes (§5)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import ConfigDict, Field

from lib.models import Model
from lib.rules.conversation import Selection
from lib.store import tenant_key

TENANT_HEADER_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,128}$"
HeaderValue = Annotated[str, Field(pattern=TENANT_HEADER_PATTERN)]


class TenantHeaders(Model):
    """`ContactCenterId` (tenant) and `GroupId` (business unit); absent means the default tenant
    and no group."""

    model_config = ConfigDict(populate_by_name=True)

    contact_center_id: HeaderValue | None = Field(None, alias="ContactCenterId", description="Tenant")
    group_id: HeaderValue | None = Field(None, alias="GroupId", description="Business unit")

    @property
    def key(self) -> str:
        return tenant_key(self.contact_center_id, self.group_id)


class CreateHeaders(TenantHeaders):
    """Headers of the POSTs that create something: tenancy and the optional Idempotency-Key."""

    idempotency_key: Annotated[str, Field(pattern=IDEMPOTENCY_KEY_PATTERN)] | None = Field(
        None, alias="Idempotency-Key", description="Repeat-safe retries: same key and body within 24 h replay the reply")


class SelectionParams(Model):
    """What a read embeds and which attached data it returns."""

    active_states: bool = Field(False, description="Embed active states")
    completed_states: bool = Field(False, description="Embed completed states")
    active_tasks: bool = Field(False, description="Embed active tasks")
    completed_tasks: bool = Field(False, description="Embed completed tasks")
    extensions: str | None = Field(None, description="CSV of attached-data keys: key, *, State.key, Task.key")

    def selection(self) -> Selection:
        return Selection.parse(self.extensions, active_states=self.active_states,
                               completed_states=self.completed_states, active_tasks=self.active_tasks,
                               completed_tasks=self.completed_tasks)


class PageParams(SelectionParams):
    limit: int = Field(100, ge=1, le=1000, description="Page size")
    page_token: str | None = Field(None, description="Token from the previous page's Link header")


class ListParams(PageParams):
    """Paging, embedding and the start-time window shared by every list route."""

    started_from: str | None = Field(None, description="Start time window, inclusive (ISO 8601)")
    started_to: str | None = Field(None, description="Start time window, exclusive (ISO 8601)")


class ServiceListParams(ListParams):
    service_types: str | None = Field(None, description="CSV of service types")


class StateListParams(ListParams):
    state_types: str | None = Field(None, description="CSV of state types")


class TaskListParams(ListParams):
    task_types: str | None = Field(None, description="CSV of task types")
    state_id: int | None = Field(None, ge=1, le=2**63 - 1, description="Only the tasks of this state")


# Route parameter annotations shared by the handlers.
Tenant = Annotated[TenantHeaders, Header()]
Creating = Annotated[CreateHeaders, Header()]
Select = Annotated[SelectionParams, Query()]
ServiceId = Annotated[str, Path(description="Service id (decimal string)")]
