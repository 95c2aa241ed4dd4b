"""The import's parts on their own (no moto, no server): records and what makes them bad, the mapping
to stored items, export sets and line positions, the checkpoint, the pace (rate limit, adaptive
back-off) on a fake clock, progress on a terminal and in plain lines, the report, the writer's order of
requests (children before their service item, 25 items a request, unprocessed items sent again),
SigV4 signing of stream requests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from lib.migration import checkpoint as checkpoints
from lib.migration import files, records, stream
from lib.migration.mapping import Policy, Unfit, build
from lib.migration.pace import Pace
from lib.migration.progress import Progress
from lib.migration.report import BAD, CONFLICT, PRESENT, Report, Tally
from lib.store import imported, table
from lib.store.codec import decode_item
from lib.store.items import FEED_HOLD_S

SERVICE = {"service_id": "458000000000000001", "customer_id": "c", "started": {"timestamp": "2026-03-01T10:00:00Z"}}


def service(**changes):
    return {**SERVICE, **changes}


def state(state_id=1, **changes):
    return {"state_id": state_id, "service_id": SERVICE["service_id"],
            "started": {"timestamp": "2026-03-01T10:01:00.000Z"}, **changes}


def task(task_id=1, **changes):
    return {"task_id": task_id, "service_id": SERVICE["service_id"],
            "started": {"timestamp": "2026-03-01T10:02:00.000Z"}, **changes}


def checked(kind, value):
    return records.check(records.part_of(kind, "here", value))


# ---------------------------------------------------------------- records


@pytest.mark.parametrize("text, problem, service_id", [
    ('{"service_id": "458000000000000001", "started": ', "not valid JSON", "458000000000000001"),
    ("[1, 2]", "not a JSON object", None),
    ('{"service_id": "x1", "started": {}}', "service_id: missing or not a service id", None),
    ('{"service_id": "458000000000000001", "n": NaN}', "not valid JSON", "458000000000000001"),
    ('{"service_id": "458000000000000001", "s": "\\ud800"}', "a string holds a lone surrogate", "458000000000000001"),
    (b'{"service_id": "4\xff"}', "not UTF-8 text", None),
])
def test_unreadable_lines_say_why_and_which_service(text, problem, service_id):
    part = records.read_part("service", "f line 3", text)
    assert (part.problem, part.service_id, part.where) == (problem, service_id, "f line 3")


@pytest.mark.parametrize("kind, value, problem", [
    ("service", service(started={"timestamp": "yesterday"}), "started.timestamp: 'yesterday' is not a timestamp"),
    ("service", service(started={}), "started.timestamp: Field required"),
    ("service", {k: v for k, v in SERVICE.items() if k != "customer_id"}, "customer_id or contact_key is required"),
    ("service", service(started={"timestamp": "2026-03-01T10:00:00Z", "mood": 1}), "started.mood: Extra inputs"),
    ("service", service(ttl=5), "'ttl' is a field of this API"),
    ("service", service(est_duration=-1), "est_duration: Input should be greater than or equal to 0"),
    ("state", state(state_id=None), "state_id: Input should be a valid integer"),
    ("task", task(state_id="x"), "state_id: Value error, must be a positive integer"),
    ("task", task(**{"k" * 129: 1}), "must be 1-128 characters"),
])
def test_bad_records_name_the_field(kind, value, problem):
    with pytest.raises(records.RecordProblem) as error:
        checked(kind, value)
    assert problem.replace("Value error, ", "") in str(error.value)


def test_attached_data_is_every_other_key_and_dispositions_inside_completed_are_lifted():
    record = checked("service", service(channel="ivr", nested={"a": [1]},
                                        completed={"timestamp": "2026-03-01T11:00:00+01:00", "disposition": 3}))
    assert record.attached_data() == {"channel": "ivr", "nested": {"a": [1]}}
    assert record.disposition == 3 and record.completed.timestamp == "2026-03-01T10:00:00.000Z"
    assert checked("service", service(service_id=458000000000000001)).service_id == "458000000000000001"


def test_a_stream_service_brings_its_embedded_states_and_tasks():
    page_item = service(active_states=[state(1, completed_tasks=[task(2)])], completed_tasks=[task(1)],
                        active_tasks="nope")
    unit = records.split_embedded("page 2 item 4", page_item)
    assert unit.service.value == SERVICE and unit.service.where == "page 2 item 4"
    kinds = [(p.kind, p.where, p.problem) for p in unit.children]
    assert ("task", "page 2 item 4 active_states[0].completed_tasks[0]", None) in kinds
    assert ("state", "page 2 item 4 active_states[0]", None) in kinds
    assert ("task", "page 2 item 4 active_tasks", "active_tasks: not an array") in kinds
    assert all(p.service_id == SERVICE["service_id"] for p in unit.children)


# ---------------------------------------------------------------- mapping


def imported_items(svc, states=(), tasks=(), now=1_800_000_000_000, **policy):
    return build("t|", checked("service", svc), [("s", checked("state", s)) for s in states],
                 [("k", checked("task", t)) for t in tasks], now, Policy("tok", **{"auto_complete_after": None,
                                                                                   **policy}))


def test_counters_attached_counts_expiration_and_auto_complete():
    result = imported_items(service(expiration_time="2030-01-01T00:00:00Z"), [state(1), state(4, previous_state_id=1)],
                            [task(2, state_id=4), task(7, state_id=4), task(3)], auto_complete_after=60)
    s = result.service
    assert (s.state_seq, s.task_seq, s.expires_ms, s.expiry_explicit, s.auto_complete_after) == \
        (4, 7, 1_893_456_000_000, True, 60)
    assert s.last_write_ms == 1_800_000_000_000 and s.op == "tok" and s.children_ttl == s.expire_at + FEED_HOLD_S
    assert [(c.KIND, c.child_id, getattr(c, "attached", None)) for c in result.children] == \
        [("state", 1, 0), ("state", 4, 2), ("task", 2, None), ("task", 3, None), ("task", 7, None)]
    sliding = imported_items(service(expiration_time="2030-01-01T00:00:00Z"), sliding=True).service
    assert sliding.expiry_explicit is None and sliding.children_ttl > sliding.expire_at
    own = imported_items(service(auto_complete_after=5), auto_complete_after=60).service
    assert own.auto_complete_after == 5


def test_history_at_one_moment_keeps_starts_before_their_ends_and_ends_before_their_cascades():
    at = "2026-03-01T10:05:00.000Z"
    result = imported_items(
        service(started={"timestamp": at}, completed={"timestamp": at}),  # everything at one moment
        [state(1, started={"timestamp": at}, completed={"timestamp": at, "disposition": "x"}),
         state(2, previous_state_id=1, started={"timestamp": at}, completed={"timestamp": at})],
        [task(1, state_id=1, started={"timestamp": at}, completed={"timestamp": at}),
         task(2, state_id=2, started={"timestamp": at}, completed={"timestamp": at})], events=True)
    assert [(e["name"], e["data"].get("state_id"), e["data"].get("task_id"), e["data"].get("reason"))
            for e in result.events] == [
        ("ServiceStarted", None, None, None),
        ("StateStarted", 1, None, None),
        ("TaskStarted", 1, 1, None),
        ("StateCompleted", 1, None, "transition"),
        ("TaskCompleted", 1, 1, "state_completed"),
        ("StateStarted", 2, None, None),
        ("TaskStarted", 2, 2, None),
        ("ServiceCompleted", None, None, "request"),
        ("StateCompleted", 2, None, "service_completed"),
        ("TaskCompleted", 2, 2, "service_completed"),
    ]
    assert {e["at"] for e in result.events} == {1_772_359_500_000}
    assert imported_items(SERVICE, [state(1)]).events is None  # not asked: none


@pytest.mark.parametrize("states, tasks, where, message", [
    ([state(1)], [task(1, state_id=9)], "k", "state_id: state 9 is not in the conversation"),
    ([state(2, previous_state_id=1)], [], "s", "previous_state_id: state 1 is not in the conversation"),
    ([state(1), state(1, state_type="other")], [], "s", "state_id: state 1 appears twice with different content"),
    ([state(1, service_id="458000000000000002")], [], "s", "service_id: 458000000000000002 is not the service"),
    ([state(1, completed={"timestamp": "2026-03-01T09:00:00Z"})], [], "s", "completed.timestamp: before started"),
])
def test_records_that_do_not_fit_together(states, tasks, where, message):
    with pytest.raises(Unfit) as error:
        imported_items(SERVICE, states, tasks)
    assert error.value.where == where and error.value.message.startswith(message)


def test_without_an_expiration_time_the_default_expiration_slides_from_the_import():
    s = imported_items(SERVICE, now=1_800_000_000_000, default_expiration_s=86400).service
    assert (s.expires_ms, s.expiry_explicit) == (1_800_000_000_000 + 86_400_000, None)


def test_the_same_record_twice_is_one():
    assert len(imported_items(SERVICE, [], [task(1), task(1)]).children) == 1


# ---------------------------------------------------------------- files


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_text("")


def test_the_newest_complete_export_set_is_read_unless_one_is_named(tmp_path):
    old, new = "export20260101_000000_000", "export20260301_120000_000"
    _touch(tmp_path, *(f"{p}_{k}.jsonl" for p in (old, new) for k in ("services", "states", "tasks")))
    _touch(tmp_path, "export20990101_000000_000_services.jsonl", "notes.txt")  # incomplete: not a set
    assert files.locate(str(tmp_path)).prefix == new
    assert files.locate(str(tmp_path), "export20260101").prefix == old
    assert files.locate(str(tmp_path / f"{old}_states.jsonl")).prefix == old
    with pytest.raises(files.SourceError, match="has no states, tasks file"):
        files.locate(str(tmp_path), "export2099")
    csv = tmp_path / "csv"
    csv.mkdir()
    _touch(csv, *(f"{new}_{k}.csv" for k in ("services", "states", "tasks")))
    with pytest.raises(files.SourceError, match="only CSV export files"):
        files.locate(str(csv))
    with pytest.raises(files.SourceError, match="no such folder"):
        files.locate(str(tmp_path / "absent"))


def test_lines_carry_their_number_and_where_the_next_begins():
    data = b'{"a": 1}\n\n{"b": 2}\r\n{"c": 3}'
    found = list(files.lines(io.BytesIO(data), 0, 0))
    assert found == [(1, 9, b'{"a": 1}'), (2, 10, b""), (3, 20, b'{"b": 2}'), (4, 28, b'{"c": 3}')]
    handle = io.BytesIO(data)
    handle.seek(10)
    assert list(files.lines(handle, 10, 2))[0] == (3, 20, b'{"b": 2}')


# ---------------------------------------------------------------- checkpoint


def test_a_checkpoint_resumes_its_own_import_only(tmp_path):
    path = tmp_path / "c.json"
    first = checkpoints.Checkpoint.open(path, "key-a")
    assert not first.resumed
    first.position, first.tally = {"line": 100}, {"read": 100}
    first.save()
    again = checkpoints.Checkpoint.open(path, "key-a")
    assert again.resumed and again.position == {"line": 100} and again.token == first.token
    with pytest.raises(checkpoints.CheckpointError, match="another import"):
        checkpoints.Checkpoint.open(path, "key-b")
    assert not checkpoints.Checkpoint.open(path, "key-b", restart=True).resumed
    again.finished = True
    again.save()
    fresh = checkpoints.Checkpoint.open(path, "key-a")  # a finished import: a new pass
    assert not fresh.resumed and fresh.position is None and fresh.token != first.token
    assert not list(tmp_path.glob("*.tmp"))
    assert checkpoints.key_of({"a": 1}, {"b": 2}) != checkpoints.key_of({"a": 1}, {"b": 3})


# ---------------------------------------------------------------- pace


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_rate_limit_lets_through_one_request_then_the_rate():
    t = FakeTime()
    pace = Pace(100, t.clock, t.sleep)
    for _ in range(9):
        pace.wait(25)
    assert t.now == pytest.approx((9 * 25 - 25) / 100)  # 200 items after the first request: 2 s
    t.now += 10  # idle: at most one second's worth (100 items) may go at once
    before = t.now
    for _ in range(4):
        pace.wait(25)
    assert t.now == before
    pace.wait(25)
    assert t.now == pytest.approx(before + 0.25)


def test_throttling_halves_the_rate_and_success_brings_it_back():
    t = FakeTime()
    pace = Pace(400, t.clock, t.sleep)
    pace.throttled()
    pace.throttled()  # the same congestion: one cut
    assert pace.allowed == 200 and pace.throttles == 2
    t.now += 1.5
    pace.throttled()
    assert pace.allowed == 100 and pace.lowest == 100 and pace.throttles == 3
    pace.written(25)
    assert pace.allowed == pytest.approx(100 * 1.05 + 5)
    for _ in range(30):
        pace.written(25)
    assert pace.allowed == 400  # back to the limit, never above it
    unlimited = Pace(None, t.clock, t.sleep)
    unlimited.wait(10_000)
    assert t.slept == []  # no limit: no waiting
    for _ in range(5):
        t.now += 0.1
        unlimited.written(50)
    unlimited.throttled()
    assert unlimited.allowed == pytest.approx(250)  # half of the 500 items a second observed
    with pytest.raises(ValueError):
        Pace(0)


# ---------------------------------------------------------------- progress and report


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere():
    t = FakeTime()
    out = Terminal()
    bar = Progress(total=200, out=out, clock=t.clock)
    assert bar.mode == "bar"
    t.now = 2.0
    bar.show(50, 40, 10, 0)
    bar.show(60, 50, 10, 0)  # within the redraw interval: not drawn
    text = out.getvalue()
    assert text.startswith("\r[######------------------]  25% 50/200 conversations, imported 40, skipped 10")
    assert "25/s" in text and "0:06 left" in text and "60/200" not in text
    plain = io.StringIO()
    lines = Progress(out=plain, clock=t.clock)
    assert lines.mode == "lines"
    lines.show(7, 7, 0, 0, dry_run=True, final=True)
    assert plain.getvalue().startswith("import: 7 conversations, would import 7, skipped 0, failed 0")
    quiet = io.StringIO()
    Progress(mode="none", out=quiet).show(1, 1, 0, 0, final=True)
    assert quiet.getvalue() == ""


def test_the_report_lists_problems_and_counts_by_reason():
    tally = Tally(read=4, imported=1, imported_items=5)
    tally.records.update(service=4, state=3)
    tally.skip(PRESENT, "1", "f line 1")
    tally.skip(CONFLICT, "2", "f line 2", "the target holds another conversation with this service id")
    tally.skipped[BAD] += 1
    tally.problem(BAD, "3", "g line 9", "state_id: state 9 is not in the conversation")
    report = Report("src", "dst", tally=tally, writes={"requests": 2, "items": 45}, seconds=2.0, run_conversations=4)
    text = report.text()
    assert "read      4 conversations (4 service, 3 state)" in text
    assert "skipped   3; already present 1; exists with other content 1; bad record 1" in text
    assert "bad record: service 3, g line 9: state_id: state 9 is not in the conversation" in text
    assert "2 BatchWriteItem requests, 22.5 items a request" in text
    data = json.loads(report.json())
    assert data["skipped"]["total"] == 3 and len(data["problems"]) == 2  # "already present" is no problem
    assert not report.clean and Report("a", "b").clean
    assert Tally.from_dict(tally.as_dict()).as_dict() == tally.as_dict()


# ---------------------------------------------------------------- the writer's requests


class Recorder:
    """Stands in for DynamoDB's BatchWriteItem: records each request; `unprocessed(n)` items handed back."""

    def __init__(self, unprocessed=lambda n, items: []):
        self.requests: list[list[dict]] = []
        self.unprocessed = unprocessed
        self.stored: set[tuple[str, str]] = set()

    def __call__(self, operation, RequestItems):
        items = [decode_item(r["PutRequest"]["Item"]) for r in next(iter(RequestItems.values()))]
        self.requests.append(items)
        back = self.unprocessed(len(self.requests), items)
        for item in items:
            if item not in back:
                if item["type"] == "service":  # never stored before all of its children
                    assert all((item["PK"], f"{k}#{n:010d}") in self.stored for k, n in self.children[item["PK"]])
                self.stored.add((item["PK"], item["SK"]))
        encoded = [{"PutRequest": {"Item": {"PK": {"S": i["PK"]}, "SK": {"S": i["SK"]}}}} for i in back]
        return {"UnprocessedItems": {table.table_name(): encoded} if back else {}}


