"""A stream record -> the events it carries (lib/feed/events.py), and the events' schemas: pure, no
moto. Records are built by hand in the format the store writes (docs/DESIGN.md, Change feed)."""

from __future__ import annotations

import hashlib

import pytest

from lib.feed.events import EVENT_NAMES, UnpublishableRecord, events_of
from lib.store.codec import encode_item
from tests.feed_support import SCHEMAS, entry, record, schema_errors, service_image, validators

STARTED = {"timestamp": "2026-01-02T03:04:05.006Z", "channel": "ivr"}


def test_a_service_start_publishes_its_events_numbered_from_one():
    new = service_image("7", 2, [entry("ServiceStarted", 1_767_323_045_006, service_type="billing"),
                                 entry("StateStarted", 1_767_323_045_007, state_id=1)])
    events = events_of(record("INSERT", new=new))
    assert [(e.name, e.sequence) for e in events] == [("ServiceStarted", 1), ("StateStarted", 2)]
    detail = events[0].detail()
    assert detail == {"schema_version": 1, "event_id": hashlib.sha256(b"acme||7|1").hexdigest()[:32],
                      "occurred_at": "2026-01-02T03:04:05.006Z", "tenant": "acme", "group": None,
                      "service_id": "7", "customer_id": "c-1", "contact_key": None, "sequence": 1,
                      "data": {"service_type": "billing"}}


def test_a_modify_numbers_its_events_after_the_old_count():
    old = service_image("7", 5, [entry("StateStarted")])
    new = service_image("7", 8, [entry("StateCompleted"), entry("TaskCompleted"), entry("AttachedDataChanged")])
    assert [(e.name, e.sequence) for e in events_of(record("MODIFY", new=new, old=old))] == [
        ("StateCompleted", 6), ("TaskCompleted", 7), ("AttachedDataChanged", 8)]


def test_a_write_that_left_seq_alone_publishes_nothing_even_with_a_stale_ev():
    old = service_image("7", 3, [entry("ServiceStarted")])
    new = service_image("7", 3, [entry("ServiceStarted")])
    assert events_of(record("MODIFY", new=new, old=old)) == []
    # written before the feed existed (no seq at all): nothing either
    assert events_of(record("MODIFY", new=service_image("7", None), old=service_image("7", None))) == []


def test_a_service_written_over_a_fence_counts_its_events_from_zero():
    """An import that takes over the id of a deleted conversation (its fence, `type` erased, with the
    old conversation's `seq`) writes a new service item: its events, if any, are numbered from 1."""
    fence = encode_item({**{k: v for k, v in _plain(service_image("7", 9)).items()}, "type": "erased", "cx": 3})
    assert events_of(record("MODIFY", new=service_image("7", 0), old=fence)) == []
    new = service_image("7", 2, [entry("ServiceStarted"), entry("StateStarted")])
    assert [(e.name, e.sequence) for e in events_of(record("MODIFY", new=new, old=fence))] == [
        ("ServiceStarted", 1), ("StateStarted", 2)]


