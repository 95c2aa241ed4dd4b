"""How a conversation is shown (§3): services, states and tasks as the API returns them, with the
completion cascades applied.

* Ending a service records the end once, on the service item; every state and task still active at
  that moment is shown completed at the service's end (read-time cascade: an end is one write,
  whatever the number of children). Auto-complete (§7) is a service end that happens at
  `last write + auto_complete_after` without a write: shown the same way from that moment.
* Ending a state writes the end into its active tasks in the same transaction (write-time cascade),
  so a task's own item says whether it completed; only while a big state end is still completing
  its tasks does the service item's `cascading` mark say so instead.
* An element completed by its parent completes at the later of the parent's end and its own start:
  no duration is negative.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lib.clock import format_ms
from lib.errors import PayloadTooLarge
from lib.store.items import Child, ServiceItem, StateItem, TaskItem

EVENT_FIELDS = ("timestamp", "session_id", "interaction_id", "application_type", "application_id",
                "resource_type", "resource_id", "media_type")
ALL = "*"
# No response passes 5 MB (Lambda answers at most 6 MB): lists end a page early, single reads 413.
RESPONSE_LIMIT = 5_000_000


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
    def parse(cls, extensions: list[str] | None, **embeds: bool) -> Selection:
        """`extensions` entries: `key`, `*`, `State.key`, `State.*`, `Task.key`, `Task.*`, and a bare
        `State` / `Task` meaning `State.*` / `Task.*` (8.5.1 wording)."""
        selection = cls(**{k: bool(v) for k, v in embeds.items()})
        for raw in extensions or []:
            key = raw.strip()
            if key in ("State", "Task"):
                key += "." + ALL
            if key.startswith("State."):
                selection.state.add(key[len("State."):])
            elif key.startswith("Task."):
                selection.task.add(key[len("Task."):])
            elif key:
                selection.own.add(key)
        return selection

    @property
    def embeds_states(self) -> bool:
        return self.active_states or self.completed_states

    @property
    def embeds_tasks(self) -> bool:
        return self.active_tasks or self.completed_tasks

    def nested_for_state(self) -> Selection:
        """What a state inside a service shows: its `State.` keys; no embedded arrays of its own."""
        return Selection(own=self.state)

    def for_tasks(self) -> Selection:
        """What a task embedded anywhere shows: its `Task.` keys."""
        return Selection(own=self.task)


def _attached(item: Child | ServiceItem, keys: set[str]) -> dict[str, Any]:
    stored = item.ext
    if not keys or not stored:
        return {}
    names = stored.keys() if ALL in keys else [k for k in keys if k in stored]
    return {name: json.loads(stored[name]) for name in names}


def _event(stored: dict[str, Any] | None) -> dict[str, Any]:
    return {name: stored[name] for name in EVENT_FIELDS if stored.get(name) is not None} if stored else {}


def _element(item: ServiceItem | Child, fields: tuple[str, ...], completed_ms: int | None) -> dict[str, Any]:
    """Common shape of services, states and tasks. `completed_ms` is when the element completed, by
    its own end event or by its parent's (then only the timestamp is known)."""
    values = item.__dict__
    view: dict[str, Any] = {name: values[name] for name in fields if values.get(name) is not None}
    view["started"] = _event(item.started)
    if item.completed_ms is not None:
        view["completed"] = _event(item.completed)
        view["duration"] = item.completed_ms - item.started_ms
        if item.disposition is not None:
            view["disposition"] = item.disposition
        if item.disposition_desc is not None:
            view["disposition_desc"] = item.disposition_desc
    elif completed_ms is not None:
        view["completed"] = {"timestamp": format_ms(completed_ms)}
        view["duration"] = completed_ms - item.started_ms
    return view