def _conversations(count: int):
    result = []
    for number in range(count):
        sid = str(458000000000000001 + number)
        result.append(imported_items(service(service_id=sid), [state(1, service_id=sid), state(2, service_id=sid)],
                                     [task(1, state_id=1, service_id=sid)]))
    return result


def test_the_writer_sends_children_before_their_service_item_25_items_a_request(monkeypatch):
    recorder = Recorder()
    conversations = _conversations(40)
    recorder.children = {c.service.pk: [("S" if ch.KIND == "state" else "T", ch.child_id) for ch in c.children]
                         for c in conversations}
    monkeypatch.setattr(table, "call", recorder)
    done: list[str] = []
    writer = imported.ConversationWriter(Pace())
    for c in conversations:
        writer.add(c.service, c.children, lambda sid=c.service.service_id: done.append(sid), pytest.fail)
    writer.flush()
    assert sorted(done) == sorted(c.service.service_id for c in conversations)
    children = [item for request in recorder.requests for item in request if item["type"] != "service"]
    assert all(item["expire_at"] == conversations[0].service.children_ttl for item in children)  # the store's TTL
    sizes = [len(r) for r in recorder.requests]
    # Full requests; at the end, the last children, then the service items that waited for them.
    assert sizes == [25] * 6 + [9, 1]
    assert writer.stats.as_dict() == {"requests": 8, "items": 160, "throttled": 0, "resent_items": 0}
    for request in recorder.requests:  # never a service item with one of its own children
        services = {i["PK"] for i in request if i["type"] == "service"}
        assert not any(i["PK"] in services for i in request if i["type"] != "service")


