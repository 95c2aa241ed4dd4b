"""From representations to the stored items: a conversation read from another Context Services
becomes the service, state and task items the API itself would have stored for it (lib.store.items
derives every key, index key and TTL from them), so lists, exports, purge and every later request
treat it as one of their own.

What the representation does not carry is decided here, and documented in docs/DESIGN.md (Import):

* **Status**: an element with `completed` is stored completed, at that timestamp. The representation
  already applies the completion cascades (a state completed with its service shows the service's
  end), so those are stored as they show.
* **Counters**: `state_seq` / `task_seq` are the highest imported ids, so the next start continues
  after them; a state's `attached` count is the number of its imported tasks.
* **Expiration**: `expiration_time` is kept exactly, as an explicit expiration (a migration never
  extends or shortens what the source promised; `sliding` makes it slide with later writes, as the
  default expiration does). No `expiration_time`: the default expiration, from the import.
* **Auto-complete**: not in §3. An active service gets the `auto_complete_after` the record carries,
  else the operator's choice, else the target's default (AUTO_COMPLETE_AFTER), as a start without it
  would; the import counts as its last write, so an imported active service is not completed before
  `import time + auto_complete_after`.
* **Change feed**: nothing is published for an imported conversation unless asked (`events`): then its
  service item carries the history lib.migration.history rebuilds.
* **Composite locks**: not imported (nothing of them is in the representation); composite starts find
  an imported active service through the owner's index, as they find one started by the plain routes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lib.clock import parse_timestamp
from lib.migration import history
from lib.migration.records import ServiceRecord, StateRecord, TaskRecord
from lib.rules.conversation import Conversation
from lib.rules.maintenance import EVERYTHING  # what the export stream shows of a conversation
from lib.store.items import Child, Expiry, ServiceItem, StateItem, TaskItem


class Unfit(Exception):
    """A conversation whose records do not fit together (a task in a missing state, ...)."""

    def __init__(self, message: str, where: str | None = None):
        super().__init__(message)
        self.message, self.where = message, where


@dataclass(frozen=True)
class Policy:
    """How the import fills what the representation leaves out (see the module doc)."""

    token: str  # written on every item (`op`): recognises this run's own writes when it resumes
    auto_complete_after: int | None  # for active services whose record carries none
    sliding: bool = False  # expiration slides with later writes instead of staying as imported
    default_expiration_s: int = 5 * 365 * 86400
    events: bool = False  # the service item carries the conversation's history for the change feed


@dataclass
class Imported:
    """A conversation ready to store: its service item and its children (states, then tasks)."""

    service: ServiceItem
    children: list[Child] = field(default_factory=list)
    events: list[dict[str, Any]] | None = None  # its change-feed history (lib.migration.history), when asked

    @property
    def items(self) -> int:
        return 1 + len(self.children)


def _json_text(value: Any) -> str:
    """Attached data is stored as its JSON text, as the API stores what a request sent."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _element_fields(record: ServiceRecord | StateRecord | TaskRecord) -> dict[str, Any]:
    started = record.started.event_fields()
    started_ms = parse_timestamp(started["timestamp"])
    fields: dict[str, Any] = dict(est_duration=record.est_duration, started=started, started_ms=started_ms,
                                  ext={key: _json_text(value) for key, value in record.attached_data().items()})
    if record.completed is not None:
        completed = record.completed.event_fields()
        completed_ms = parse_timestamp(completed["timestamp"])
        if completed_ms < started_ms:
            raise Unfit("completed.timestamp: before started.timestamp")
        fields.update(completed=completed, completed_ms=completed_ms, disposition=record.disposition,
                      disposition_desc=record.disposition_desc)
    return fields


def build(tenant: str, service: ServiceRecord, states: list[tuple[str, StateRecord]],
          tasks: list[tuple[str, TaskRecord]], now: int, policy: Policy) -> Imported:
    """The items of one conversation; Unfit when its records do not fit together (`where` names the
    record). `states` / `tasks`: (where, record) pairs."""
    state_by_id: dict[int, tuple[str, StateRecord]] = {}
    for where, state in states:
        _unique(state_by_id, state.state_id, where, state, "state")
    task_by_id: dict[int, tuple[str, TaskRecord]] = {}
    for where, task in tasks:
        _unique(task_by_id, task.task_id, where, task, "task")
    children_read: list[tuple[str, StateRecord | TaskRecord]] = [*states, *tasks]
    for where, child in children_read:
        if child.service_id != service.service_id:
            raise Unfit(f"service_id: {child.service_id} is not the service it is filed under", where)
    for where, state in states:
        if state.previous_state_id is not None and state.previous_state_id not in state_by_id:
            raise Unfit(f"previous_state_id: state {state.previous_state_id} is not in the conversation", where)
    for where, task in tasks:
        if task.state_id is not None and task.state_id not in state_by_id:
            raise Unfit(f"state_id: state {task.state_id} is not in the conversation", where)

    fields = _element_fields(service)
    if service.expiration_time is not None:
        expiry = Expiry(parse_timestamp(service.expiration_time), not policy.sliding)
    else:
        expiry = Expiry(now + policy.default_expiration_s * 1000, False)
    aca = service.auto_complete_after if service.auto_complete_after is not None else policy.auto_complete_after
    item = ServiceItem.new(
        tenant=tenant, service_id=service.service_id, expiry=expiry, now=now, service_type=service.service_type,
        customer_id=service.customer_id, contact_key=service.contact_key, auto_complete_after=aca,
        state_seq=max(state_by_id, default=0), task_seq=max(task_by_id, default=0), **fields)
    item.op = policy.token
    item.inc = policy.token  # its events' ids differ from an earlier conversation's with the same id
    children: list[Child] = []
    for state_id in sorted(state_by_id):
        where, state = state_by_id[state_id]
        attached = sum(1 for _, task in task_by_id.values() if task.state_id == state_id)
        children.append(StateItem(tenant=tenant, service_id=service.service_id, state_id=state_id,
                                  state_type=state.state_type, previous_state_id=state.previous_state_id,
                                  attached=attached, op=policy.token,
                                  **_fields_of(state, where)))
    for task_id in sorted(task_by_id):
        where, task = task_by_id[task_id]
        children.append(TaskItem(tenant=tenant, service_id=service.service_id, task_id=task_id,
                                 task_type=task.task_type, state_id=task.state_id, op=policy.token,
                                 **_fields_of(task, where)))
    return Imported(item, children, history.events(item, children) if policy.events else None)


def _fields_of(record: StateRecord | TaskRecord, where: str) -> dict[str, Any]:
    try:
        return _element_fields(record)
    except Unfit as unfit:
        raise Unfit(unfit.message, where) from None


def _unique(seen: dict[int, tuple[str, Any]], child_id: int, where: str, record: Any, kind: str) -> None:
    """Ids are unique in a conversation; the same record twice (a stream that embeds a task in its
    state and in its service) is one."""
    if child_id in seen:
        if seen[child_id][1].model_dump() == record.model_dump():
            return
        raise Unfit(f"{kind}_id: {kind} {child_id} appears twice with different content (first: {seen[child_id][0]})",
                    where)
    seen[child_id] = (where, record)


def shown(service: ServiceItem, children: list[Child], now: int) -> dict[str, Any]:
    """The conversation as the API shows it (the export stream's view): what "identical" compares."""
    return Conversation(service, now).add(children).service_view(EVERYTHING)