@dataclass
class Conversation:
    """A service with the children a read needs, and the clock reading the read is made at."""

    service: ServiceItem
    now: int
    states: dict[int, StateItem] = field(default_factory=dict)
    tasks: dict[int, TaskItem] = field(default_factory=dict)

    def add(self, children: list[Child]) -> Conversation:
        for child in children:
            if isinstance(child, StateItem):
                self.states[child.state_id] = child
            elif isinstance(child, TaskItem):
                self.tasks[child.task_id] = child
        return self

    # ---- completion, applying cascades

    @property
    def service_completed_ms(self) -> int | None:
        return self.service.completed_at(self.now)

    def completed_ms(self, child: Child) -> int | None:
        """When a state or task completed: its own end; else (for a task) its state's end still in
        flight; else its service's end. Never before its own start."""
        if child.completed_ms is not None:
            return child.completed_ms
        ends = []
        if isinstance(child, TaskItem) and child.state_id is not None:
            cascading = self.service.cascading.get(str(child.state_id))
            if cascading is not None:
                ends.append(cascading)
        if self.service_completed_ms is not None:
            ends.append(self.service_completed_ms)
        return max(min(ends), child.started_ms) if ends else None

    def is_active(self, child: Child) -> bool:
        return self.completed_ms(child) is None

    # ---- views

    def service_view(self, selection: Selection) -> dict[str, Any]:
        service = self.service
        view = _element(service, ("service_id", "service_type", "customer_id", "contact_key", "est_duration"),
                        self.service_completed_ms)
        view["expiration_time"] = format_ms(service.expires_ms)
        view.update(_attached(service, selection.own))
        if selection.embeds_states:
            nested = selection.nested_for_state()
            states = [self.states[i] for i in sorted(self.states)]
            if selection.active_states:
                view["active_states"] = [self.state_view(s, nested) for s in states if self.is_active(s)]
            if selection.completed_states:
                view["completed_states"] = [self.state_view(s, nested) for s in states if not self.is_active(s)]
        if selection.embeds_tasks:
            self._embed_tasks(view, sorted(self.tasks), selection)
        return view

    def state_view(self, state: StateItem, selection: Selection) -> dict[str, Any]:
        view = _element(state, ("state_id", "state_type", "service_id", "previous_state_id", "est_duration"),
                        self.completed_ms(state))
        view.update(_attached(state, selection.own | selection.state))
        if selection.embeds_tasks:
            ids = sorted(i for i, t in self.tasks.items() if t.state_id == state.state_id)
            self._embed_tasks(view, ids, selection)
        return view

    def task_view(self, task: TaskItem, selection: Selection) -> dict[str, Any]:
        view = _element(task, ("task_id", "task_type", "service_id", "state_id", "est_duration"),
                        self.completed_ms(task))
        view.update(_attached(task, selection.own | selection.task))
        return view

    def view(self, child: Child, selection: Selection) -> dict[str, Any]:
        return self.state_view(child, selection) if isinstance(child, StateItem) else self.task_view(child, selection)

    def _embed_tasks(self, view: dict[str, Any], ids: list[int], selection: Selection) -> None:
        nested = selection.for_tasks()
        tasks = [self.tasks[i] for i in ids]
        if selection.active_tasks:
            view["active_tasks"] = [self.task_view(t, nested) for t in tasks if self.is_active(t)]
        if selection.completed_tasks:
            view["completed_tasks"] = [self.task_view(t, nested) for t in tasks if not self.is_active(t)]


# What json.dumps(value, separators=(",", ":"), ensure_ascii=False) writes, with its encoder made once
# (json.dumps makes one per call when given settings): every reply and every view of a page.
compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def to_json(view: Any) -> str:
    """A view as the reply carries it (lib.api serialises with the same settings)."""
    return compact_json(view)


def _bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def size_of(view: Any) -> int:
    """Bytes of a view in the reply (as lib.api serialises it)."""
    return _bytes(to_json(view))


def fits_whole(view: dict[str, Any], list_route: str) -> dict[str, Any]:
    """A single read: its representation must fit in a reply, else 413 naming the route that pages it."""
    if size_of(view) > RESPONSE_LIMIT:
        raise too_large(list_route)
    return view


def too_large(list_route: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"the representation exceeds {RESPONSE_LIMIT} bytes; read it in pages with {list_route}")


class Page(list[dict[str, Any]]):
    """The views of a list reply, with their JSON texts (`texts`, made once while the page was
    filled): lib.api joins them instead of serialising the views again."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.used = 2  # "[]"
        self.cut = False  # ended early: the next view would have taken the reply past the limit

    def add(self, view: Any, route: str) -> bool:
        """Add a view, or end the page before it when it would take the reply past the limit (False);
        a view too big to be shown alone is a 413 naming `route`, the route that reads it in pages."""
        text = to_json(view)
        size = _bytes(text) + 1
        if self.used + size > RESPONSE_LIMIT:
            return self.refuse(route)
        self.used += size
        self.append(view)
        self.texts.append(text)
        return True

    def refuse(self, route: str) -> bool:
        """End the page before an element that cannot be shown in it (413 when it would be the first)."""
        if not self:
            raise too_large(route)
        self.cut = True
        return False

    @property
    def json(self) -> str:
        return "[" + ",".join(self.texts) + "]"


def fill_page(items: list[Any], view: Callable[[Any], Any], route: Callable[[Any], str]) -> tuple[Page, bool]:
    """The views of a page's items, ending early when the next would take the reply past the limit
    (§1 Size): (views, whether it ended early). An item too big to be shown alone is a 413 naming
    `route(item)`, the route that reads it in pages."""
    page = Page()
    for item in items:
        if not page.add(view(item), route(item)):
            break
    return page, page.cut