def test_unprocessed_items_and_refusals_are_sent_again_after_a_pause(monkeypatch):
    def unprocessed(n, items):
        return items[5:] if n in (1, 3) else []

    recorder = Recorder(unprocessed)
    conversations = _conversations(10)
    recorder.children = {c.service.pk: [("S" if ch.KIND == "state" else "T", ch.child_id) for ch in c.children]
                         for c in conversations}
    calls = {"n": 0}

    def flaky(operation, RequestItems):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "BatchWriteItem")
        return recorder(operation, RequestItems)

    monkeypatch.setattr(table, "call", flaky)
    t = FakeTime()
    pace = Pace(None, t.clock, t.sleep)
    writer = imported.ConversationWriter(pace, sleep=t.sleep)
    done = []
    for c in conversations:
        writer.add(c.service, c.children, lambda: done.append(1), pytest.fail)
    writer.flush()
    assert len(done) == 10 and len(recorder.stored) == 40
    assert writer.stats.throttled == 3 and pace.throttles == 3
    assert writer.stats.resent_items >= 20 + 25  # the 20 handed back, then the 25 of the refused request
    assert len(t.slept) >= 3 and t.slept[0] > 0


def test_an_item_the_store_refuses_fails_its_conversation_only(monkeypatch):
    conversations = _conversations(3)
    bad = conversations[1].children[0].key()

    def call(operation, RequestItems):
        items = [decode_item(r["PutRequest"]["Item"]) for r in next(iter(RequestItems.values()))]
        if any({"PK": i["PK"], "SK": i["SK"]} == bad for i in items):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "Item size has exceeded"}},
                              "BatchWriteItem")
        return {}

    monkeypatch.setattr(table, "call", call)
    outcome: dict[str, str] = {}
    writer = imported.ConversationWriter(Pace())
    for c in conversations:
        sid = c.service.service_id
        writer.add(c.service, c.children, lambda sid=sid: outcome.setdefault(sid, "done"),
                   lambda reason, sid=sid: outcome.setdefault(sid, reason))
    writer.flush()
    assert outcome[conversations[0].service.service_id] == "done"
    assert outcome[conversations[2].service.service_id] == "done"
    assert outcome[conversations[1].service.service_id] == \
        "the store refused its child item: Item size has exceeded"