def test_pending_events_are_completed_from_the_images():
    """An end that relied on the summary of active children (lib.store.summary): a TaskCompleted named
    by its entry in the old image, a ServiceCompleted followed by the old image's summary as its
    cascade, counted in `cx`; an old image without the entry is unpublishable."""
    act = {"s1": {"m": 1_000, "y": "greet"}, "t2": {"m": 1_500, "y": 7, "s": 1}, "t3": {"m": 2_000}}
    old = {**_plain(service_image("7", 4)), "act": act, "ax": True, "open": 3, "started_ms": 500}
    ended = {"name": "TaskCompleted", "at": 3_000, "from": "t2", "data": {
        "task_id": 2, "task_type": None, "state_id": None, "completed": {"timestamp": "x"}, "disposition": None,
        "disposition_desc": None, "duration": None, "reason": "request"}}
    new = {**old, "seq": 5, "ev": [ended]}
    [task] = events_of(record("MODIFY", new=encode_item(new), old=encode_item(old)))
    assert (task.sequence, task.data["task_type"], task.data["state_id"], task.data["duration"]) == (5, 7, 1, 1_500)
    assert list(task.data) == ["task_id", "task_type", "state_id", "completed", "disposition", "disposition_desc",
                               "duration", "reason"]
    completed = {"name": "ServiceCompleted", "at": 4_000, "cascade": True, "data": {
        "reason": "request", "completed": {"timestamp": "x"}, "disposition": None, "disposition_desc": None,
        "duration": None}}
    new = {**old, "seq": 5, "cx": 3, "ev": [completed]}
    events = events_of(record("MODIFY", new=encode_item(new), old=encode_item(old)))
    assert [(e.name, e.sequence, e.data.get("state_id"), e.data.get("task_id")) for e in events] == [
        ("ServiceCompleted", 5, None, None), ("StateCompleted", 6, 1, None), ("TaskCompleted", 7, 1, 2),
        ("TaskCompleted", 8, None, 3)]
    assert events[0].data["duration"] == 3_500 and events[3].data["duration"] == 2_000
    with pytest.raises(UnpublishableRecord, match="lacks"):
        events_of(record("MODIFY", new=encode_item({**old, "seq": 5, "ev": [{**ended, "from": "t9"}]}),
                         old=encode_item(old)))
    with pytest.raises(UnpublishableRecord, match="advanced by 3 .* holds 4"):  # cx not counting the cascade
        events_of(record("MODIFY", new=encode_item({**new, "cx": 2}), old=encode_item(old)))


def _plain(image: dict) -> dict:
    from lib.store.codec import decode_item
    return decode_item(image)


@pytest.mark.parametrize("old_seq, new_seq, ev, why", [
    (2, 4, [entry("StateStarted")], "advanced by 2"),  # fewer events than the advance
    (2, 3, [entry("StateStarted"), entry("TaskStarted")], "advanced by 1"),  # more
    (2, 3, None, "ev holds no events"),
    (5, 4, [entry("StateStarted")], "went back"),
    (0, 1, [entry("NoSuchEvent")], "not an event of the feed"),
    (0, 1, [{"name": "StateStarted", "data": {}}], "without its time"),
])
def test_a_record_that_breaks_the_rules_is_an_error_never_a_guess(old_seq, new_seq, ev, why):
    old = service_image("7", old_seq) if old_seq else None
    with pytest.raises(UnpublishableRecord, match=why):
        events_of(record("MODIFY" if old else "INSERT", new=service_image("7", new_seq, ev), old=old))


def test_an_erasure_record_publishes_one_event_per_deleted_service_with_its_own_sequence():
    erasure = encode_item({"PK": "acme|sales#ERASE#ab12", "SK": "#ERASE", "type": "erasure", "tenant": "acme|sales",
                           "erasure_id": "ab12", "pks": ["x"], "created_ms": 1, "ev": [
                               {**entry("ServicePurged", 1_767_323_045_000), "service_id": "7", "customer_id": None,
                                "contact_key": "k-1", "sequence": 4},
                               {**entry("ServicePurged", 1_767_323_045_000), "service_id": "9", "customer_id": "c-9",
                                "contact_key": None, "sequence": 12}]})
    events = events_of(record("INSERT", new=erasure))
    assert [(e.service_id, e.sequence, e.customer_id, e.contact_key) for e in events] == [
        ("7", 4, None, "k-1"), ("9", 12, "c-9", None)]
    assert events[0].detail()["tenant"] == "acme" and events[0].detail()["group"] == "sales"
    # its later writes (the erasure finishing) and its removal publish nothing
    assert events_of(record("MODIFY", new=erasure, old=erasure)) == []
    assert events_of(record("REMOVE", old=erasure)) == []


def test_a_ttl_removal_of_a_service_is_service_expired_and_a_request_removal_is_nothing():
    old = service_image("7", 6, [entry("StateStarted")], expires_ms=1_767_323_045_006)
    expired = events_of(record("REMOVE", old=old, ttl=True, created=1_767_400_000))
    assert [(e.name, e.sequence, e.occurred_ms) for e in expired] == [("ServiceExpired", 7, 1_767_400_000_000)]
    assert expired[0].data == {"expiration_time": "2026-01-02T03:04:05.006Z"}
    assert events_of(record("REMOVE", old=old)) == []  # a DELETE or purge: its erasure record says it


