"""cs-import keeps service ids: an id deleted in the target (its erasure still pending, §2) and then
imported again must never lose what the import wrote to that older deletion's erasure, whether the
schedule runs after the import or in the middle of it (docs/DESIGN.md, "Delete")."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bench import varied
from lib.feed import events as feed_events
from lib.migration import command
from lib.store import erasure
from lib.store.keys import tenant_key
from tests.api import feed_stream
from tests.support import erase_deleted

TARGET = {"ContactCenterId": "target"}
TARGET_KEY = tenant_key("target", None)


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cs_import(capsys) -> tuple[dict[str, Any], str]:
    code = command.main(["--table", os.environ["TABLE_NAME"], "--progress", "none", "--contact-center", "target",
                         "--report", "report.json", "--files", "exports"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(Path("report.json").read_text()), out


def conversation_items(service_id: str) -> list[dict[str, Any]]:
    return sorted((i for i in varied.table_items() if i["PK"] == f"{TARGET_KEY}#C#{service_id}"),
                  key=lambda i: i["SK"])


def shown(api, service_id: str) -> tuple[Any, ...]:
    """The conversation as the API shows it: the service, its states, its tasks."""
    return tuple(api.get(f"/services/{service_id}{path}", headers=TARGET).json for path in ("", "/states", "/tasks"))


@pytest.fixture
def deleted(api, workdir, capsys):
    """Four conversations imported; the active one (number 1) given a third state through the API
    (an item the source does not have), then deleted: its erasure is pending. Returns its id, how the
    API showed the imported conversation, and its stored items then."""
    _, sample = varied.write_export(workdir / "exports", 4)
    report, _ = cs_import(capsys)
    assert report["imported"]["conversations"] == 4
    sid = varied.stored_conversation("x", 1, 0)[0].service_id
    before = shown(api, sid)
    stored = conversation_items(sid)
    started = api.post(f"/services/{sid}/states/start", {"state_type": "extra"}, headers=TARGET)
    assert started.status == 201 and started.json == {"state_id": 3}
    assert api.delete(f"/services/{sid}", headers=TARGET).status == 204
    assert api.get(f"/services/{sid}", headers=TARGET).status == 404
    return sid, before, stored


def assert_whole_again(api, sid: str, before: tuple[Any, ...], stored: list[dict[str, Any]]) -> None:
    assert shown(api, sid) == before  # readable, and the API-written state 3 of the deleted one is gone
    assert [i["SK"] for i in conversation_items(sid)] == [i["SK"] for i in stored]
    assert [i for i in varied.table_items() if i["SK"] in ("#ERASE",) or i.get("type") == "erased"] == []


def test_an_id_imported_again_while_its_deletion_is_pending_survives_the_schedule(api, deleted, capsys, frozen):
    sid, before, stored = deleted
    report, out = cs_import(capsys)
    assert report["imported"]["conversations"] == 1 and report["skipped"]["already present"] == 3
    # The import finished the pending erasure itself: the old 2 states + 2 tasks + the extra state.
    assert report["deleted_before"] == {"conversations": 1, "old_items_removed": 5}
    assert "deleted before: 1 ids were still being erased" in out and "5 old items removed" in out
    assert shown(api, sid) == before
    assert erase_deleted(frozen) == 1  # the deletion's erasure runs, finds the id taken over, leaves it
    assert_whole_again(api, sid, before, stored)
    assert api.post(f"/services/{sid}/states/start", {"state_type": "next"}, headers=TARGET).json == {"state_id": 3}


def test_a_schedule_run_caught_in_the_middle_of_the_import_removes_nothing_it_wrote(api, deleted, capsys, frozen,
                                                                                    monkeypatch):
    """The schedule lists the deleted conversation's items (the old states and tasks); the import then
    takes the id over and writes items with the same keys; the schedule's deletes come after: the
    fence they are conditional on has moved, so they remove nothing."""
    sid, before, stored = deleted
    listed = erasure._children
    during: list[dict[str, Any]] = []

    def list_then_import(pk: str) -> list[dict[str, Any]]:
        keys = listed(pk)
        if not during:  # (the import's own listing of the old items comes here too: once only)
            during.append({})
            during[0] = cs_import(capsys)[0]
        return keys

    monkeypatch.setattr(erasure, "_children", list_then_import)
    assert erase_deleted(frozen) == 1
    assert during[0]["imported"]["conversations"] == 1
    assert during[0]["deleted_before"] == {"conversations": 1, "old_items_removed": 5}
    assert_whole_again(api, sid, before, stored)


def test_an_id_imported_again_publishes_events_whose_ids_the_deleted_conversations_never_had(feed, api, deleted,
                                                                                             capsys):
    """Sequences start at 1 again for the conversation imported under a deleted one's id (another
    incarnation of the id); the event ids name the incarnation, so none repeats an id a consumer
    already saw for the deleted conversation (it would drop the new event as a redelivery)."""
    sid, _, _ = deleted
    code = command.main(["--table", os.environ["TABLE_NAME"], "--progress", "none", "--contact-center", "target",
                         "--report", "report.json", "--files", "exports", "--emit-events"])
    assert code == 0, capsys.readouterr().out
    assert api.post(f"/services/{sid}/states/start", {"state_type": "next"}, headers=TARGET).status == 201
    published: list[feed_events.FeedEvent] = []
    for record in feed.records():
        published += feed_events.events_of(record)
        feed.seen += feed_stream.events_of(record)  # the fixture's own check sees them too
    mine = [event for event in published if event.service_id == sid]
    old = [event for event in mine if event.incarnation == mine[0].incarnation]
    new = [event for event in mine if event.incarnation != mine[0].incarnation]
    # The deleted conversation (imported without events): the API's state start, then its deletion.
    assert [(e.name, e.sequence) for e in old] == [("StateStarted", 1), ("ServiceDeleted", 2)]
    # The one imported again: its history, then the API's state start, counted from 1 again.
    assert [e.sequence for e in new] == list(range(1, len(new) + 1)) and len(new) > 2
    assert new[0].name == "ServiceStarted" and new[-1].name == "StateStarted"
    assert {e.sequence for e in old} <= {e.sequence for e in new}  # the same sequences ...
    assert not {e.event_id for e in old} & {e.event_id for e in new}  # ... never the same event ids
    assert len({e.event_id for e in mine}) == len(mine)
    # Every later write keeps the incarnation: the new state's event names the new import's.
    stored = next(i for i in conversation_items(sid) if i["SK"] == "#SERVICE")
    assert new[-1].incarnation == stored["inc"] != old[0].incarnation