# ---------------------------------------------------------------- the stream's requests


def test_requests_to_a_deployed_api_are_signed_for_execute_api(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/Prod/genesys/1/cs"
    assert stream.is_deployed_api(url) and not stream.is_deployed_api("http://127.0.0.1:3000/genesys/1/cs")
    signed = stream.sigv4_signer(url)("GET", url + "/maintenance/services/stream?a=1", {"ContactCenterId": "x"})
    assert signed["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in signed["Authorization"]
    assert "contactcenterid" in signed["Authorization"] and signed["ContactCenterId"] == "x"


def test_the_stream_source_starts_with_the_window_and_follows_link():
    source = stream.StreamSource("http://h:1/genesys/1/cs/", "2020-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z",
                                 {"ContactCenterId": "cc"})
    pages = {source.first_url(2): ([service(), {"no": "id"}], "/genesys/1/cs/maintenance/services/stream?page_token=x"),
             "http://h:1/genesys/1/cs/maintenance/services/stream?page_token=x": ([service(service_id="5")], None)}
    source.page = lambda url: pages[url]
    batches = list(source.batches(None, 2))
    assert [len(b.units) for b in batches] == [2, 1]
    assert batches[0].position == {"url": "http://h:1/genesys/1/cs/maintenance/services/stream?page_token=x",
                                   "page": 2}
    assert batches[1].position == {"url": None, "page": 3}
    assert batches[0].units[1].service.where == "page 1 item 2" and batches[0].units[1].service.problem
    assert "time_to=2026-01-01T00%3A00%3A00.000Z" in source.first_url(2) and "export_content=true" in source.first_url(2)
    assert list(source.batches({"url": None, "page": 3}, 2)) == []
    with pytest.raises(files.SourceError):
        stream.StreamSource("ftp://h", "a", "b")


class _Answer:
    def __init__(self, body: bytes, link: str | None = None):
        import http.client

        self.body, self.headers = body, http.client.HTTPMessage()
        if link:
            self.headers["Link"] = link

    def read(self) -> bytes:
        return self.body

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_the_stream_retries_throttling_and_server_errors_and_stops_on_others(monkeypatch):
    import urllib.error

    answers = [urllib.error.HTTPError("u", 429, "", None, io.BytesIO(b"{}")),
               urllib.error.HTTPError("u", 503, "", None, io.BytesIO(b"{}")),
               urllib.error.URLError("connection refused"),
               _Answer(b"[]", '</genesys/1/cs/maintenance/services/stream?page_token=t>; rel="next"')]

    def urlopen(request, timeout):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(stream.urllib.request, "urlopen", urlopen)
    slept: list[float] = []
    source = stream.StreamSource("http://h/genesys/1/cs", "a", "b", sleep=slept.append)
    assert source.page("http://h/x") == ([], "/genesys/1/cs/maintenance/services/stream?page_token=t")
    assert slept == [1.0, 2.0, 4.0] and source.requests == 4
    refused = urllib.error.HTTPError("u", 403, "", None, io.BytesIO(
        b'{"message": "ContactCenterId acme not granted", "exception": "ForbiddenException"}'))
    answers[:] = [refused]
    with pytest.raises(files.SourceError, match="403 ForbiddenException: ContactCenterId acme not granted"):
        source.page("http://h/x")
    answers[:] = [_Answer(b'{"not": "a list"}')]
    with pytest.raises(files.SourceError, match="not a JSON array"):
        source.page("http://h/x")


# ---------------------------------------------------------------- the command's refusals


def test_the_command_refuses_what_it_cannot_do(tmp_path, monkeypatch, capsys):
    from lib.migration import command

    monkeypatch.setenv("LOCAL_RUN_DIR", str(tmp_path))
    assert command.main(["--files", "x", "--local-port", "3999"]) == 2
    assert "no local run on port 3999" in capsys.readouterr().err
    (tmp_path / "3999.json").write_text(json.dumps({"pid": 2**22 + 12345, "table": "t", "dynamodb_endpoint": "e"}))
    assert command.main(["--files", "x", "--local-port", "3999"]) == 2
    assert "the local run on port 3999 is not running any more" in capsys.readouterr().err
    assert command.main(["--files", "x", "--contact-center", "a/b"]) == 2
    assert "--contact-center: 1-64 characters" in capsys.readouterr().err
