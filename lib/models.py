"""Pydantic models for what comes in (request bodies) and what goes out (OpenAPI response shapes).

Request models accept extra keys: any top-level key that is not a contract field is attached data
(§1) and lands in ``model_extra``. Integers are strict (``"5"`` is not an integer), business
attributes keep the type they were sent with.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, ClassVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from lib.clock import format_ms, parse_timestamp
from lib.errors import ValidationError

# Names that a body may not use as attached-data keys because they are (or will be) fields of the
# representations the API returns; sending them as attached data would shadow real fields.
RESERVED_KEYS = frozenset(
    {
        "service_id", "state_id", "task_id", "customer_id", "contact_key", "service_type", "state_type",
        "task_type", "previous_state_id", "est_duration", "started", "completed", "duration", "disposition",
        "disposition_desc", "expiration_time", "ttl", "auto_complete_after", "active_states",
        "completed_states", "active_tasks", "completed_tasks", "session_id", "interaction_id",
        "application_type", "application_id", "resource_type", "resource_id", "media_type", "timestamp",
        "from", "to", "services", "service", "state", "task", "associate_state_task",
    }
)
MAX_KEY_LENGTH = 128


def attached_key_problem(key: str) -> str | None:
    """Why `key` cannot name attached data (§1), or None."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return f"attached-data key '{key[:40]}' must be 1-{MAX_KEY_LENGTH} characters"
    if key in RESERVED_KEYS:
        return f"'{key}' is a field of this API and cannot be used as an attached-data key"
    return None


def _iso(value: str) -> str:
    try:
        return format_ms(parse_timestamp(value))
    except ValidationError as error:
        raise ValueError(error.message.split(": ", 1)[-1]) from None


def _int_as_text(value: Any) -> Any:
    # interaction_id: an integer is accepted and stored as its string form (§1); bools are not ints here.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _id_from_digits(value: Any) -> Any:
    """Ids in bodies: a JSON integer, or a string of decimal digits as Java clients send them (§1)."""
    if isinstance(value, str):
        if not ID_DIGITS.fullmatch(value):
            raise ValueError("must be a positive integer (or a string of its decimal digits)")
        return int(value)
    return value


def _identifier(value: str) -> str:
    if "/" in value or any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain '/' or control characters")
    return value


ID_DIGITS = re.compile(r"[1-9][0-9]{0,18}", re.ASCII)
Timestamp = Annotated[StrictStr, AfterValidator(_iso)]
# Integers are 64-bit signed (what clients of the original API send, and what DynamoDB stores exactly).
Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
BusinessAttribute = Union[Int64, StrictStr]
NonNegative = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
Id = Annotated[StrictInt, BeforeValidator(_id_from_digits), Field(ge=1, le=2**63 - 1)]
# ttl: at most 1000 years, so that the expiration stays a representable timestamp.
TtlSeconds = Annotated[StrictInt, Field(ge=0, le=1000 * 365 * 86400)]
# customer_id / contact_key appear in paths: no '/', no control characters (§1).
Identifier = Annotated[StrictStr, Field(min_length=1, max_length=256), AfterValidator(_identifier)]


class Model(BaseModel):
    """Base of every model: schemas are built on first use, not at import, so a cold Lambda only
    builds the models its first requests need (most routes use a few of the ~30 models)."""

    model_config = ConfigDict(defer_build=True)


