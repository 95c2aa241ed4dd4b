"""Why an operation costs more than the rule's minimum (bench/rule.py): one line per operation or
growth case, describing what the code does, kept current by whoever changes that code.

Looked up as `growth.<case>` first for a growth case, then by the operation's name. A reason is only
shown beside a miss, and a miss without one says so; an entry that no miss uses is listed as unused
in the report, so that a stale one is noticed and removed.
"""

from __future__ import annotations

NONE = "(no reason recorded in bench/reasons.py)"

_PARALLEL = "in parallel (one round trip of latency, {n} calls)"
_COUNTER = ("the service is read first for its id counter; one transaction then takes the next id on condition "
            "that the counter is unchanged (a transaction cannot return a value), re-checks the service and puts "
            "the item")
_WITH_RECORD = "; with an Idempotency-Key the record is read with the service (BatchGetItem) and put in the transaction"
_CHILD_LIST = ("the service item (GetItem) and the page (Query of the conversation's range of that kind) are read "
               + _PARALLEL.format(n=2) + "; one Query could serve both if it started at the service item")
_CHILD_STATUS_LIST = ("the service item is read first (GetItem: whether it is completed decides which range holds the "
                      "page), then the page (Query of the status index LSI1, or of the base range for a completed "
                      "service): two round trips, one after the other")
_COMPOSITE = ("the lock of (customer, contact key, service type) and the owner's active services (Query) are read "
              + _PARALLEL.format(n=2) + ", then one transaction writes the service, its state, its task, the lock "
              "and the lock's reference in the conversation (which erases the lock with it)")
_EMBEDDED_SERVICE = ("the service item with its states (one Query from the service item) and the tasks (one Query of "
                     "their range) are read " + _PARALLEL.format(n=2) + ": each kind has its own 1 MB page, so a "
                     "conversation whose stored items pass 1 MB (mostly the children's attached data, which the "
                     "reply leaves out) is still read in one round trip while neither kind's stored items pass it (one "
                     "Query through both kinds would be one call, and two round trips past 1 MB)")
_COMPLETED_OWNER = ("completed = ended (their own index partition) + still active past their auto-complete moment: "
                    "two Queries " + _PARALLEL.format(n=2) + "; the second reads the keys of the owner's services "
                    "past their auto-complete deadline not yet recorded (GSI6, by deadline), and those it returns "
                    "are then read whole (BatchGetItem)")

REASONS: dict[str, str] = {
    "get_service_embedded": _EMBEDDED_SERVICE,
    "get_state_embedded": ("the service item (GetItem) and the state with its tasks (Query of LSI2) are read "
                           + _PARALLEL.format(n=2)),
    "start_composite_create": _COMPOSITE,
    "start_composite_create_with_idempotency_key": (_COMPOSITE + "; with an Idempotency-Key the record is read with "
                                                    "the lock (BatchGetItem) and, for a one-element request, put in "
                                                    "the create's transaction (a request of several elements stores "
                                                    "the reply after its last element)"),
    "start_composite_reuse": ("the lock and the owner's active services (Query) are read " + _PARALLEL.format(n=2)
                              + " (whether the element creates is known only from the lock's answer, and a create "
                              "needs both), then what the lock names (BatchGetItem): three calls, two round trips"),
    "end_task": ("one transaction (the service item's `seq`, `ev` and summary of active children, the task's end) "
                 "that takes the TaskCompleted event's type, state and start from the summary, and the task's "
                 "read that a refusal needs (no trusted summary: then a second transaction with the values read) "
                 "are sent " + _PARALLEL.format(n=2)),
    "start_state": _COUNTER,
    "start_state_with_idempotency_key": _COUNTER + _WITH_RECORD,
    "start_task": _COUNTER,
    "start_task_in_state": _COUNTER + " (and moves the state's count of attached tasks)",
    "start_task_with_idempotency_key": _COUNTER + _WITH_RECORD,
    "transition_state": ("the service (GetItem: its id counter) and the old state with its tasks (Query of LSI2) are "
                         "read " + _PARALLEL.format(n=2) + ", then one transaction ends the state with its active "
                         "tasks and starts the new one"),
    "transition_state_with_idempotency_key": ("as transition_state, the record read with the service (BatchGetItem) "
                                              "and put in the transaction"),
    "end_state": ("the state, its tasks (one Query of LSI2: its active tasks complete in the same transaction, "
                  "write-time cascade) and the service item (its summary of active children, which the end keeps) "
                  "are read " + _PARALLEL.format(n=3) + ", then the transaction"),
    **{f"list_{kind}_all": _CHILD_LIST for kind in ("states", "tasks")},
    **{f"list_{kind}_{label}": _CHILD_STATUS_LIST for kind in ("states", "tasks") for label in ("active", "completed")},
    "list_customer_services_completed": _COMPLETED_OWNER,
    "list_anonymous_services_completed": _COMPLETED_OWNER,
    # Growth cases
    "growth.get_service_embedded": _EMBEDDED_SERVICE,
    **{f"growth.list_{kind}_first_page": _CHILD_LIST for kind in ("states", "tasks")},
    **{f"growth.list_{kind}_{label}_first_page": _CHILD_STATUS_LIST
       for kind in ("states", "tasks") for label in ("active", "completed")},
    "growth.list_states_embedded_first_page": ("the service item, the page of states (LSI1) and their tasks (one "
                                               "Query of LSI2 over the page's range of states) are read "
                                               + _PARALLEL.format(n=3)),
    "growth.list_states_paging_all": _CHILD_LIST + ", on every page",
    "growth.list_tasks_paging_all": _CHILD_LIST + ", on every page",
}


def key(*keys: str) -> str | None:
    """The first of `keys` that has a reason."""
    return next((candidate for candidate in keys if candidate in REASONS), None)


def reason(*keys: str) -> str:
    """The first reason recorded under one of `keys`, or NONE."""
    found = key(*keys)
    return REASONS[found] if found else NONE
