"""What an import reads: the representations of §3 (a service, a state, a task as the API shows them
with all attached data), one JSON object each, from a line of an export file (§8, JSON Lines) or an
element of an export stream page (§8, export_content=true: services with their states and tasks
embedded). Each record is checked with the types the API accepts for the same fields (lib.models), so
what is imported is what the API could have stored; attached data is every key that is not a field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, StrictStr, model_validator
from pydantic import ValidationError as ModelError

from lib.models import (
    BusinessAttribute,
    CommonFields,
    Id,
    Identifier,
    Int64,
    Model,
    NonNegative,
    Timestamp,
    attached_key_problem,
)

MAX_SERVICE_ID = 2**63 - 1
SERVICE_ID = re.compile(r"[1-9][0-9]{0,18}", re.ASCII)
# Where a line that is not valid JSON says which service it belongs to (its first service_id member:
# the representation's own field comes before any attached data).
SERVICE_ID_IN_TEXT = re.compile(r'"service_id"\s*:\s*"?([1-9][0-9]{0,18})')
EMBEDDED = ("active_states", "completed_states", "active_tasks", "completed_tasks")


class RecordProblem(Exception):
    """A record that cannot be imported, and why (a message naming the field)."""


def _service_id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not SERVICE_ID.fullmatch(value) or int(value) > MAX_SERVICE_ID:
        raise ValueError("must be a positive 64-bit integer in decimal digits")
    return value


ServiceId = Annotated[StrictStr, BeforeValidator(_service_id)]
Description = Annotated[StrictStr, Field(max_length=64)]


class StartEvent(CommonFields):
    """`started`: the common event fields (§1), with its timestamp."""

    model_config = ConfigDict(extra="forbid")
    timestamp: Timestamp


class EndEvent(StartEvent):
    """`completed`; disposition fields inside it (as the original API placed them) are lifted to the
    element."""

    disposition: BusinessAttribute | None = None
    disposition_desc: Description | None = None


class _Element(Model):
    """What services, states and tasks share; any other key is attached data (§1)."""

    model_config = ConfigDict(extra="allow")
    est_duration: NonNegative | None = None
    started: StartEvent
    completed: EndEvent | None = None
    duration: Int64 | None = None  # derived (completed - started): not stored
    disposition: BusinessAttribute | None = None
    disposition_desc: Description | None = None

    @model_validator(mode="after")
    def _check(self) -> _Element:
        for key in self.model_extra or {}:
            problem = attached_key_problem(key)
            if problem:
                raise ValueError(problem)
        if self.completed is not None:
            if self.disposition is None:
                self.disposition = self.completed.disposition
            if self.disposition_desc is None:
                self.disposition_desc = self.completed.disposition_desc
        return self

    def attached_data(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ServiceRecord(_Element):
    service_id: ServiceId
    service_type: BusinessAttribute | None = None
    customer_id: Identifier | None = None
    contact_key: Identifier | None = None
    expiration_time: Timestamp | None = None
    auto_complete_after: NonNegative | None = None  # not in §3; used when a source sends it

    @model_validator(mode="after")
    def _owner(self) -> ServiceRecord:
        if self.customer_id is None and self.contact_key is None:
            raise ValueError("customer_id or contact_key is required")
        return self


class StateRecord(_Element):
    state_id: Id
    state_type: BusinessAttribute | None = None
    service_id: ServiceId
    previous_state_id: Id | None = None


class TaskRecord(_Element):
    task_id: Id
    task_type: BusinessAttribute | None = None
    service_id: ServiceId
    state_id: Id | None = None


KINDS: dict[str, type[_Element]] = {"service": ServiceRecord, "state": StateRecord, "task": TaskRecord}


# ---------------------------------------------------------------- records as read


@dataclass
class Part:
    """One record as a source read it: where it is, its JSON object (None when unreadable) and why
    it could not be read; `service_id` is the service it names, also read from a broken line when the
    text says it, so that the problem is charged to its conversation."""

    kind: str  # "service" | "state" | "task"
    where: str
    value: dict[str, Any] | None = None
    problem: str | None = None
    service_id: str | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_part(kind: str, where: str, text: str | bytes) -> Part:
    """A record from one line of text: strict JSON (RFC 8259: no NaN / Infinity, no lone surrogates),
    an object. Never raises: an unreadable line is a Part with its problem."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return Part(kind, where, problem="not UTF-8 text")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # lone surrogates cannot be stored as text
    except (ValueError, RecursionError, UnicodeEncodeError) as error:
        found = SERVICE_ID_IN_TEXT.search(text)
        reason = "a string holds a lone surrogate" if isinstance(error, UnicodeEncodeError) else "not valid JSON"
        return Part(kind, where, problem=reason, service_id=found.group(1) if found else None)
    return part_of(kind, where, value)


def part_of(kind: str, where: str, value: Any) -> Part:
    """A record from an already parsed JSON value."""
    if not isinstance(value, dict):
        return Part(kind, where, problem="not a JSON object")
    raw = value.get("service_id")
    service_id = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
    if service_id is None or not SERVICE_ID.fullmatch(service_id):
        return Part(kind, where, value, problem="service_id: missing or not a service id", service_id=None)
    return Part(kind, where, value, service_id=service_id)


def check(part: Part) -> _Element:
    """The record, validated; RecordProblem naming the field otherwise."""
    if part.problem is not None:
        raise RecordProblem(part.problem)
    try:
        return KINDS[part.kind].model_validate(part.value)
    except ModelError as error:
        raise RecordProblem(describe(error)) from None


def describe(error: ModelError) -> str:
    """A validation error as the API words a 400: `field: what is wrong` (the first three)."""
    parts = []
    for entry in error.errors()[:3]:
        where = ".".join(str(p) for p in entry["loc"]) or "record"
        message = entry["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


@dataclass
class Unit:
    """One conversation as read: its service record and the records of its states and tasks."""

    service: Part
    children: list[Part] = field(default_factory=list)

    @property
    def service_id(self) -> str | None:
        return self.service.service_id


def split_embedded(where: str, value: Any) -> Unit:
    """A service of an export stream page (§8, with content): its embedded states and tasks become
    records of their own (tasks embedded in states, as the original API may send them, too)."""
    if not isinstance(value, dict):
        return Unit(part_of("service", where, value))
    service = {k: v for k, v in value.items() if k not in EMBEDDED}
    unit = Unit(part_of("service", where, service))
    for name in EMBEDDED:
        items = value.get(name) or []
        if not isinstance(items, list):
            unit.children.append(Part("state" if "states" in name else "task", f"{where} {name}",
                                      problem=f"{name}: not an array", service_id=unit.service_id))
            continue
        for index, item in enumerate(items):
            kind = "state" if "states" in name else "task"
            label = f"{where} {name}[{index}]"
            if kind == "state" and isinstance(item, dict):
                nested = {k: item[k] for k in ("active_tasks", "completed_tasks") if k in item}
                item = {k: v for k, v in item.items() if k not in nested}
                for sub, tasks in nested.items():
                    for number, task in enumerate(tasks if isinstance(tasks, list) else []):
                        unit.children.append(_child("task", f"{label}.{sub}[{number}]", task, unit.service_id))
            unit.children.append(_child(kind, label, item, unit.service_id))
    return unit


def _child(kind: str, where: str, value: Any, service_id: str | None) -> Part:
    if isinstance(value, dict) and "service_id" not in value and service_id is not None:
        value = {**value, "service_id": service_id}  # embedded: its service is the one it is in
    part = part_of(kind, where, value)
    if part.service_id is None:
        part.service_id = service_id
    return part
