"""Import (§11) in process, on moto: varied conversations created through the API, exported to files
(JSON Lines), imported into an empty tenant with `cs-import`, exported again: the same files, and every
list, read and export stream answers the same in both tenants."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lib import settings
from lib.migration import command
from tests import varied

SOURCE = {"ContactCenterId": "source-cc", "GroupId": "g1"}
TARGET = {"ContactCenterId": "target-cc"}


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