class _Body(Model):
    """Base of request bodies: unknown keys are attached data, checked here."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _check_attached_data(self) -> _Body:
        for key in self.model_extra or {}:
            problem = attached_key_problem(key)
            if problem:
                raise ValueError(problem)
        return self

    def attached_data(self) -> dict[str, Any]:
        """The attached-data keys of this body."""
        return dict(self.model_extra or {})


class CommonFields(_Body):
    """Fields every start and end event may carry (§1)."""

    session_id: Annotated[StrictStr, Field(max_length=32)] | None = None
    interaction_id: Annotated[StrictStr, BeforeValidator(_int_as_text), Field(max_length=50)] | None = None
    application_type: BusinessAttribute | None = None
    application_id: Int64 | None = None
    resource_type: BusinessAttribute | None = None
    resource_id: Int64 | None = None
    media_type: BusinessAttribute | None = None
    timestamp: Timestamp | None = None

    def event_fields(self) -> dict[str, Any]:
        """The common fields that were sent (they form the stored `started` / `completed` event)."""
        values = self.__dict__
        return {name: values[name] for name in _COMMON_FIELDS if values[name] is not None}


_COMMON_FIELDS = tuple(CommonFields.model_fields)  # in declaration order


class EndFields(CommonFields):
    disposition: BusinessAttribute | None = None
    disposition_desc: Annotated[StrictStr, Field(max_length=64)] | None = None


class ExpirationFields(Model):
    ttl: TtlSeconds | None = Field(None, description="Seconds from now until the conversation is erased")
    expiration_time: Timestamp | None = Field(None, description="When the conversation is erased")


class ServiceStart(CommonFields, ExpirationFields):
    """Service start event. `customer_id` or `contact_key` is mandatory."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"customer_id": "demo-customer", "service_type": "billing", "est_duration": 600, "media_type": "voice",
         "interaction_id": "IVR-0042", "channel": "ivr"}]})

    customer_id: Identifier | None = None
    contact_key: Identifier | None = None
    service_type: BusinessAttribute | None = None
    est_duration: NonNegative | None = None
    auto_complete_after: NonNegative | None = None

    @model_validator(mode="after")
    def _customer_or_contact(self) -> ServiceStart:
        if self.customer_id is None and self.contact_key is None:
            raise ValueError("customer_id or contact_key is required")
        return self


class _Repeats(Model):
    """End events may repeat the element's identifying start fields, as clients of the original do
    (§1): accepted, ignored, never stored as attached data."""

    REPEATED: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _drop_repeated(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(name in data for name in cls.REPEATED):
            return {k: v for k, v in data.items() if k not in cls.REPEATED}
        return data


class ServiceEnd(_Repeats, EndFields, ExpirationFields):
    """Service end event (all optional)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"disposition": "paid", "disposition_desc": "Paid by card"}]})

    REPEATED: ClassVar[tuple[str, ...]] = ("service_type", "customer_id", "contact_key")


class ServiceAssociate(CommonFields):
    """Start-event fields to update when associating a service with a customer (all optional)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"media_type": "chat", "identified_by": "login"}]})

    contact_key: Identifier | None = None
    service_type: BusinessAttribute | None = None
    est_duration: NonNegative | None = None


class ExpirationUpdate(ExpirationFields):
    """`PUT /services/{id}` body: `ttl` wins over `expiration_time`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ttl": 604800}]})

    @model_validator(mode="after")
    def _one_of(self) -> ExpirationUpdate:
        if self.ttl is None and self.expiration_time is None:
            raise ValueError("ttl or expiration_time is required")
        return self


class StateStart(CommonFields):
    """State start event."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"state_type": "identify", "est_duration": 60}]})

    state_type: BusinessAttribute | None = None
    previous_state_id: Id | None = None
    est_duration: NonNegative | None = None


class StateEnd(_Repeats, EndFields):
    """State end event (all optional)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"disposition": "identified"}]})

    REPEATED: ClassVar[tuple[str, ...]] = ("state_type",)


class TransitionFrom(Model):
    model_config = ConfigDict(extra="forbid")
    state_id: Id
    disposition: BusinessAttribute | None = None
    disposition_desc: Annotated[StrictStr, Field(max_length=64)] | None = None


class TransitionTo(Model):
    model_config = ConfigDict(extra="forbid")
    state_type: BusinessAttribute | None = None
    est_duration: NonNegative | None = None


class Transition(CommonFields):
    """Complete `from` and start `to` in one atomic write; common fields apply to both, attached data
    goes to the new state."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"from": {"state_id": 1, "disposition": "identified"}, "to": {"state_type": "pay", "est_duration": 120}}]})

    from_: TransitionFrom = Field(alias="from")
    to: TransitionTo


