"""Import (§11) in process, on moto: varied conversations created through the API, exported to files
(JSON Lines), imported into an empty tenant with `cs-import`, exported again: the same files, and every
list, read and export stream answers the same in both tenants."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import varied
from lib import clock, settings
from lib.migration import command
from tests.api.feed_stream import events_of
from tests.support import count_calls

SOURCE = {"ContactCenterId": "source-cc", "GroupId": "g1"}
TARGET = {"ContactCenterId": "target-cc"}


@pytest.fixture
def items(table):
    """All stored items, as the shared fixture's, without moto's slow Scan (bench.varied.table_items)."""
    return varied.table_items


@pytest.fixture
def exports(tmp_path, monkeypatch):
    folder = tmp_path / "exports"
    monkeypatch.setenv("EXPORT_DIR", str(folder))
    monkeypatch.chdir(tmp_path)  # the checkpoint folder (.cs-import) goes here
    settings.settings.cache_clear()
    yield folder
    settings.settings.cache_clear()


def export(api, headers) -> dict[str, bytes]:
    reply = api.post(f"/maintenance/services/files?{varied.WINDOW}&format=json", headers=headers)
    assert reply.status == 200, reply.text
    folder = Path(os.environ["EXPORT_DIR"])
    return {name.rsplit("_", 1)[1]: (folder / name).read_bytes() for name in reply.json["created"]}


def cs_import(*args: str) -> int:
    return command.main(["--table", os.environ["TABLE_NAME"], "--progress", "none", *args])


def test_files_round_trip_gives_the_same_files_and_the_same_answers(api, exports, frozen, capsys):
    ids = varied.create(api, SOURCE, frozen.advance)
    first = export(api, SOURCE)
    assert first["services.jsonl"].count(b"\n") == len(ids)

    code = cs_import("--files", str(exports), "--contact-center", "target-cc", "--report", "report.json")
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"imported  {len(ids)} conversations" in out

    frozen.advance(1)
    second = export(api, TARGET)
    assert second == first
    for path in varied.routes(ids):
        source, target = api.get(path, headers=SOURCE), api.get(path, headers=TARGET)
        assert (target.status, target.json) == (source.status, source.json), path


# What an import cannot copy, and why (docs/DESIGN.md, Import): the moment of the last write (the
# import is the last write: auto-complete and a sliding expiration count from it), the write token,
# the TTLs derived from the import time, and whether the expiration was explicit (kept as imported).
# Nor the change feed's book-keeping (docs/DESIGN.md, Change feed): an import publishes nothing unless
# asked, so its service items hold no `ev` and a `seq` of 0, nor the events a summary's cascade
# counted apart (`cx`). (`open`, `open_sum` and the summary of active children, `act` trusted with
# `ax`, are counted from the imported children as the API's writes keep them: compared.) And an imported
# service item says which incarnation of its id it is (`inc`, the run's token: its events' ids name it,
# since the id may have been deleted here before), which a service the API made has no need of.
NOT_COPIED = {"op", "last_write_ms", "auto_complete_at", "GSI5SK", "GSI6SK", "expire_at", "children_ttl",
              "expiry_explicit", "aca_ms", "auto_complete_after", "GSI5PK", "GSI6PK", "seq", "ev", "cx", "inc"}


def _stored(items, tenant: str, service_id: str) -> list[dict]:
    prefix = tenant + "#"
    found = []
    for item in items():
        if item["PK"] == f"{tenant}#C#{service_id}" and item["type"] != "lockref":
            found.append({k: ("T" if v == tenant else v.replace(prefix, "T#", 1) if isinstance(v, str)
                              and v.startswith(prefix) else v) for k, v in item.items() if k not in NOT_COPIED})
    return sorted(found, key=lambda item: item["SK"])


def test_imported_items_are_the_items_the_api_stores(api, exports, frozen, capsys, items):
    ids = varied.create(api, SOURCE, frozen.advance)
    export(api, SOURCE)
    assert cs_import("--files", str(exports), "--contact-center", "target-cc") == 0, capsys.readouterr().out
    # (The other conversations are stored as they are shown: children completed by their service's end,
    # a service past its auto-complete moment, are shown completed and stored so.)
    for role in ("anonymous", "associated", "moved", "cascade", "composite"):
        source = _stored(items, "source-cc|g1", ids[role])
        target = _stored(items, "target-cc|", ids[role])
        assert target == source, role
        service = next(item for item in target if item["type"] == "service")
        assert {"GSI1PK", "GSI2PK", "GSI3PK", "owner_done_pk"} <= set(service)
        made, imported = (next(i for i in items() if i["PK"] == f"{tenant}#C#{ids[role]}" and i["type"] == "service")
                          for tenant in ("source-cc|g1", "target-cc|"))
        assert "inc" not in made and imported["inc"] == imported["op"]  # the run's token (no write since)


def test_purge_takes_the_same_conversations_from_both_tenants(api, exports, frozen, capsys):
    varied.create(api, SOURCE, frozen.advance)
    export(api, SOURCE)
    assert cs_import("--files", str(exports), "--contact-center", "target-cc") == 0, capsys.readouterr().out
    for operation in ("purge.service.completed.anonymous", "purge.service.started.anonymous",
                      "purge.service.completed", "purge.service.all"):
        body = {"limit": "2026-03-05T01:30:00.000Z", "operation": operation}
        source, target = (api.post("/maintenance/purge", body, headers=h) for h in (SOURCE, TARGET))
        assert (target.status, target.json) == (source.status, source.json), operation
        left = f"/maintenance/services/stream?{varied.WINDOW}&filter_events=any"  # the services a purge left
        a, b = api.get(left, headers=SOURCE), api.get(left, headers=TARGET)
        assert (b.status, b.json) == (a.status, a.json), operation
    for path in varied.list_routes():  # what the purges left, as every owner's list and the export show it
        a, b = api.get(path, headers=SOURCE), api.get(path, headers=TARGET)
        assert (b.status, b.json) == (a.status, a.json), path


# ---------------------------------------------------------------- the change feed's events, when asked


def _service_items(items, tenant: str) -> dict[str, dict]:
    return {item["service_id"]: item for item in items() if item["type"] == "service" and item["tenant"] == tenant}


def _steps(entries: list[dict]) -> list[tuple]:
    return [(e["name"], e["data"].get("state_id"), e["data"].get("task_id"), e["data"].get("reason"), e["at"])
            for e in entries]


def test_asked_for_events_each_service_item_carries_its_history_and_otherwise_none(api, exports, frozen, capsys,
                                                                                     items):
    ids = varied.create(api, SOURCE, frozen.advance)
    export(api, SOURCE)
    assert cs_import("--files", str(exports), "--contact-center", "plain") == 0, capsys.readouterr().out
    assert cs_import("--files", str(exports), "--contact-center", "feed", "--emit-events", "--report", "feed.json") == 0
    out = capsys.readouterr().out
    plain, feed = _service_items(items, "plain|"), _service_items(items, "feed|")
    assert set(plain) == set(feed) == set(ids.values())
    assert all("ev" not in item and item.get("seq", 0) == 0 for item in plain.values())  # nothing to publish
    assert all(item["seq"] == len(item["ev"]) > 0 for item in feed.values())
    total = sum(item["seq"] for item in feed.values())
    assert "change-feed events)" in out and json.loads(Path("feed.json").read_text())["change_feed_events"] == total

    ms = clock.parse_timestamp
    day1 = varied.at(1, 9, 0)[:14]  # 2026-03-01T09:
    t = {m: ms(f"{day1}{m:02d}:00.000Z") for m in (0, 1, 2, 5, 6, 7, 8)}
    end = ms(varied.at(1, 10))
    assert _steps(feed[ids["completed"]]["ev"]) == [
        ("ServiceStarted", None, None, None, t[0]),
        ("StateStarted", 1, None, None, t[1]),
        ("TaskStarted", 1, 1, None, t[2]),
        ("StateCompleted", 1, None, "transition", t[5]),  # the transition's end, its task's cascade, the next state
        ("TaskCompleted", 1, 1, "state_completed", t[5]),
        ("StateStarted", 2, None, None, t[5]),
        ("TaskStarted", 2, 2, None, t[6]),
        ("TaskStarted", None, 3, None, t[7]),
        ("TaskCompleted", 2, 2, "request", t[8]),
        ("ServiceCompleted", None, None, "request", end),  # then what the service's end completed
        ("StateCompleted", 2, None, "service_completed", end),
        ("TaskCompleted", None, 3, "service_completed", end),
    ]
    started, completed = feed[ids["completed"]]["ev"][0]["data"], feed[ids["completed"]]["ev"][9]["data"]
    assert started["attached_keys"] == sorted(["channel", "score", "big", "nested", "émoji", "closing"])  # held now
    assert started["started"]["media_type"] == "voice" and started["service_type"] == "billing"
    assert completed["disposition"] == "resolved" and completed["duration"] == end - t[0]
    assert completed["completed"]["resource_id"] == 12
    assert [s[0:4] for s in _steps(feed[ids["cascade"]]["ev"])][-3:] == [
        ("StateCompleted", 1, None, "request"), ("TaskCompleted", 1, 1, "state_completed"),
        ("TaskCompleted", 1, 2, "state_completed")]
    # The events change nothing the API shows.
    for sid in ids.values():
        path = f"/services/{sid}{varied.EMBED}"
        assert api.get(path, headers={"ContactCenterId": "feed"}).json == \
            api.get(path, headers={"ContactCenterId": "plain"}).json


def test_an_imported_conversation_ends_in_one_write_with_its_whole_cascade(api, table, exports, frozen, capsys,
                                                                           items, feed):
    """An import stores each service item with its active children's count and checksum and, when
    it fits, their summary (lib.store.recording.record_whole), as the API's own writes keep them: a
    task's end needs no read first, a service's end is the one write that reads nothing, and the
    change feed publishes the whole cascade (from the summary; past it, from the children the
    publisher reads and checks against the counts)."""
    from lib.feed.events import events_of as published
    from lib.rules.feed import active_children
    from lib.store import table as store_table

    def start(path: str, body: dict) -> int | str:
        reply = api.post(path, body, headers=SOURCE)
        assert reply.status == 201, reply.text
        return reply.json.get("service_id") or reply.json.get("state_id") or reply.json["task_id"]

    small = start("/services/start", {"customer_id": "imp-1"})
    start(f"/services/{small}/states/start", {"state_type": "s"})
    start(f"/services/{small}/tasks/start", {"task_type": "t0", "state_id": 1})
    start(f"/services/{small}/tasks/start", {"task_type": "t1", "state_id": 1})
    big = start("/services/start", {"customer_id": "imp-2"})
    tasks = 60  # past the summary's size: the item keeps counts only
    for n in range(tasks):
        start(f"/services/{big}/tasks/start", {"task_type": f"t{n}"})
    start(f"/services/{big}/tasks/start", {"task_type": "done"})
    assert api.post(f"/services/{big}/tasks/{tasks + 1}/end", {}, headers=SOURCE).status == 204
    export(api, SOURCE)
    # (Expirations that slide: an end then assumes rightly what it does not read. With the expirations
    # kept explicit, the end's first write is refused and it is sent again: test_feed_summary.)
    assert cs_import("--files", str(exports), "--contact-center", "target-cc", "--sliding-expiration") == 0, \
        capsys.readouterr().out
    table = store_table.client()  # the import pointed the store at its target with a client of its own
    feed.take()
    stored = {sid: next(i for i in items() if i["PK"] == f"target-cc|#C#{sid}" and i["type"] == "service")
              for sid in (small, big)}
    assert (stored[small]["open"], stored[small]["ax"], len(stored[small]["act"])) == (3, True, 3)
    assert stored[big]["open"] == tasks and "ax" not in stored[big] and stored[big]["open_sum"] > 0

    with count_calls(table) as calls:
        assert api.post(f"/services/{small}/tasks/1/end", {}, headers=TARGET).status == 204
    # One round trip: the transaction relying on the summary, sent at once with the task's read (without
    # the summary, that read's answer would go into a second transaction).
    assert sorted(calls) == ["GetItem", "TransactWriteItems"]
    with count_calls(table) as calls:
        assert api.post(f"/services/{small}/end", {}, headers=TARGET).status == 204
    assert calls == ["UpdateItem"]
    with count_calls(table) as calls:
        assert api.post(f"/services/{big}/end", {}, headers=TARGET).status == 204
    assert calls == ["UpdateItem"]

    records = feed.records()
    mine = [e for r in records for e in published(r, active_children) if e.tenant == "target-cc|"]
    assert [(e.service_id, e.name, e.sequence) for e in mine[:4]] == [
        (small, "TaskCompleted", 1), (small, "ServiceCompleted", 2), (small, "StateCompleted", 3),
        (small, "TaskCompleted", 4)]
    rest = mine[4:]
    assert [e.name for e in rest] == ["ServiceCompleted"] + ["TaskCompleted"] * tasks
    assert sorted(e.data["task_type"] for e in rest[1:]) == sorted(f"t{n}" for n in range(tasks))
    assert [e.sequence for e in rest] == list(range(1, tasks + 2))
    feed.seen += [e for r in records for e in events_of(r)]  # the test's own reading, for its gap check
