"""The summary of a service's active children on its item (docs/DESIGN.md, "Ends in one round trip").

`act` maps each active state and task (`s<id>`, `t<id>`) to what its completion event needs and
only its own item holds: its type (`y`), its start (`m`, epoch ms) and, for a task, its state (`s`).
With it, a task's end and a service's end commit their events without reading the children first:
the feed's publisher completes those events from the record's old image (lib.feed.events), so the
end is one write, its minimum.

The summary is trusted only while `ax` is on the item, and then it holds exactly the active
children (so `size(act) = open`). Every write that starts or completes a child keeps it so (the
write is conditional on `ax`) or removes `ax` when it cannot: a summary that would pass SIZE_MAX
bytes (every write of the item, and of its index entries, is billed per KB of it: about 25 bytes
per child with a short type, so some 40 active children), a state end too big for one transaction,
a writer that did not read the item, or one that read it without a trusted summary (one may have
been started since, without this write's child). A start that finds no active child (`open` 0, no
`ax`) starts a new summary. `act` itself is never removed while `ax` is on the item, so its nested paths are always
valid for a write conditional on `ax`; it goes, with `ax`, when the service completes. Without
`ax` (items written before the summary, an import's that would not fit, the cases above) a task's end reads the task, as
before: 2 round trips; a service's end is still one write when the item's counts are known, and the
publisher reads the children they count (lib.store.events.cascade_read)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lib.store.items import Child, StateItem, TaskItem

SIZE_MAX = 1024  # bytes the summary may add to the item (DynamoDB's measure, estimated from above)

ACT, EXACT = "act", "ax"

STARTS = {"StateStarted": "state", "TaskStarted": "task"}
ENDS = {"StateCompleted": "state", "TaskCompleted": "task"}


@dataclass(frozen=True)
class Active:
    """One active state or task as its completion event needs it (from its item or the summary)."""

    kind: str  # "state" | "task"
    child_id: int
    type: Any
    started_ms: int
    state_id: int | None = None  # a task's state


def key(kind: str, child_id: int) -> str:
    return f"{kind[0]}{child_id}"


def of_child(child: Child) -> Active:
    if isinstance(child, StateItem):
        return Active("state", child.state_id, child.state_type, child.started_ms)
    assert isinstance(child, TaskItem)
    return Active("task", child.task_id, child.task_type, child.started_ms, child.state_id)


def of_entry(name: str, entry: dict[str, Any]) -> Active:
    """A summary entry (`act` of a stored item) as the child it stands for."""
    kind = "state" if name[0] == "s" else "task"
    return Active(kind, int(name[1:]), entry.get("y"), int(entry["m"]), entry.get("s"))


def _entry_of(child: Active) -> tuple[str, dict[str, Any]]:
    entry: dict[str, Any] = {"m": child.started_ms}
    if child.type is not None:
        entry["y"] = child.type
    if child.kind == "task" and child.state_id is not None:
        entry["s"] = child.state_id
    return key(child.kind, child.child_id), entry


def _entry(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The summary entry of a child a Started event starts."""
    kind, data = STARTS[event["name"]], event["data"]
    return _entry_of(Active(kind, data[f"{kind}_id"], data[f"{kind}_type"], event["at"], data.get("state_id")))


def moves(entries: list[dict[str, Any]]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """The children `entries` start (their summary entries) and complete (their keys)."""
    added: list[tuple[str, dict[str, Any]]] = []
    removed: list[str] = []
    for event in entries:
        name = event["name"]
        if name in STARTS:
            added.append(_entry(event))
        elif name in ENDS:
            kind = ENDS[name]
            removed.append(key(kind, event["data"][f"{kind}_id"]))
    return added, removed


def _bytes(name: str, entry: dict[str, Any]) -> int:
    """An entry's size as DynamoDB counts it, from above: its name, the map, 8 bytes per number."""
    type_ = entry.get("y")
    return len(name) + 6 + 10 + (0 if type_ is None else 4 + len(str(type_).encode())) + (10 if "s" in entry else 0)


def fits(act: dict[str, Any], added: list[tuple[str, dict[str, Any]]], removed: list[str]) -> bool:
    """Whether the summary `act`, with these entries added and removed, stays within SIZE_MAX."""
    kept = sum(_bytes(name, entry) for name, entry in act.items() if name not in removed)
    return kept + sum(_bytes(name, entry) for name, entry in added) <= SIZE_MAX


def new(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary attributes of a new service item whose first write commits `entries`."""
    added, _ = moves(entries)
    return _exact(added)


def of_active(children: list[Child]) -> dict[str, Any]:
    """The summary attributes of a service item written whole with these active children (an
    import): exact, when it fits."""
    return _exact([_entry_of(of_child(c)) for c in children])


def _exact(added: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {ACT: dict(added), EXACT: True} if fits({}, added, []) else {}
