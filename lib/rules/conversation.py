"""A conversation as read from the table: the service item, its states and tasks, and how they are
shown (§3). Completion cascades are applied here, on read:

* ending a service records the end once, on the service item; every state and task still active
  at that moment is shown completed with the service's end timestamp;
* ending a state records it on the state item; its tasks still active are shown completed with the
  state's end timestamp (or the service's, if that came first).

So an end is one conditional write whatever the number of children (no 100-action transaction
limit to work around), and no reader can ever see a completed service with an active child.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lib.clock import format_ms
from lib.store import SERVICE_SK, STATE_PREFIX, TASK_PREFIX

EVENT_FIELDS = ("timestamp", "session_id", "interaction_id", "application_type", "application_id",
                "resource_type", "resource_id", "media_type")
ALL = "*"


@dataclass
class Selection:
    """What a read asked to see: embedded arrays (§5) and attached-data keys (`extensions`)."""

    active_states: bool = False
    completed_states: bool = False
    active_tasks: bool = False
    completed_tasks: bool = False
    own: set[str] = field(default_factory=set)  # keys of the returned element itself
    state: set[str] = field(default_factory=set)  # `State.` keys
    task: set[str] = field(default_factory=set)  # `Task.` keys

    @classmethod
    def parse(cls, extensions: str | None, **embeds: bool) -> Selection:
        """Parse the `extensions` CSV: `key`, `*`, `State.key`, `State.*`, `Task.key`, `Task.*`."""
        selection = cls(**{k: bool(v) for k, v in embeds.items()})
        for raw in (extensions or "").split(","):
            key = raw.strip()
            if not key:
                continue
            if key.startswith("State."):
                selection.state.add(key[len("State."):])
            elif key.startswith("Task."):
                selection.task.add(key[len("Task."):])
            else:
                selection.own.add(key)
        return selection

    @property
    def embeds_states(self) -> bool:
        return self.active_states or self.completed_states

    @property
    def embeds_tasks(self) -> bool:
        return self.active_tasks or self.completed_tasks

    @property
    def needs_children(self) -> bool:
        return self.embeds_states or self.embeds_tasks


def _attached(item: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    stored = item.get("ext") or {}
    if not keys or not stored:
        return {}
    names = stored.keys() if ALL in keys else [k for k in keys if k in stored]
    return {name: json.loads(stored[name]) for name in names}


def _event(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    return {name: stored[name] for name in EVENT_FIELDS if stored.get(name) is not None}


def _element(item: dict[str, Any], fields: tuple[str, ...], completed_ms: int | None) -> dict[str, Any]:
    """Common shape of services, states and tasks. `completed_ms` is when the element completed,
    by its own end event or by its parent's (then only the timestamp is known)."""
    view: dict[str, Any] = {name: item[name] for name in fields if item.get(name) is not None}
    view["started"] = _event(item["started"])
    if item.get("completed") is not None:
        view["completed"] = _event(item["completed"])
        view["duration"] = item["completed_ms"] - item["started_ms"]
        for name in ("disposition", "disposition_desc"):
            if item.get(name) is not None:
                view[name] = item[name]
    elif completed_ms is not None:
        view["completed"] = {"timestamp": format_ms(completed_ms)}
        view["duration"] = completed_ms - item["started_ms"]
    return view


@dataclass
class Conversation:
    """One service with (optionally) its states and tasks, as read in one Query."""

    service: dict[str, Any]
    states: dict[int, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    locks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_items(cls, items: list[dict[str, Any]]) -> Conversation | None:
        """Build from the items of one partition; None when the service item is missing."""
        service = None
        states: dict[int, dict[str, Any]] = {}
        tasks: dict[int, dict[str, Any]] = {}
        locks: list[dict[str, Any]] = []
        for item in items:
            sk = item["SK"]
            if sk == SERVICE_SK:
                service = item
            elif sk.startswith(STATE_PREFIX):
                states[item["state_id"]] = item
            elif sk.startswith(TASK_PREFIX):
                tasks[item["task_id"]] = item
            else:
                locks.append(item)
        return cls(service, states, tasks, locks) if service is not None else None

    # ---- completion, applying cascades

    @property
    def service_completed_ms(self) -> int | None:
        return self.service.get("completed_ms")

    def state_completed_ms(self, state: dict[str, Any]) -> int | None:
        """When a state completed: its own end, or the service's end if that came first."""
        own = state.get("completed_ms")
        return own if own is not None else self.service_completed_ms

    def task_completed_ms(self, task: dict[str, Any]) -> int | None:
        """When a task completed: its own end, else the earliest end of its state or service."""
        if task.get("completed_ms") is not None:
            return task["completed_ms"]
        candidates = [self.service_completed_ms]
        if task.get("state_id") is not None and task["state_id"] in self.states:
            candidates.append(self.states[task["state_id"]].get("completed_ms"))
        ends = [ms for ms in candidates if ms is not None]
        return min(ends) if ends else None

    def of_kind(self, kind: str) -> tuple[dict[int, dict[str, Any]], Callable[[dict[str, Any]], int | None]]:
        """The states or the tasks ("state" / "task") by id, with the function telling when one completed."""
        if kind == "state":
            return self.states, self.state_completed_ms
        return self.tasks, self.task_completed_ms

    # ---- views

    def service_view(self, selection: Selection) -> dict[str, Any]:
        service = self.service
        view = _element(service, ("service_id", "service_type", "customer_id", "contact_key", "est_duration"),
                        self.service_completed_ms)
        view["expiration_time"] = format_ms(service["expires_ms"])
        view.update(_attached(service, selection.own))
        if selection.embeds_states:
            states = [self.states[i] for i in sorted(self.states)]
            nested = Selection(state=selection.state, own=selection.state, task=selection.task)
            if selection.active_states:
                view["active_states"] = [self.state_view(s, nested) for s in states if self.state_completed_ms(s) is None]
            if selection.completed_states:
                view["completed_states"] = [self.state_view(s, nested)
                                            for s in states if self.state_completed_ms(s) is not None]
        if selection.embeds_tasks:
            self._embed_tasks(view, sorted(self.tasks), selection)
        return view

    def state_view(self, state: dict[str, Any], selection: Selection) -> dict[str, Any]:
        completed = self.state_completed_ms(state)
        view = _element(state, ("state_id", "state_type", "service_id", "previous_state_id", "est_duration"),
                        completed)
        view.update(_attached(state, selection.own | selection.state))
        if selection.embeds_tasks:
            ids = sorted(i for i, t in self.tasks.items() if t.get("state_id") == state["state_id"])
            self._embed_tasks(view, ids, selection)
        return view

    def task_view(self, task: dict[str, Any], selection: Selection) -> dict[str, Any]:
        view = _element(task, ("task_id", "task_type", "service_id", "state_id", "est_duration"),
                        self.task_completed_ms(task))
        view.update(_attached(task, selection.own | selection.task))
        return view

    def _embed_tasks(self, view: dict[str, Any], ids: list[int], selection: Selection) -> None:
        nested = Selection(own=selection.task)
        tasks = [self.tasks[i] for i in ids]
        if selection.active_tasks:
            view["active_tasks"] = [self.task_view(t, nested) for t in tasks if self.task_completed_ms(t) is None]
        if selection.completed_tasks:
            view["completed_tasks"] = [self.task_view(t, nested) for t in tasks if self.task_completed_ms(t) is not None]
