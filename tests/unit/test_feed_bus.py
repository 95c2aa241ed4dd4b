"""Events -> PutEvents calls, with retries of what EventBridge refuses (lib/feed/bus.py), and a batch of
stream records -> batch item failures (lib/feed/publisher.py): pure, with a stub EventBridge client
and a fake clock (no moto, no sleeping)."""

from __future__ import annotations

import json
import time

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError, EndpointConnectionError

from lib.feed import bus, publisher
from tests.feed_support import Context, entry, record, service_image

DESTINATION = bus.Destination("feed-test", "context-services")


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch) -> list[float]:
    """The publisher's back-off pauses (bus.wait) are recorded, not slept: a test whose refusals last
    slept up to the function's deadline (seconds of wall per test)."""
    paused: list[float] = []
    monkeypatch.setattr(bus, "wait", paused.append)
    return paused


class StubEvents:
    """PutEvents that refuses what `refuse(call, entry)` names (an ErrorCode) and raises what
    `raise_on` names per call; remembers every call."""

    def __init__(self, refuse=lambda call, item: None, raise_on=None):
        self.refuse, self.raise_on = refuse, raise_on or {}
        self.calls: list[list[dict]] = []
        self.accepted: list[dict] = []

    def put_events(self, Entries):
        self.calls.append(Entries)
        call = len(self.calls)
        if call in self.raise_on:
            raise self.raise_on[call]
        assert len(Entries) <= bus.MAX_ENTRIES and sum(map(bus.entry_size, Entries)) <= bus.MAX_REQUEST_BYTES
        replies = []
        for item in Entries:
            code = self.refuse(call, item)
            replies.append({"ErrorCode": code, "ErrorMessage": "no"} if code else {"EventId": "x"})
            if not code:
                self.accepted.append(item)
        return {"FailedEntryCount": sum("ErrorCode" in r for r in replies), "Entries": replies}


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _entries(count: int, size: int = 10) -> list[dict]:
    return [{"Source": "s", "DetailType": "T", "EventBusName": "b", "Detail": json.dumps({"n": i, "pad": "x" * size})}
            for i in range(count)]


def _publish(entries, stub, deadline=60.0):
    clock = FakeClock()
    return bus.publish(entries, deadline, stub, sleep=clock.sleep, clock=clock), clock


def test_calls_take_ten_entries_at_most_in_order():
    stub = StubEvents()
    outcome, _ = _publish(_entries(25), stub)
    assert [len(call) for call in stub.calls] == [10, 10, 5]
    assert stub.accepted == _entries(25) and outcome.failed == {} and outcome.calls == 3


def test_calls_stay_under_256_kb_and_an_entry_is_counted_in_utf8_bytes():
    stub = StubEvents()
    _publish(_entries(5, size=100_000), stub)  # ~100 KB each: two a call
    assert [len(call) for call in stub.calls] == [2, 2, 1]
    item = {"Source": "é", "DetailType": "T", "Detail": "ü"}
    assert bus.entry_size(item) == 5 and bus.entry_size({**item, "Time": "x", "Resources": ["ab"]}) == 5 + 14 + 2


def test_refused_entries_are_sent_again_alone_until_accepted():
    # the first two calls refuse every odd entry (a partial failure: FailedEntryCount > 0)
    stub = StubEvents(refuse=lambda call, item: "ThrottlingException"
                      if call <= 2 and json.loads(item["Detail"])["n"] % 2 else None)
    outcome, clock = _publish(_entries(12), stub)
    assert outcome.failed == {}
    assert sorted(json.loads(e["Detail"])["n"] for e in stub.accepted) == list(range(12))  # each once
    assert [len(call) for call in stub.calls] == [10, 2, 6]  # the 6 refused ones, again, together
    assert outcome.retried == 6 and len(clock.slept) == 1