def test_states_tasks_and_other_items_are_ignored():
    state = encode_item({"PK": "acme|#C#7", "SK": "S#0000000001", "type": "state", "seq": 9,
                         "ev": [entry("StateStarted")]})
    for change in ("INSERT", "MODIFY"):
        assert events_of(record(change, new=state, old=state if change == "MODIFY" else None)) == []
    assert events_of(record("REMOVE", old=state, ttl=True)) == []
    grant = encode_item({"PK": "ACCESS#arn", "SK": "#GRANT", "role": "Supervisor"})
    assert events_of(record("INSERT", new=grant)) == []


def test_event_ids_depend_on_tenant_service_and_sequence_only():
    def first_id(tenant: str, service_id: str, at: int) -> str:
        new = service_image(service_id, 1, [entry("ServiceStarted", at)], tenant=tenant)
        return events_of(record("INSERT", new=new, sequence=at))[0].event_id

    same = first_id("acme|", "7", 1)
    assert same == first_id("acme|", "7", 2)  # a redelivery (another record, another time): the same id
    assert len({same, first_id("acme|x", "7", 1), first_id("|", "7", 1), first_id("acme|", "8", 1)}) == 4


def test_an_imported_conversations_event_ids_also_name_its_incarnation():
    """An import keeps ids (a deleted id may come back) and its service item carries `inc`, the run's
    token: every event of that conversation, whichever record carries it, has an id of its own."""
    def image(seq: int, ev: list, inc: str | None, **changes: object) -> dict:
        plain = {**_plain(service_image("7", seq, ev)), **changes}
        return encode_item({**plain, "inc": inc} if inc else plain)

    def ids(inc: str | None) -> list[str]:
        started = events_of(record("INSERT", new=image(1, [entry("ServiceStarted")], inc)))
        deleted = events_of(record("MODIFY", old=image(1, [], inc),
                                   new=image(2, [entry("ServiceDeleted")], inc, type="erased")))
        expired = events_of(record("REMOVE", old=image(1, [], inc), ttl=True))
        purged_entry = {**entry("ServicePurged"), "service_id": "7", "customer_id": None, "contact_key": None,
                        "sequence": 2, **({"inc": inc} if inc else {})}
        purged = events_of(record("INSERT", new=encode_item({
            "PK": "acme|#ERASE#ab", "SK": "#ERASE", "type": "erasure", "tenant": "acme|", "erasure_id": "ab",
            "pks": ["x"], "created_ms": 1, "ev": [purged_entry]})))
        found = [*started, *deleted, *expired, *purged]
        assert [(e.name, e.sequence, e.incarnation) for e in found] == [
            ("ServiceStarted", 1, inc), ("ServiceDeleted", 2, inc), ("ServiceExpired", 2, inc),
            ("ServicePurged", 2, inc)]
        return [e.event_id for e in found]

    made_here, imported, imported_again = ids(None), ids("run-1"), ids("run-2")
    assert made_here[0] == hashlib.sha256(b"acme||7|1").hexdigest()[:32]
    assert imported[0] == hashlib.sha256(b"acme||7|1|run-1").hexdigest()[:32]
    assert not set(made_here) & set(imported) and not set(imported) & set(imported_again)
    assert ids("run-1") == imported  # stable across redeliveries


# ---------------------------------------------------------------- schemas