class TaskStart(CommonFields):
    """Task start event; `state_id` attaches the task to a state of the service."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"task_type": "lookup", "state_id": 1, "est_duration": 30}]})

    task_type: BusinessAttribute | None = None
    state_id: Id | None = None
    est_duration: NonNegative | None = None


class TaskEnd(_Repeats, EndFields):
    """Task end event (all optional)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"disposition": "found"}]})

    REPEATED: ClassVar[tuple[str, ...]] = ("task_type", "state_id")


class CompositeElement(Model):
    model_config = ConfigDict(extra="forbid")
    service: ServiceStart
    state: StateStart
    task: TaskStart | None = None
    associate_state_task: StrictBool = False


class CompositeStart(Model):
    """Find-or-create services, states and (optionally) tasks, in request order."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"services": [
        {"service": {"customer_id": "demo-customer", "service_type": "care"}, "state": {"state_type": "queue"},
         "task": {"task_type": "callback"}, "associate_state_task": True}]}]})
    services: Annotated[list[CompositeElement], Field(min_length=1, max_length=25)]


# ---- response shapes (documentation of what goes out; the handlers build plain dicts) ----


class EventOut(Model):
    model_config = ConfigDict(extra="forbid")
    timestamp: str
    session_id: str | None = None
    interaction_id: str | None = None
    application_type: BusinessAttribute | None = None
    application_id: int | None = None
    resource_type: BusinessAttribute | None = None
    resource_id: int | None = None
    media_type: BusinessAttribute | None = None


class _ElementOut(Model):
    """What services, states and tasks have in common (§3)."""

    est_duration: int | None = None
    started: EventOut
    completed: EventOut | None = None
    duration: int | None = None
    disposition: BusinessAttribute | None = None
    disposition_desc: str | None = None


class TaskOut(_ElementOut):
    model_config = ConfigDict(extra="allow", json_schema_extra={"description": "Task; attached data on request"})
    task_id: int
    task_type: BusinessAttribute | None = None
    service_id: str
    state_id: int | None = None


class StateOut(_ElementOut):
    model_config = ConfigDict(extra="allow", json_schema_extra={"description": "State; attached data on request"})
    state_id: int
    state_type: BusinessAttribute | None = None
    service_id: str
    previous_state_id: int | None = None
    active_tasks: list[TaskOut] | None = None
    completed_tasks: list[TaskOut] | None = None


class ServiceOut(_ElementOut):
    model_config = ConfigDict(extra="allow", json_schema_extra={"description": "Service; attached data on request"})
    service_id: str
    service_type: BusinessAttribute | None = None
    customer_id: str | None = None
    contact_key: str | None = None
    expiration_time: str
    active_states: list[StateOut] | None = None
    completed_states: list[StateOut] | None = None
    active_tasks: list[TaskOut] | None = None
    completed_tasks: list[TaskOut] | None = None


class ServiceCreated(Model):
    service_id: str


class StateCreated(Model):
    state_id: int


class TaskCreated(Model):
    task_id: int


class CompositeResult(Model):
    service_id: str
    service_created: bool
    state_id: int
    state_created: bool
    task_id: int | None = None
    task_created: bool | None = None


class CompositeOut(Model):
    services: list[CompositeResult]


class ExpirationOut(Model):
    service_id: str
    expiration_time: str


class ErrorOut(Model):
    message: str
    exception: str



# ---- maintenance (§8)


class PurgeRequest(Model):
    """`POST /maintenance/purge` body."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"limit": "2026-01-01T00:00:00Z", "operation": "purge.service.completed"}]})
    limit: StrictStr = Field(description="Services started before this time (ISO 8601)")
    operation: StrictStr = Field(description="purge.service.all | .started | .started.anonymous | .completed | "
                                             ".completed.anonymous")


class FilesCreated(Model):
    created: list[str]


class Purged(Model):
    purged: int


class JobOut(Model):
    """A maintenance job: running, succeeded (with the synchronous call's result) or failed."""

    job_id: str
    kind: str
    status: str
    counts: dict[str, int]
    created: str
    updated: str
    result: dict[str, Any] | None = None
    error: str | None = None