def test_an_entry_refused_for_good_is_not_retried_and_is_reported():
    stub = StubEvents(refuse=lambda call, item: "MalformedDetail" if json.loads(item["Detail"])["n"] == 3 else None)
    outcome, clock = _publish(_entries(5), stub)
    assert outcome.failed == {3: "MalformedDetail"} and len(stub.calls) == 1 and clock.slept == []


def test_a_call_that_fails_whole_is_retried_with_its_entries():
    stub = StubEvents(raise_on={1: ClientError({"Error": {"Code": "ThrottlingException"}}, "PutEvents"),
                                2: EndpointConnectionError(endpoint_url="http://x")})
    outcome, _ = _publish(_entries(3), stub)
    assert outcome.failed == {} and len(stub.calls) == 3 and len(stub.accepted) == 3


def test_retries_stop_at_the_deadline_and_report_what_is_left():
    stub = StubEvents(refuse=lambda call, item: "InternalFailure")
    outcome, clock = _publish(_entries(2), stub, deadline=0.25)
    assert outcome.failed == {0: "InternalFailure", 1: "InternalFailure"}
    assert clock.now <= 0.25 and len(stub.calls) >= 2  # retried while there was time, then stopped
    outcome, _ = _publish(_entries(2), StubEvents(refuse=lambda call, item: "InternalFailure"), deadline=1e9)
    assert outcome.calls == bus.ROUNDS  # and never more than ROUNDS sends, however much time is left


class SlowEvents(StubEvents):
    """PutEvents that takes `seconds` of the fake clock a call."""

    def __init__(self, clock: FakeClock, seconds: float):
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def put_events(self, Entries):
        self.clock.now += self.seconds
        return super().put_events(Entries)


def test_the_first_round_stops_sending_at_the_deadline_and_reports_what_it_did_not_send():
    """A batch of big cascades (an end's cascade is one record, of up to CASCADE_MAX events) must not
    run the function into its timeout: the deadline is checked before every call."""
    clock = FakeClock()
    stub = SlowEvents(clock, 1.0)
    outcome = bus.publish(_entries(45), 2.5, stub, sleep=clock.sleep, clock=clock)
    assert outcome.calls == 3 and len(stub.accepted) == 30  # sent at 0, 1 and 2 s; not at 3 s
    assert outcome.failed == {index: bus.LATE for index in range(30, 45)}
    # Past the deadline already: one call still goes out, so that a retry always gets further.
    clock = FakeClock()
    stub = SlowEvents(clock, 1.0)
    outcome = bus.publish(_entries(25), -1.0, stub, sleep=clock.sleep, clock=clock)
    assert outcome.calls == 1 and len(stub.accepted) == 10 and sorted(outcome.failed) == list(range(10, 25))


def test_an_entry_left_unsent_at_the_deadline_keeps_the_error_of_its_last_send():
    clock = FakeClock()
    stub = SlowEvents(clock, 1.0)
    stub.refuse = lambda call, item: "ThrottlingException" if call <= 2 else None  # the first round's 20
    outcome = bus.publish(_entries(25), 3.5, stub, sleep=clock.sleep, clock=clock)
    # round 1 ends at 3 s; round 2 sends 10 of the 20 again (accepted) and is out of time for the rest
    assert outcome.calls == 4 and len(stub.accepted) == 15
    assert outcome.failed == {index: "ThrottlingException" for index in range(10, 20)}


# ---------------------------------------------------------------- a batch of records


def _records(*counts: int) -> list[dict]:
    """A record per count: service i's start with that many events (so its events are i's only)."""
    return [record("INSERT", new=service_image(str(i + 1), count, [entry("StateStarted", state_id=k + 1)
                                                                    for k in range(count)]), sequence=i + 1)
            for i, count in enumerate(counts)]


def _service_of(item: dict) -> str:
    return json.loads(item["Detail"])["service_id"]