EXAMPLES = {  # data as the store writes it (every field present, null when the element has none)
    "ServiceStarted": {"service_type": "billing", "est_duration": None, "started": STARTED,
                       "expiration_time": "2031-01-01T00:00:00.000Z", "auto_complete_after": None,
                       "attached_keys": ["channel"]},
    "ServiceAssociated": {"previous_customer_id": None, "customer_id": "c-2", "changed": ["service_type"],
                          "attached_keys": []},
    "ServiceCompleted": {"reason": "auto_complete", "completed": {"timestamp": "2026-01-02T04:00:00.000Z"},
                         "disposition": None, "disposition_desc": None, "duration": 3_354_994},
    "ServiceExpirationChanged": {"expiration_time": "2026-02-01T00:00:00.000Z"},
    "ServiceDeleted": {}, "ServicePurged": {},
    "ServiceExpired": {"expiration_time": "2026-02-01T00:00:00.000Z"},
    "StateStarted": {"state_id": 2, "state_type": 5, "previous_state_id": 1, "est_duration": 60, "started": STARTED,
                     "attached_keys": []},
    "StateCompleted": {"state_id": 2, "state_type": 5, "completed": STARTED, "disposition": "ok",
                       "disposition_desc": "fine", "duration": 0, "reason": "transition"},
    "TaskStarted": {"task_id": 1, "task_type": "lookup", "state_id": None, "est_duration": None, "started": STARTED,
                    "attached_keys": ["a", "b"]},
    "TaskCompleted": {"task_id": 1, "task_type": "lookup", "state_id": 2, "completed": STARTED, "disposition": 3,
                      "disposition_desc": None, "duration": 10, "reason": "state_completed"},
    "AttachedDataChanged": {"element": "task", "task_id": 1, "keys": ["a"]},
}


def _delivered(name: str, data: dict) -> dict:
    event = events_of(record("INSERT", new=service_image("7", 1, [entry(name, **data)])))[0]
    return {"source": "context-services", "detail-type": name, "detail": event.detail()}


def test_there_is_a_schema_for_every_event_and_the_envelope():
    assert sorted(validators()) == sorted(EVENT_NAMES) == sorted(EXAMPLES)
    assert (SCHEMAS / "envelope.json").is_file()


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_each_event_as_published_is_valid_by_its_schema(name):
    assert schema_errors(_delivered(name, EXAMPLES[name])) == []


@pytest.mark.parametrize("name, change", [
    ("StateStarted", {"state_id": "2"}),  # ids are integers
    ("ServiceCompleted", {"reason": "because"}),
    ("TaskCompleted", {"surprise": 1}),  # a field the schema does not describe
    ("AttachedDataChanged", {"element": "state", "task_id": 1}),  # a state's change names its state
    ("ServiceStarted", {"started": {"channel": "ivr"}}),  # an event without its timestamp
])
def test_the_schemas_see_a_wrong_event(name, change):
    assert schema_errors(_delivered(name, {**EXAMPLES[name], **change})) != []


def test_the_envelope_schema_sees_a_wrong_envelope():
    event = _delivered("ServiceDeleted", {})
    for field, value in (("sequence", 0), ("event_id", "x"), ("occurred_at", "2026-01-02"), ("service_id", 7)):
        assert schema_errors({**event, "detail": {**event["detail"], field: value}}) != [], field
    assert schema_errors({**event, "detail-type": "ServicePurged"}) == []  # same shape, its own schema
    assert schema_errors({**event, "detail-type": "Nope"}) == ["no schema for detail-type 'Nope'"]


def test_the_readme_lists_every_event_with_its_schema_and_its_example_is_valid():
    import json
    import re

    readme = (SCHEMAS.parents[1] / "README.md").read_text()
    section = readme.split("## Change feed", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"^\| `\w+`", line)]
    listed = [name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])]
    linked = [name for row in rows for name in re.findall(r"\(schemas/events/(\w+)\.json\)", row)]
    assert sorted(listed) == sorted(linked) == sorted(EVENT_NAMES)
    assert all((SCHEMAS / f"{name}.json").is_file() for name in linked)
    example = json.loads(re.search(r"```json\n(\{.*?\n\})\n```", section, re.S).group(1))
    assert schema_errors(example) == []


