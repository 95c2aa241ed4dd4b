"""Import (§11) in process, on moto: safe to run twice and to stop (resume from the checkpoint, never
a half-imported conversation visible), dry run, conflicts never overwritten, every kind of bad record
reported where it was read, the rate limit, throttling back-off, the JSON report, S3 and the export
stream as sources, and imported conversations treated by maintenance as the API's own."""

from __future__ import annotations

import http.client
import json
import os
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from bench import varied
from lib import clock, settings
from lib.migration import command, pace
from lib.migration.mapping import shown
from lib.rules import maintenance
from lib.store import imported, table
from lib.store.keys import tenant_key

TARGET = {"ContactCenterId": "target"}
TARGET_KEY = tenant_key("target", None)
N = 60  # conversations of the `export` fixture (5 items each) ...
BATCH = 25  # ... read in batches of 25: three batches (25, 25, 10), the last one short


@pytest.fixture
def items(table):
    """All stored items, as the shared fixture's, without moto's slow Scan (bench.varied.table_items)."""
    return varied.table_items


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    """Every test runs in its own folder: the reports it asks for and the checkpoints (.cs-import) go
    there, never into the repository."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def export(workdir):
    """Export files of N conversations in ./exports: (lines, sample)."""
    return varied.write_export(workdir / "exports", N)


class Outcome:
    def __init__(self, code: int, out: str, report: dict[str, Any]):
        self.code, self.out, self.report = code, out, report

    def where(self, reason: str) -> dict[str, str]:
        return {p["where"]: p["problem"] for p in self.report["problems"] if p["reason"] == reason}


def cs_import(capsys, *args: str, report: str = "report.json") -> Outcome:
    code = command.main(["--table", os.environ["TABLE_NAME"], "--progress", "none", "--contact-center", "target",
                         "--batch", str(BATCH), "--report", report, *args])
    out = capsys.readouterr().out
    return Outcome(code, out, json.loads(Path(report).read_text()))


def conversations(items, tenant: str = TARGET_KEY) -> dict[str, dict[str, list]]:
    """What the table holds for a tenant, by conversation: its items by type."""
    found: dict[str, dict[str, list]] = {}
    for item in items():
        if item["PK"].startswith(tenant + "#C#"):
            found.setdefault(item["PK"].rsplit("#", 1)[1], {}).setdefault(item["type"], []).append(item)
    return found


def active(export) -> list[str]:
    """Service ids of the sample whose service is active."""
    return [sid for sid, (service, _) in export[1].items() if service.completed_ms is None]


# ---------------------------------------------------------------- run twice, stop, resume


def test_run_twice_imports_nothing_twice(api, export, capsys, items):
    first = cs_import(capsys, "--files", "exports")
    assert first.code == 0, first.out
    assert first.report["imported"] == {"conversations": N, "items": 5 * N}
    assert first.report["writes"]["items_per_request"] >= 20
    stored = items()
    second = cs_import(capsys, "--files", "exports")
    assert second.code == 0, second.out
    assert second.report["imported"]["conversations"] == 0
    assert second.report["skipped"]["already present"] == N and second.report["skipped"]["total"] == N
    assert second.report["writes"].get("requests", 0) == 0
    assert items() == stored  # nothing written again


def test_interrupted_run_resumes_from_its_checkpoint_and_never_shows_half_a_conversation(
        api, export, capsys, items, monkeypatch):
    lines, sample = export
    sent = {"n": 0}
    real = table.call

    def interrupt_after_9_requests(operation, **kwargs):  # 225 of 300 items: the first batch is stored
        if operation == "batch_write_item":
            sent["n"] += 1
            if sent["n"] > 9:
                raise KeyboardInterrupt
        return real(operation, **kwargs)

    monkeypatch.setattr(table, "call", interrupt_after_9_requests)
    stopped = cs_import(capsys, "--files", "exports")
    assert stopped.code == 130 and stopped.report["stopped"] == "interrupted"
    assert "run the same command again to resume" in stopped.out
    checkpoint = json.loads(Path(stopped.report["checkpoint"]).read_text())
    assert checkpoint["finished"] is False and checkpoint["position"]["line"] == BATCH  # the first batch is done

    # Nothing half-imported is visible: a service item exists only with all its children.
    held = conversations(items)
    visible = [sid for sid, kinds in held.items() if "service" in kinds]
    assert BATCH <= len(visible) < N
    for sid in visible:
        assert len(held[sid].get("state", [])) == 2 and len(held[sid].get("task", [])) == 2, sid
    invisible = [sid for sid in held if sid not in visible]
    assert invisible, "the interruption fell between children and their service items"
    for sid in invisible:
        assert api.get(f"/services/{sid}", headers=TARGET).status == 404

    monkeypatch.setattr(table, "call", real)
    resumed = cs_import(capsys, "--files", "exports")
    assert resumed.code == 0, resumed.out
    assert "resumed from" in resumed.out
    assert resumed.report["read"]["conversations"] == N  # counted once across both attempts
    assert resumed.report["imported"] == {"conversations": N, "items": 5 * N}
    assert resumed.report["skipped"]["total"] == 0
    now = clock.now_ms()
    stored = imported.stored_conversations(TARGET_KEY, list(sample))
    for sid, (service, children) in sample.items():
        assert shown(*stored[sid], now) == shown(service, children, now)
    assert len(conversations(items)) == N


def test_an_interrupted_import_resumes_only_as_it_began_with_or_without_events(api, export, capsys, items,
                                                                               monkeypatch):
    real = table.call

    def interrupt_after_3_requests(operation, **kwargs):
        if operation == "batch_write_item" and interrupt_after_3_requests.sent == 3:
            raise KeyboardInterrupt
        interrupt_after_3_requests.sent += operation == "batch_write_item"
        return real(operation, **kwargs)

    interrupt_after_3_requests.sent = 0
    monkeypatch.setattr(table, "call", interrupt_after_3_requests)
    assert cs_import(capsys, "--files", "exports", "--emit-events").code == 130
    monkeypatch.setattr(table, "call", real)
    code = command.main(["--table", os.environ["TABLE_NAME"], "--contact-center", "target", "--batch", str(BATCH),
                         "--files", "exports"])
    assert code == 2
    assert "the interrupted import ran with --emit-events; resume it the same way" in capsys.readouterr().err
    resumed = cs_import(capsys, "--files", "exports", "--emit-events")
    assert resumed.code == 0 and resumed.report["imported"]["conversations"] == N, resumed.out
    # Every service item carries its history, those of the first attempt included: 10 events each
    # (a service, two states, two tasks: started and, for half of them, completed; see bench.varied).
    services = [item for item in items() if item["type"] == "service"]
    assert len(services) == N and all(item["seq"] == len(item["ev"]) > 0 for item in services)
    assert resumed.report["change_feed_events"] == sum(item["seq"] for item in services)


def test_dry_run_writes_nothing_and_says_what_it_would_do(api, export, capsys, items, workdir):
    cs_import(capsys, "--files", "exports")  # everything there once
    assert api.post(f"/services/{active(export)[0]}/end", headers=TARGET).status == 204  # changed since: a conflict
    varied.write_export(workdir / "more", N + 20)  # the same N, and 20 more
    before, checkpoints = items(), {p: p.read_text() for p in (workdir / ".cs-import").iterdir()}
    dry = cs_import(capsys, "--files", "more", "--dry-run", "--emit-events")
    assert dry.code == 1, dry.out  # a conflict was found
    assert dry.report["dry_run"] is True and "dry run (nothing written)" in dry.out
    assert dry.report["imported"] == {"conversations": 20, "items": 100}
    assert "would import 20 conversations" in dry.out
    assert dry.report["change_feed_events"] > 20 and "change-feed events)" in dry.out
    assert dry.report["skipped"]["already present"] == N - 1 and dry.report["skipped"]["exists with other content"] == 1
    assert items() == before
    assert {p: p.read_text() for p in (workdir / ".cs-import").iterdir()} == checkpoints  # no checkpoint either


def test_a_service_id_with_other_content_is_reported_and_never_overwritten(api, export, capsys, items):
    cs_import(capsys, "--files", "exports")
    changed = sorted(active(export)[:2])
    assert api.post(f"/services/{changed[0]}/tasks/2/end", {"disposition": "x"}, headers=TARGET).status == 204
    assert api.put(f"/services/{changed[1]}/extensions/channel", "web", headers=TARGET).status == 200
    before = {sid: api.get(f"/services/{sid}?extensions=*&active_tasks=true&completed_tasks=true",
                           headers=TARGET).json for sid in changed}
    again = cs_import(capsys, "--files", "exports")
    assert again.code == 1
    assert again.report["skipped"]["exists with other content"] == 2
    assert again.report["skipped"]["already present"] == N - 2
    conflicts = [p for p in again.report["problems"] if p["reason"] == "exists with other content"]
    assert sorted(p["service_id"] for p in conflicts) == changed
    assert all(p["where"].endswith(tuple(f"line {n}" for n in range(1, N + 1))) for p in conflicts)
    for sid in changed:
        assert api.get(f"/services/{sid}?extensions=*&active_tasks=true&completed_tasks=true",
                       headers=TARGET).json == before[sid]


# ---------------------------------------------------------------- bad records


def _rewrite(path: Path, change) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(change(lines)) + "\n")


def test_bad_records_are_reported_where_they_are_and_the_rest_is_imported(api, workdir, capsys):
    varied.write_export(workdir / "exports", 8)
    names = {p.name.rsplit("_", 1)[1]: p for p in (workdir / "exports").iterdir()}
    services = [json.loads(line) for line in names["services.jsonl"].read_text().splitlines()]
    ids = [s["service_id"] for s in services]

    def bad_services(lines):
        lines[1] = lines[1][:60]  # conversation 2: cut short, not JSON (its id is still readable)
        record = json.loads(lines[2])
        record["started"]["timestamp"] = "yesterday"  # conversation 3: a timestamp that does not parse
        lines[2] = json.dumps(record)
        record = json.loads(lines[3])
        del record["service_id"]  # conversation 4: no id (its states and tasks then belong to nothing)
        lines[3] = json.dumps(record)
        return lines[:6] + [""] + lines[6:]  # a blank line is no record

    def bad_states(lines):
        record = json.loads(lines[11])  # conversation 6's second state: no state_id (the rest would fit)
        del record["state_id"]
        lines[11] = json.dumps(record)
        return lines + [json.dumps({"state_id": 1, "service_id": "123", "started": {"timestamp": varied.at(1)}})]

    def bad_tasks(lines):
        record = json.loads(lines[8])  # conversation 5's first task: in a state it does not have
        record["state_id"] = 9
        lines[8] = json.dumps(record)
        return lines + ["{this is not json"]

    _rewrite(names["services.jsonl"], bad_services)
    _rewrite(names["states.jsonl"], bad_states)
    _rewrite(names["tasks.jsonl"], bad_tasks)

    outcome = cs_import(capsys, "--files", "exports")
    assert outcome.code == 1, outcome.out
    assert outcome.report["read"]["conversations"] == 8
    assert outcome.report["imported"]["conversations"] == 3  # 1, 7 and 8
    assert outcome.report["skipped"]["bad record"] == 5
    bad = outcome.where("bad record")
    prefix = names["services.jsonl"].name.rsplit("_", 1)[0]
    assert bad[f"{prefix}_services.jsonl line 2"] == "not valid JSON"
    assert bad[f"{prefix}_services.jsonl line 3"].startswith("started.timestamp: 'yesterday' is not a timestamp")
    assert bad[f"{prefix}_services.jsonl line 4"] == "service_id: missing or not a service id"
    assert bad[f"{prefix}_tasks.jsonl line 9"] == "state_id: state 9 is not in the conversation"
    assert bad[f"{prefix}_states.jsonl line 12"].startswith("state: state_id: Field required")
    unattached = outcome.where("unattached record")
    assert unattached[f"{prefix}_states.jsonl line 17"] == "service 123 is not in the services file"
    assert unattached[f"{prefix}_tasks.jsonl line 17"] == "not valid JSON"
    assert unattached[f"{prefix}_states.jsonl line 7"] == f"service {ids[3]} is not in the services file"
    assert outcome.report["unattached_records"] == 6  # conversation 4's four records, the orphan, the broken line
    by_problem = {p["where"]: p["service_id"] for p in outcome.report["problems"]}
    assert by_problem[f"{prefix}_services.jsonl line 2"] == ids[1]  # charged to its conversation
    for number, sid in enumerate(ids):
        status = api.get(f"/services/{sid}", headers=TARGET).status
        assert status == (200 if number in (0, 6, 7) else 404), (number, status)
    assert "problems (" in outcome.out and "not valid JSON" in outcome.out

    # Fixed and run again: the skipped conversations come in, the others are already present.
    varied.write_export(workdir / "fixed", 8)
    again = cs_import(capsys, "--files", "fixed")
    assert again.code == 0, again.out
    assert again.report["imported"]["conversations"] == 5
    assert again.report["skipped"] == {"total": 3, "already present": 3, "exists with other content": 0,
                                       "expired": 0, "bad record": 0}


def test_a_history_too_large_for_its_service_item_fails_that_conversation_only(api, workdir, capsys):
    varied.write_export(workdir / "exports", 4)
    services = next((workdir / "exports").glob("*_services.jsonl"))

    def many_keys(lines):  # about 250 KB of attached data: it fits, but not twice (ServiceStarted lists the keys)
        record = json.loads(lines[0])
        record.update({f"key-{n:04d}-" + "k" * 115: n for n in range(2000)})
        return [json.dumps(record), *lines[1:]]

    _rewrite(services, many_keys)
    big = json.loads(services.read_text().splitlines()[0])["service_id"]
    with_events = cs_import(capsys, "--files", "exports", "--emit-events")
    assert with_events.code == 1, with_events.out
    assert with_events.report["imported"]["conversations"] == 3 and with_events.report["failed"] == 1
    [failure] = with_events.report["problems"]
    assert failure["service_id"] == big and failure["reason"] == "failed"
    assert "the store refused its service item" in failure["problem"] and "size" in failure["problem"]
    assert api.get(f"/services/{big}", headers=TARGET).status == 404  # its children stay invisible
    plain = cs_import(capsys, "--files", "exports", "--contact-center", "plain", report="plain.json")
    assert plain.code == 0 and plain.report["imported"]["conversations"] == 4, plain.out


# ---------------------------------------------------------------- pace: rate limit, throttling


def _timed_writes(monkeypatch, answer=None) -> list[tuple[float, int]]:
    """Record (time, items) of every BatchWriteItem; `answer(n, kwargs)` may refuse or shorten one."""
    sent: list[tuple[float, int]] = []
    real = table.call

    def call(operation, **kwargs):
        if operation == "batch_write_item":
            sent.append((time.monotonic(), len(next(iter(kwargs["RequestItems"].values())))))
            if answer is not None:
                replaced = answer(len(sent), kwargs)
                if replaced is not None:
                    return replaced
        return real(operation, **kwargs)

    monkeypatch.setattr(table, "call", call)
    return sent


def _paced_by_its_own_clock(monkeypatch) -> list[float]:
    """The import's pace on a clock that moves only when it pauses (the pauses are recorded, not
    slept): what it lets through is then exact, however busy the machine."""
    held: list[float] = []

    class OwnClock(pace.Pace):
        def __post_init__(self):
            super().__post_init__()
            self.sleep = held.append
            self.clock = lambda: sum(held)

    monkeypatch.setattr(pace, "Pace", OwnClock)
    return held


def test_the_write_rate_stays_within_the_limit(api, workdir, capsys, monkeypatch):
    varied.write_export(workdir / "exports", 30)  # 150 items
    held = _paced_by_its_own_clock(monkeypatch)
    sent: list[tuple[float, int]] = []
    real = table.call

    def call(operation, **kwargs):
        if operation == "batch_write_item":
            sent.append((sum(held), len(next(iter(kwargs["RequestItems"].values())))))
        return real(operation, **kwargs)

    monkeypatch.setattr(table, "call", call)
    outcome = cs_import(capsys, "--files", "exports", "--rate", "50")
    assert outcome.code == 0, outcome.out
    total = 0
    for at, count in sent:
        total += count
        assert total <= 25 + 50 * at, (total, at)  # one request's burst, then 50 a second
    assert sum(held) >= (150 - 25) / 50
    assert outcome.report["writes"]["rate_limit"] == 50
    assert "at most 50 items a second" in outcome.out


def _refuse(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "slow down"}}, "BatchWriteItem")


def test_throttling_slows_the_import_down_and_loses_nothing(api, export, capsys, monkeypatch):
    real = table.call
    held = _paced_by_its_own_clock(monkeypatch)

    def throttle(n, kwargs):
        if n in (1, 4):
            raise _refuse("ProvisionedThroughputExceededException")
        if n == 2:
            raise _refuse("ThrottlingException")
        if n in (3, 6):  # the table takes 10 items, hands the rest back
            requests = next(iter(kwargs["RequestItems"].values()))
            real("batch_write_item", RequestItems={table.table_name(): requests[:10]})
            return {"UnprocessedItems": {table.table_name(): requests[10:]}}
        return None

    sent = _timed_writes(monkeypatch, throttle)
    outcome = cs_import(capsys, "--files", "exports")
    assert outcome.code == 0, outcome.out
    assert outcome.report["imported"] == {"conversations": N, "items": 5 * N}
    writes = outcome.report["writes"]
    assert writes["throttled"] == 5 and writes["resent_items"] == 25 * 3 + 15 * 2
    assert writes["slowed_to"] is not None and writes["slowed_to"] < 100  # halved at each push-back
    assert writes["requests"] == len(sent) and writes["items"] == 5 * N
    assert "throttled 5 times, slowed down to" in outcome.out
    assert sum(held) > 1.0  # the import was held back after the push-backs
    gaps = [b[0] - a[0] for a, b in zip(sent[:6], sent[1:7])]
    assert gaps[2] > gaps[0] > 0.02  # growing pauses before sending again
    now = clock.now_ms()
    stored = imported.stored_conversations(TARGET_KEY, list(export[1]))
    for sid, (service, children) in export[1].items():
        assert shown(*stored[sid], now) == shown(service, children, now)


def test_an_import_the_table_keeps_refusing_stops_and_resumes_later(api, export, capsys, monkeypatch):
    monkeypatch.setattr(imported, "ATTEMPTS", 3)
    real = table.call

    def refuse_after_26(n, kwargs):
        if n > 8:
            raise _refuse("ThrottlingException")

    _timed_writes(monkeypatch, refuse_after_26)
    stopped = cs_import(capsys, "--files", "exports")
    assert stopped.code == 3
    assert stopped.report["stopped"].startswith("DynamoDB refused a write 3 times (ThrottlingException)")
    assert 0 < stopped.report["imported"]["conversations"] < N
    monkeypatch.setattr(table, "call", real)
    resumed = cs_import(capsys, "--files", "exports")
    assert resumed.code == 0 and resumed.report["imported"]["conversations"] == N, resumed.out


# ---------------------------------------------------------------- the report


def test_the_json_report_says_everything_the_text_does(api, export, capsys, workdir):
    outcome = cs_import(capsys, "--files", "exports")
    report = outcome.report
    assert set(report) >= {"source", "target", "dry_run", "finished", "read", "imported", "skipped", "failed",
                           "unattached_records", "problems", "writes", "seconds", "conversations_per_second",
                           "checkpoint"}
    assert report["finished"] is True and report["stopped"] is None and report["failed"] == 0
    assert report["read"] == {"conversations": 60, "records": {"service": 60, "state": 120, "task": 120}}
    assert report["source"].startswith(str(workdir / "exports")) and "target" in report["target"]
    assert report["writes"]["requests"] == 13 and report["writes"]["items_per_request"] == 23.08
    assert report["conversations_per_second"] > 0
    text = outcome.out
    assert "read      60 conversations (60 service, 120 state, 120 task)" in text
    assert "imported  60 conversations (300 items)" in text
    assert "13 BatchWriteItem requests, 23.08 items a request" in text


# ---------------------------------------------------------------- sources: S3, the export stream


def test_export_files_in_s3_and_a_resume_that_reads_from_where_it_stopped(api, export, capsys, workdir, monkeypatch):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="exports-bucket")
    for path in (workdir / "exports").iterdir():
        s3.upload_file(str(path), "exports-bucket", f"cs/2026/{path.name}")
    s3.put_object(Bucket="exports-bucket", Key="cs/2026/export20200101_000000_000_services.csv", Body=b"old")
    ranges = []
    real_get = s3.get_object

    sent = {"n": 0}
    real = table.call

    def interrupt(operation, **kwargs):
        if operation == "batch_write_item":
            sent["n"] += 1
            if sent["n"] == 9:
                raise KeyboardInterrupt
        return real(operation, **kwargs)

    monkeypatch.setattr(table, "call", interrupt)

    def client(profile=None, region=None):
        def get_object(**kwargs):
            ranges.append(kwargs.get("Range"))
            return real_get(**kwargs)
        s3.get_object = get_object
        return s3

    monkeypatch.setattr(imported, "s3_client", client)
    stopped = cs_import(capsys, "--files", "s3://exports-bucket/cs/2026/")
    assert stopped.code == 130
    resumed = cs_import(capsys, "--files", "s3://exports-bucket/cs/2026/")
    assert resumed.code == 0, resumed.out
    assert resumed.report["imported"]["conversations"] == N
    assert resumed.report["source"].startswith("s3://exports-bucket/cs/2026/export")
    assert any(r and r.startswith("bytes=") for r in ranges)  # the resumed run read the rest only
    now = clock.now_ms()
    stored = imported.stored_conversations(TARGET_KEY, list(export[1]))
    assert all(shown(*stored[sid], now) == shown(s, c, now) for sid, (s, c) in export[1].items())


class _Response:
    """What urllib.request.urlopen returns, for a reply of the in-process API."""

    def __init__(self, reply):
        self.reply = reply
        self.headers = http.client.HTTPMessage()
        for name, value in reply.headers.items():
            self.headers[name] = value

    def read(self) -> bytes:
        return self.reply.text.encode()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_the_export_stream_of_a_running_context_services_is_a_source(api, capsys, frozen, monkeypatch):
    import io
    import urllib.error

    import lib.migration.stream as stream_module

    source = {"ContactCenterId": "source-cc", "GroupId": "g1"}
    ids = varied.create(api, source, frozen.advance)
    seen: list[tuple[str, dict]] = []

    def urlopen(request, timeout):
        url = request.full_url
        headers = dict(request.header_items())
        seen.append((url, headers))
        reply = api.get(url.split("/genesys/1/cs", 1)[1], headers=headers)
        if reply.status >= 400:
            raise urllib.error.HTTPError(url, reply.status, "refused", None, io.BytesIO(reply.text.encode()))
        return _Response(reply)

    monkeypatch.setattr(stream_module.urllib.request, "urlopen", urlopen)
    outcome = cs_import(capsys, "--url", "http://source.example/genesys/1/cs", "--source-contact-center", "source-cc",
                        "--source-group", "g1", "--page-size", "3")
    assert outcome.code == 0, outcome.out
    assert outcome.report["imported"]["conversations"] == len(ids)
    assert len(seen) == 3 and all("export_content=true" in url and "limit=3" in url for url, _ in seen)
    assert all(h.get("Contactcenterid") == "source-cc" and h.get("Groupid") == "g1" for _, h in seen)
    for path in varied.list_routes():  # (every route: the round trip from files, test_import_round_trip.py)
        a, b = api.get(path, headers=source), api.get(path, headers=TARGET)
        assert (b.status, b.json) == (a.status, a.json), path

    refused = cs_import(capsys, "--url", "http://source.example/genesys/1/cs", "--time-from", "2030-01-01T00:00:00Z",
                        "--time-to", "2029-01-01T00:00:00Z", report="refused.json")
    assert refused.code == 3
    assert "400 ValidationException: time_from: the window starts after time_to" in refused.report["stopped"]


# ---------------------------------------------------------------- imported conversations in maintenance


def test_maintenance_completes_purges_and_exports_imported_conversations_as_its_own(api, export, capsys, frozen):
    outcome = cs_import(capsys, "--files", "exports", "--auto-complete-after", "60")
    assert outcome.code == 0, outcome.out
    active_ids = active(export)
    assert api.get(f"/services/{active_ids[0]}", headers=TARGET).json.get("completed") is None
    frozen.advance(61)
    shown_now = api.get(f"/services/{active_ids[0]}", headers=TARGET).json
    assert shown_now["completed"] == {"timestamp": clock.format_ms(frozen.now - 1000)}  # import + 60 s
    recorded = maintenance.scheduled(None)
    assert recorded["auto_completed"] == N // 2  # every imported active service, from the due index
    assert api.get(f"/services/{active_ids[0]}", headers=TARGET).json == shown_now
    completed = api.get("/customers/customer-1/services/completed", headers=TARGET)
    assert [s["service_id"] for s in completed.json] == [varied.stored_conversation("x", 1, 0)[0].service_id]

    purge = api.post("/maintenance/purge", {"limit": "2027-01-01T00:00:00Z", "operation": "purge.service.completed"},
                     headers=TARGET)
    assert purge.status == 200 and purge.json == {"purged": N}
    assert api.get(f"/services/{active_ids[0]}", headers=TARGET).status == 404
    stream = api.get(f"/maintenance/services/stream?{varied.WINDOW}", headers=TARGET)
    assert stream.json == []


def test_state_and_task_ids_continue_after_the_imported_ones(api, export, capsys):
    cs_import(capsys, "--files", "exports")
    sid = active(export)[0]
    state = api.post(f"/services/{sid}/states/start", {"state_type": "next", "previous_state_id": 2}, headers=TARGET)
    task = api.post(f"/services/{sid}/tasks/start", {"task_type": "t", "state_id": 2}, headers=TARGET)
    assert (state.status, state.json, task.status, task.json) == (201, {"state_id": 3}, 201, {"task_id": 3})
    # The imported state's count of attached tasks holds: its end completes every task in it.
    assert api.post(f"/services/{sid}/states/2/end", headers=TARGET).status == 204
    assert api.get(f"/services/{sid}/tasks/3", headers=TARGET).json["completed"]
    composite = api.post("/services_composite/start", {"services": [
        {"service": {"customer_id": "customer-1", "service_type": "billing"}, "state": {"state_type": "solve"}}]},
        headers=TARGET)
    assert composite.json["services"][0]["service_id"] == sid  # composite starts find an imported active service


def test_expired_conversations_and_second_records_of_a_service_are_skipped(api, workdir, capsys):
    varied.write_export(workdir / "exports", 4)
    services = next((workdir / "exports").glob("*_services.jsonl"))

    def change(lines):
        record = json.loads(lines[0])
        record["expiration_time"] = "2020-01-01T00:00:00.000Z"  # expired since the export
        return [json.dumps(record), *lines[1:], lines[1].replace('"billing"', '"other"')]

    _rewrite(services, change)
    outcome = cs_import(capsys, "--files", "exports")
    assert outcome.code == 1, outcome.out
    assert outcome.report["imported"]["conversations"] == 3
    assert outcome.report["skipped"]["expired"] == 1 and outcome.report["skipped"]["bad record"] == 1
    name = services.name
    assert outcome.where("expired") == {f"{name} line 1": "its expiration_time has passed"}
    assert outcome.where("bad record")[f"{name} line 5"].startswith("a second record of service")


def test_imported_active_services_get_the_targets_auto_complete_default(api, export, capsys, frozen, monkeypatch):
    monkeypatch.setenv("AUTO_COMPLETE_AFTER", "30m")
    settings.settings.cache_clear()
    try:
        assert cs_import(capsys, "--files", "exports").code == 0
        sid = active(export)[0]
        frozen.advance(29 * 60)
        assert "completed" not in api.get(f"/services/{sid}", headers=TARGET).json
        frozen.advance(61)
        assert api.get(f"/services/{sid}", headers=TARGET).json["completed"]
        never = cs_import(capsys, "--files", "exports", "--auto-complete-after", "never", "--contact-center", "other",
                          report="never.json")
        assert never.code == 0
        frozen.advance(86400 * 30)
        assert "completed" not in api.get(f"/services/{sid}", headers={"ContactCenterId": "other"}).json
    finally:
        settings.settings.cache_clear()