def test_a_batch_publishes_the_events_of_all_its_records_together():
    stub = StubEvents()
    assert publisher.publish_records(_records(3, 4, 5), DESTINATION, time.monotonic() + 60, stub) == {}
    assert [len(call) for call in stub.calls] == [10, 2]  # 12 events, two calls, not one per record
    assert [_service_of(e) for e in stub.accepted] == ["1"] * 3 + ["2"] * 4 + ["3"] * 5


def test_records_from_the_first_not_published_on_are_failures():
    stub = StubEvents(refuse=lambda call, item: "InternalFailure" if _service_of(item) == "2" else None)
    records = _records(1, 1, 1)
    failures = publisher.publish_records(records, DESTINATION, 0.0, stub)
    assert list(failures) == [publisher.sequence_number(r) for r in records[1:]]
    assert "InternalFailure" in str(failures[publisher.sequence_number(records[1])])


def test_records_whose_events_were_not_sent_in_time_are_failures_from_the_first_of_them(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(bus, "monotonic", clock)  # the clock publish_records' deadline is read on
    stub = SlowEvents(clock, 1.0)
    records = _records(8, 8, 8, 8)  # 32 events: calls of 10, one a second
    failures = publisher.publish_records(records, DESTINATION, 1.5, stub)
    assert [_service_of(e) for e in stub.accepted] == ["1"] * 8 + ["2"] * 8 + ["3"] * 4
    assert list(failures) == [publisher.sequence_number(r) for r in records[2:]]
    assert bus.LATE in str(failures[publisher.sequence_number(records[2])])


def test_a_record_that_cannot_be_derived_stops_the_batch_before_it():
    records = _records(1, 1, 1)
    records[1]["dynamodb"]["NewImage"] = service_image("2", 2, [entry("StateStarted")])  # seq +2, one event
    stub = StubEvents()
    failures = publisher.publish_records(records, DESTINATION, time.monotonic() + 60, stub)
    assert [_service_of(e) for e in stub.accepted] == ["1"]  # nothing after it was published
    assert list(failures) == [publisher.sequence_number(r) for r in records[1:]]
    assert "unpublishable" in str(failures[publisher.sequence_number(records[1])])


def test_a_malformed_record_fails_alone_instead_of_the_batch():
    records = _records(1, 1)
    del records[1]["dynamodb"]["NewImage"]["tenant"]  # the service item without its tenant
    stub = StubEvents()
    failures = publisher.publish_records(records, DESTINATION, time.monotonic() + 60, stub)
    assert list(failures) == [publisher.sequence_number(records[1])] and len(stub.accepted) == 1


def test_the_function_answers_lambda_s_partial_batch_response(no_sleeping):
    stub = StubEvents(refuse=lambda call, item: "InternalFailure" if _service_of(item) == "3" else None)
    records = _records(2, 2, 2, 2)
    answer = publisher.handle({"Records": records}, Context(), DESTINATION, stub)
    assert answer == {"batchItemFailures": [{"itemIdentifier": publisher.sequence_number(r)} for r in records[2:]]}
    assert no_sleeping  # the refusals were retried after pauses
    assert publisher.handle({"Records": records}, Context(), DESTINATION, StubEvents()) == {"batchItemFailures": []}


def test_a_batch_that_failed_whole_is_a_function_error():
    with pytest.raises(BatchProcessingError):  # Lambda then halves the batch (BisectBatchOnFunctionError)
        publisher.handle({"Records": _records(1, 1)}, Context(), DESTINATION,
                         StubEvents(refuse=lambda call, item: "InternalFailure"))


def test_the_publisher_keeps_a_margin_before_the_function_s_timeout():
    stub = StubEvents(refuse=lambda call, item: "InternalFailure")
    context = Context(remaining_ms=publisher.SAFETY_MS + 100)  # 0.1 s left for retries
    deadline = publisher.deadline_of(context)
    assert deadline - time.monotonic() <= 0.1
    failures = publisher.publish_records(_records(1), DESTINATION, deadline, stub)
    assert len(failures) == 1 and time.monotonic() <= deadline + 0.5  # reported, not timed out
