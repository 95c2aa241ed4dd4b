"""Why an operation costs more than the rule's minimum (bench/rule.py): one line per operation or
growth case, describing what the code does, kept current by whoever changes that code.

Looked up as `growth.<case>` first for a growth case, then by the operation's name. A reason is only
shown beside a miss, and a miss without one says so; an entry that no miss uses is listed as unused
in the report, so that a stale one is noticed and removed.
"""

from __future__ import annotations

NONE = "(no reason recorded in bench/reasons.py)"

_ID_FIRST = ("the id comes from an UpdateItem of the service's counter (a transaction cannot return a value); "
             "the item is then written in a transaction that checks the service again")
_IDEMPOTENCY = ("Powertools Idempotency writes its record before the work (PutItem) and completes it after "
                "(UpdateItem), outside the work's own write")
_CHILD_LIST = ("a state or task list reads the conversation's item collection from its start (the service and "
               "every state; for tasks every task too) and filters here: a child's status depends on its "
               "service's (a task's on its state's) end, applied on read")
_COMPOSITE = ("find-or-create at three levels: the service's lock is read (GetItem) and the owner's active "
              "services searched (Query) before the service and its lock are written in one transaction; the "
              "state and the task each take an id from the service's counter (UpdateItem), then are written with "
              "their lock in a transaction")

REASONS: dict[str, str] = {
    "start_service_with_idempotency_key": _IDEMPOTENCY + ", around the service's PutItem",
    "delete_service": ("the service item is deleted on its own first (the commit point: the conversation is gone "
                       "for every reader at once); then one Query finds the children and one BatchWriteItem per 25 "
                       "erases them at once rather than leaving them to TTL"),
    "put_service": ("the service item is updated first (the new expiration holds at once); then one Query finds "
                    "the children and one TransactWriteItems per 99 moves their TTL and records it on the service"),
    "start_composite_create": _COMPOSITE,
    "start_composite_create_with_idempotency_key": _COMPOSITE + "; and " + _IDEMPOTENCY,
    "start_composite_reuse": ("the service's lock, then the whole conversation it names (service, states, tasks "
                              "and locks, one Query) to find the state and the task by type"),
    "start_state": _ID_FIRST,
    "start_state_with_idempotency_key": _ID_FIRST + "; and " + _IDEMPOTENCY,
    "transition_state": "as start_state: the new id first, then one transaction (end the old state, put the new)",
    "transition_state_with_idempotency_key": "as transition_state; and " + _IDEMPOTENCY,
    "start_task": _ID_FIRST,
    "start_task_in_state": _ID_FIRST + " (and the state)",
    "start_task_with_idempotency_key": _ID_FIRST + "; and " + _IDEMPOTENCY,
    "end_task": "the task is read first: if it belongs to a state, the transaction must check that state",
    "get_task": ("a BatchGetItem of service and task, then a GetItem of the task's state when the task is "
                 "active: the state's end completes it (cascade applied on read)"),
    "get_state_embedded": ("with embedded tasks, one Query reads the whole conversation (service, every state, "
                           "every task) to find that state's tasks"),
    **{f"list_{kind}_{label}": _CHILD_LIST for kind in ("states", "tasks") for label in ("all", "active", "completed")},
    # Growth cases
    "growth.get_task": "as get_task",
    "growth.get_service_embedded": ("one Query of the whole conversation; its items, attached data included, pass "
                                    "DynamoDB's 1 MB page (though the answer does not), so one more Query per MB"),
    **{f"growth.list_{kind}_{label}first_page": _CHILD_LIST + "; beyond 1 MB, one more Query per MB"
       for kind in ("states", "tasks") for label in ("", "active_", "completed_")},
    "growth.list_states_embedded_first_page": _CHILD_LIST + "; beyond 1 MB, one more Query per MB",
    "growth.list_states_paging_all": (_CHILD_LIST + "; every page reads the collection again from its start, so "
                                      "paging through all reads O(N² / limit) items"),
    "growth.list_tasks_paging_all": (_CHILD_LIST + "; every page reads the collection again from its start, so "
                                     "paging through all reads O(N² / limit) items"),
    "growth.start_composite_reuse": ("the service's lock, then the whole conversation it names (one Query per MB, "
                                     "locks included) to find the state and the task by type: reads grow with the "
                                     "conversation"),
    "growth.put_service_ttl": ("the service item is updated first; then the children are read (one Query per MB) "
                               "and their TTL moved, one TransactWriteItems per 99"),
    "growth.delete_service": ("the service item is deleted on its own first; then the children are read (one "
                              "Query per MB) and erased, one BatchWriteItem per 25, rather than left to TTL"),
}


def key(*keys: str) -> str | None:
    """The first of `keys` that has a reason."""
    return next((candidate for candidate in keys if candidate in REASONS), None)


def reason(*keys: str) -> str:
    """The first reason recorded under one of `keys`, or NONE."""
    found = key(*keys)
    return REASONS[found] if found else NONE