def test_a_ttl_removal_read_back_with_get_records_is_still_service_expired():
    """The re-drive and the local run read records with GetRecords, whose identity fields are
    PrincipalId / Type; Lambda's are principalId / type. Delivered, both are ServiceExpired."""
    from datetime import UTC, datetime

    from lib.feed.redrive import delivered_record

    old = service_image("9", 3, [entry("ServiceDeleted")])
    read = {"eventID": "e", "eventName": "REMOVE", "awsRegion": "us-east-1",
            "userIdentity": {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"},
            "dynamodb": {"ApproximateCreationDateTime": datetime(2026, 1, 1, tzinfo=UTC), "Keys": {},
                         "OldImage": old, "SequenceNumber": "5", "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    delivered = delivered_record(read, "arn:stream")
    assert delivered["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert [(e.name, e.sequence) for e in events_of(delivered)] == [("ServiceExpired", 4)]
    assert events_of(delivered_record({**read, "userIdentity": None}, "arn:stream")) == []  # a request's removal


def _child(kind: str, child_id: int, started_ms: int, type_=None, state_id=None) -> dict:
    """A stored state or task of service 7 (as the table holds it, decoded)."""
    from lib.store.items import StateItem, TaskItem
    common = {"tenant": "acme|", "service_id": "7", "started": {}, "started_ms": started_ms}
    child = StateItem(state_id=child_id, state_type=type_, **common) if kind == "state" else \
        TaskItem(task_id=child_id, task_type=type_, state_id=state_id, **common)
    return child.to_item()


def test_an_end_without_a_trusted_summary_completes_its_cascade_from_the_children_it_counted():
    """A service's end that relied on its counts, not on a summary (no `ax` in the old image): the
    publisher reads the conversation's active children and publishes them only when they are exactly
    the ones the old image counts (`open`, `open_sum`); a task of a state whose big end was completing
    it (`cascading`) is left out (its event came with that end). Otherwise, or with no reader, the
    record is unpublishable: nothing is guessed."""
    from lib.store.events import child_hash
    children = [_child("state", 1, 1_000, "greet"), _child("task", 2, 1_500, 7, state_id=1),
                _child("task", 3, 2_000), _child("task", 4, 2_100, "x", state_id=5)]
    counted = child_hash("state", 1) + child_hash("task", 2) + child_hash("task", 3)
    old = {**_plain(service_image("7", 4)), "act": {"t9": {"m": 1}}, "open": 3, "open_sum": counted,
           "cascading": {"5": 2_500}, "started_ms": 500}  # a stale `act` without `ax`: not used
    completed = {"name": "ServiceCompleted", "at": 4_000, "cascade": True, "data": {
        "reason": "request", "completed": {"timestamp": "x"}, "disposition": None, "disposition_desc": None,
        "duration": None}}
    new = record("MODIFY", new=encode_item({**old, "seq": 5, "cx": 3, "ev": [completed]}), old=encode_item(old))
    asked = []

    def read(pk):
        asked.append(pk)
        return children

    events = events_of(new, read)
    assert asked == [old["PK"]]
    assert [(e.name, e.sequence, e.data.get("state_id"), e.data.get("task_id")) for e in events] == [
        ("ServiceCompleted", 5, None, None), ("StateCompleted", 6, 1, None), ("TaskCompleted", 7, 1, 2),
        ("TaskCompleted", 8, None, 3)]
    assert (events[1].data["state_type"], events[2].data["task_type"], events[3].data["duration"]) == ("greet", 7, 2_000)
    with pytest.raises(UnpublishableRecord, match="no reader"):
        events_of(new)
    with pytest.raises(UnpublishableRecord, match="not the 3 the end counted"):  # one of them erased
        events_of(new, lambda pk: children[1:])
    with pytest.raises(UnpublishableRecord, match="not the 3 the end counted"):  # as many, other ones
        events_of(new, lambda pk: [*children[:2], _child("task", 6, 2_000)])
    # Nothing was active: nothing to read.
    empty = {**old, "open": 0, "open_sum": 0}
    none = record("MODIFY", new=encode_item({**empty, "seq": 5, "ev": [completed]}), old=encode_item(empty))
    assert [e.name for e in events_of(none)] == ["ServiceCompleted"]
