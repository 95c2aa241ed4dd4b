"""Round trips a caller waits above the rule's minimum (bench/rule.py, rule 4; the measured chain,
bench/latency.py): for every operation and growth case the benchmark finds above it, either a proof
that the contract makes the minimum unreachable, or, where there is none, the statement that the extra
round trips are a choice of the code and what would remove them (`OPEN`).

docs/BENCHMARKS.md renders this list (bench/report.py). A run whose list of operations above the
minimum disagrees with it (an operation above the minimum with no entry, one whose extra round trips
exceed what its entry covers, or an entry no longer above the minimum) fails (bench/run.py), so a new
extra round trip is argued here or removed. Keys: the operation's name, `growth.<case>` for a growth
case (its largest extra over the sizes).

The proofs rest on DynamoDB's API: a write call names the keys of every item it writes or checks
before it is sent; a TransactWriteItems returns no values; a condition only sees the items the call
names; an item holds at most 400 KB. And on the rule's other parts: rule 3 (items read) and the
minimum of the other operations, which a design must not push above theirs to lower this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROOF = "proof"
OPEN = "open"


@dataclass(frozen=True)
class Argument:
    status: str  # PROOF: the contract forbids the minimum; OPEN: a choice of the code, not forced
    extra: int | None  # round trips above the minimum the argument covers (None: any, it grows with size)
    text: str
    from_size: int | None = None  # a growth case above the minimum only from this size on (None: at any size)


_CHILD_ID = (
    "The reply names the new {kind}'s id, and §1 makes ids start at 1 and increase within their service: the id "
    "is a function of how many {kind}s the service already has, which only the stored data knows. A {kind} cannot "
    "live inside the service item (400 KB per item, while §1 allows bodies of 128 KiB and a conversation of any "
    "number of {kind}s), nor be found by id through a map kept in one item (the same bound), so it is an item whose "
    "key holds its id. A write call names its keys before it is sent, and a TransactWriteItems returns nothing, so "
    "the call that stores the {kind} needs the id from an earlier answer: one read (or counter increment) before "
    "it. Guessing the id (e.g. always 1, or n+1 from an earlier request) fails whenever the guess is stale, then "
    "costs the read anyway, so the general case is 2 round trips.")
_STATUS_LIST = (
    "Which {kind}s are {label} depends on the service item: ending a service completes its active states and "
    "tasks (§4) in one change (end_service's minimum: the children are not written), and an auto-completed "
    "service completes them with no write at all (§7, at last write + auto_complete_after). So the page is one "
    "of two ranges (the {kind}s' own {label} range when the service is active; every {kind}, or none, when it "
    "is completed), and which one is known only from the service item. In one round trip the page's read is "
    "sent before that answer: it must read both candidates, or read one and discard it when the service "
    "turns out completed, up to `limit` items read and not returned, above rule 3's allowance (returned + the "
    "service + one per read call). Writing the completion onto the children instead raises end_service "
    "(their keys need a read) and has no write to hang an auto-completion on. Hence 2.")
_COMPOSITE = (
    "Proof of 2 (one read before the write). Creating is only allowed when no active service with these "
    "(customer_id, contact_key, service_type) exists (§4), including one started by the plain "
    "`POST /services/start`. A write's condition only sees items named by key, so in one call that condition "
    "must be read from an item keyed by those fields that says whether such a service is active now. A service "
    "stops being active by its end (whose path names only the service id), by association to another customer, "
    "by deletion, by expiry, and by auto-completion at last write + auto_complete_after (§7: no write happens "
    "then, and every write to the conversation, a task end included, moves the moment). Keeping that item true "
    "would make every one of those writes read the service first for its keys (each above its own minimum of "
    "1), and nothing is written at an auto-completion or expiry. So the write needs a read of the owner's active "
    "services (or a lock naming one) before it: 2 (the lock and the owner's active services, both named by the "
    "body, are read at once).")

ARGUMENTS: dict[str, Argument] = {
    "start_state": Argument(PROOF, 1, _CHILD_ID.format(kind="state")),
    "start_state_with_idempotency_key": Argument(PROOF, 1, "As start_state; the idempotency record is read in "
                                                 "the same BatchGetItem as the service and written in the same "
                                                 "transaction, adding nothing."),
    "start_task": Argument(PROOF, 1, _CHILD_ID.format(kind="task")),
    "start_task_in_state": Argument(PROOF, 1, "As start_task; the state it joins is checked in the same "
                                    "transaction (its key comes from the body), adding nothing."),
    "start_task_with_idempotency_key": Argument(PROOF, 1, "As start_task, the record read and written with it."),
    "transition_state": Argument(PROOF, 1, "The new state's id is chosen as a started state's (see start_state): "
                                 "the transaction that ends the old state and starts the new one atomically (§6) "
                                 "needs it in a key, so one read comes before it. The old state's active tasks "
                                 "are read in parallel with the service, adding nothing."),
    "transition_state_with_idempotency_key": Argument(PROOF, 1, "As transition_state, the record read and written "
                                                      "with it."),
    "end_state": Argument(PROOF, 1, (
        "Ending a state completes its active tasks (§6), and a task completed so must answer 409 to its own end "
        "(§2). Either the state's end writes its active tasks, in one transaction (one commit point, §2), whose "
        "keys are unknown until read (tasks start at any time): 2 round trips; or it writes only the state and "
        "the tasks read as completed through it, and then a task end (path: service and task id only) must "
        "check the state the task belongs to, which only the task item names: end_task goes from 1 to 2. One "
        "of the two operations pays the read; this design puts it on the state end, of which a conversation "
        "has fewer.")),
    "list_states_active": Argument(PROOF, 1, _STATUS_LIST.format(kind="state", label="active")),
    "list_states_completed": Argument(PROOF, 1, _STATUS_LIST.format(kind="state", label="completed")),
    "list_tasks_active": Argument(PROOF, 1, _STATUS_LIST.format(kind="task", label="active")),
    "list_tasks_completed": Argument(PROOF, 1, _STATUS_LIST.format(kind="task", label="completed")),
    "start_composite_create": Argument(PROOF, 1, _COMPOSITE),
    "start_composite_create_with_idempotency_key": Argument(PROOF, 1, (
        "As start_composite_create; the record is read with the lock and, the reply of a one-element request "
        "being known before its transaction (new ids are chosen before the write), written in it. (A request of "
        "several elements stores its reply after the last one: each element's create is its own commit, and a "
        "retry finds what the earlier ones made.)")),
    # Growth cases: the same operations on bigger conversations.
    "growth.start_state": Argument(PROOF, 1, "As start_state."),
    "growth.start_state_with_idempotency_key": Argument(PROOF, 1, "As start_state_with_idempotency_key."),
    "growth.start_task_with_idempotency_key": Argument(PROOF, 1, "As start_task_with_idempotency_key."),
    "growth.list_states_active_first_page": Argument(PROOF, 1, "As list_states_active."),
    "growth.list_states_completed_first_page": Argument(PROOF, 1, "As list_states_completed."),
    "growth.list_tasks_active_first_page": Argument(PROOF, 1, "As list_tasks_active."),
    "growth.list_tasks_completed_first_page": Argument(PROOF, 1, "As list_tasks_completed."),
}


def above(results: dict[str, Any]) -> dict[str, int]:
    """Every operation and growth case whose chain is above the rule's minimum, with its extra round
    trips (a growth case: the largest over its sizes)."""
    found: dict[str, int] = {}
    places = [(name, entry) for name, entry in results.get("operations", {}).items()]
    places += [(f"growth.{case}", entry) for case, sizes in results.get("growth", {}).items()
               for entry in sizes.values()]
    for where, entry in places:
        chain, least = entry.get("latency_round_trips"), entry.get("minimum_latency_round_trips")
        if chain is not None and least is not None and chain > least:
            found[where] = max(found.get(where, 0), chain - least)
    return found


def disagreements(results: dict[str, Any], arguments: dict[str, Argument] | None = None) -> list[str]:
    """Where the run's list of operations above the minimum and `arguments` differ: an extra round trip
    not argued, more extra round trips than an argument covers, or an argument for an operation the
    run measured at its minimum (stale). Operations and cases the run did not measure (or not at the
    size an argument starts from) are not judged."""
    arguments = ARGUMENTS if arguments is None else arguments
    found = above(results)
    problems = []
    for where, extra in sorted(found.items()):
        argument = arguments.get(where)
        if argument is None:
            problems.append(f"{where}: {extra} round trip(s) above the minimum, not argued in bench/above_minimum.py")
        elif argument.extra is not None and extra > argument.extra:
            problems.append(f"{where}: {extra} round trip(s) above the minimum, the argument covers {argument.extra}")
    for where in sorted(judged(results, arguments) - set(found)):
        problems.append(f"{where}: argued in bench/above_minimum.py but at the minimum in this run (stale)")
    return problems


def judged(results: dict[str, Any], arguments: dict[str, Argument] | None = None) -> set[str]:
    """The arguments a run can find stale: those of operations and growth cases it measured, and, for
    an argument that holds only from a size on (`from_size`), a growth case measured at that size at
    least (the quick run's conversations never reach a 1 MB page)."""
    arguments = ARGUMENTS if arguments is None else arguments
    measured = {name: None for name in results.get("operations", {})}
    measured |= {f"growth.{case}": max((int(size) for size in sizes), default=0)
                 for case, sizes in results.get("growth", {}).items()}
    return {where for where, argument in arguments.items() if where in measured and (
        argument.from_size is None or (measured[where] or 0) >= argument.from_size)}
