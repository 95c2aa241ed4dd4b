"""Source: export files in JSON Lines (§8), from a folder or from S3.

An export is a set of three files named `export<yyyyMMdd>_<HHmmss>_<SSS>_<kind>.jsonl` (services,
states, tasks), one record per line. A folder (or S3 prefix) may hold several sets: the newest is
read unless one is named (`--set`, a prefix of its name; or a path to one of its files).

The services file drives the import, in order: a position in it (byte offset and line) is the
checkpoint. States and tasks are looked up by their service: they are first staged in a temporary
SQLite database indexed by service id (one pass, constant memory), so nothing depends on the three
files keeping the same order, and a state or task whose service is not in the services file is found
and reported. A line that is not valid JSON is charged to the service its text names, when it names
one, so that conversation is skipped whole rather than imported without it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lib.migration.records import Part, Unit, read_part
from lib.migration.source import Batch, SourceError
from lib.store import imported

KINDS = {"service": "services", "state": "states", "task": "tasks"}
SET_NAME = re.compile(r"(?P<prefix>.*?)_(?P<kind>services|states|tasks)\.(?P<ext>jsonl|csv)$")
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ExportSet:
    """One export: where it is and the name of each of its three files."""

    location: str  # a folder, or s3://bucket/prefix
    prefix: str
    names: dict[str, str]  # kind -> file name or object key
    sizes: dict[str, int]


def _choose(location: str, names: dict[str, int], wanted: str | None) -> ExportSet:
    """The set to read among files `names` (name -> size): the one named, else the newest."""
    sets: dict[str, dict[str, str]] = {}
    csv_only = False
    for name in names:
        found = SET_NAME.search(name)
        if found is None:
            continue
        if found["ext"] == "csv":
            csv_only = True
            continue
        sets.setdefault(found["prefix"], {})[found["kind"]] = name
    if wanted:
        sets = {prefix: kinds for prefix, kinds in sets.items() if prefix.rsplit("/", 1)[-1].startswith(wanted)
                or prefix == wanted}
    complete = {prefix: kinds for prefix, kinds in sets.items() if len(kinds) == 3}
    if not complete:
        if sets:
            prefix, kinds = max(sets.items())
            missing = sorted(set(KINDS.values()) - set(kinds))
            raise SourceError(f"export {prefix.rsplit('/', 1)[-1]} in {location} has no {', '.join(missing)} file")
        why = "only CSV export files (export with format=json: JSON Lines)" if csv_only else "no export files"
        raise SourceError(f"{location}: {why}{' named ' + wanted if wanted else ''} "
                          "(export<yyyyMMdd>_<HHmmss>_<SSS>_services.jsonl, _states.jsonl, _tasks.jsonl)")
    prefix = max(complete)  # the names start with the export's time: the newest sorts last
    kinds = complete[prefix]
    return ExportSet(location, prefix.rsplit("/", 1)[-1], {k: kinds[KINDS[k]] for k in KINDS},
                     {k: names[kinds[KINDS[k]]] for k in KINDS})


def locate(path: str, wanted: str | None = None, s3: Any = None) -> ExportSet:
    """The export set at `path`: a folder, one of the set's files, or `s3://bucket/prefix`."""
    if path.startswith("s3://"):
        bucket, _, prefix = path[5:].partition("/")
        if not bucket:
            raise SourceError(f"{path}: no bucket")
        try:
            names = imported.s3_objects(s3 or imported.s3_client(), bucket, prefix)
        except imported.SourceUnreadable as error:
            raise SourceError(str(error)) from None
        named = SET_NAME.search(prefix)
        if named:
            wanted = wanted or named["prefix"].rsplit("/", 1)[-1]
        return _choose(f"s3://{bucket}", names, wanted)
    target = Path(path).expanduser()
    if target.is_file():
        found = SET_NAME.search(target.name)
        if found is None:
            raise SourceError(f"{path}: not an export file (export<...>_services.jsonl)")
        wanted, target = wanted or found["prefix"], target.parent
    if not target.is_dir():
        raise SourceError(f"{path}: no such folder or file")
    names = {entry.name: entry.stat().st_size for entry in target.iterdir() if entry.is_file()}
    return _choose(str(target.resolve()), names, wanted)


def lines(handle: IO[bytes], offset: int, line: int) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset after it, text) of every line from `offset` (which is line `line`)."""
    rest = b""
    for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
        pieces = (rest + chunk).split(b"\n")
        rest = pieces.pop()
        for piece in pieces:
            offset += len(piece) + 1
            line += 1
            yield line, offset, piece.rstrip(b"\r")
    if rest:
        yield line + 1, offset + len(rest), rest.rstrip(b"\r")


@dataclass
class FileSource:
    """Reads an export set (see the module doc)."""

    export: ExportSet
    s3: Any = None
    total: int | None = None
    unattached: list[Part] = field(default_factory=list)
    _db: sqlite3.Connection | None = None
    _folder: tempfile.TemporaryDirectory[str] | None = None

    @property
    def description(self) -> str:
        return f"{self.export.location}/{self.export.names['service'].removesuffix('_services.jsonl')}_*.jsonl"

    @property
    def identity(self) -> dict[str, Any]:
        """What makes a checkpoint belong to this source (a changed file starts over)."""
        return {"files": self.export.location, "set": self.export.prefix, "sizes": self.export.sizes}

    def _open(self, kind: str, offset: int = 0) -> IO[bytes]:
        name = self.export.names[kind]
        if self.export.location.startswith("s3://"):
            try:
                stream: IO[bytes] = imported.s3_read(self.s3, self.export.location[5:], name, offset)
                return stream
            except imported.SourceUnreadable as error:
                raise SourceError(str(error)) from None
        handle = open(os.path.join(self.export.location, name), "rb")
        handle.seek(offset)
        return handle

    def _where(self, kind: str, line: int) -> str:
        return f"{self.export.names[kind].rsplit('/', 1)[-1]} line {line}"

    def prepare(self) -> None:
        """Stage states and tasks by service; count the services; find the unattached records."""
        if self.export.location.startswith("s3://") and self.s3 is None:
            self.s3 = imported.s3_client()
        self._folder = tempfile.TemporaryDirectory(prefix="cs-import-")
        db = sqlite3.connect(os.path.join(self._folder.name, "children.sqlite"))
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE children (service_id TEXT, kind TEXT, line INTEGER, text BLOB)")
        db.execute("CREATE TABLE services (service_id TEXT)")
        for kind in ("state", "task"):
            with self._open(kind) as handle:
                rows = []
                for number, _, text in lines(handle, 0, 0):
                    if not text.strip():
                        continue
                    part = read_part(kind, self._where(kind, number), text)
                    if part.service_id is None:
                        self.unattached.append(part)
                        continue
                    rows.append((part.service_id, kind, number, text))
                    if len(rows) >= 5000:
                        db.executemany("INSERT INTO children VALUES (?, ?, ?, ?)", rows)
                        rows.clear()
                db.executemany("INSERT INTO children VALUES (?, ?, ?, ?)", rows)
        total = 0
        with self._open("service") as handle:
            ids = []
            for number, _, text in lines(handle, 0, 0):
                if text.strip():
                    total += 1
                    part = read_part("service", self._where("service", number), text)
                    if part.service_id is not None:
                        ids.append((part.service_id,))
            db.executemany("INSERT INTO services VALUES (?)", ids)
        db.execute("CREATE INDEX children_by_service ON children (service_id)")
        db.execute("CREATE INDEX services_by_id ON services (service_id)")
        for service_id, kind, number in db.execute(
                "SELECT service_id, kind, line FROM children WHERE service_id NOT IN (SELECT service_id FROM services) "
                "ORDER BY kind, line"):
            self.unattached.append(Part(kind, self._where(kind, number), problem=f"service {service_id} is not in "
                                        "the services file", service_id=service_id))
        self.total, self._db = total, db

    def batches(self, position: dict[str, Any] | None, size: int) -> Iterator[Batch]:
        """Conversations in the services file's order, `size` at a time, from `position`."""
        if self._db is None:
            self.prepare()
        offset, line = (position or {}).get("offset", 0), (position or {}).get("line", 0)
        units: list[Unit] = []
        with self._open("service", offset) as handle:
            for number, after, text in lines(handle, offset, line):
                if text.strip():
                    units.append(Unit(read_part("service", self._where("service", number), text)))
                if len(units) >= size:
                    yield Batch(self._with_children(units), {"offset": after, "line": number})
                    units = []
                offset, line = after, number
        if units:
            yield Batch(self._with_children(units), {"offset": offset, "line": line})

    def _with_children(self, units: list[Unit]) -> list[Unit]:
        by_id: dict[str, list[Unit]] = {}
        for unit in units:
            if unit.service_id is not None:
                by_id.setdefault(unit.service_id, []).append(unit)
        if by_id and self._db is not None:
            marks = ",".join("?" * len(by_id))
            for service_id, kind, number, text in self._db.execute(
                    f"SELECT service_id, kind, line, text FROM children WHERE service_id IN ({marks}) "
                    "ORDER BY kind, line", list(by_id)):
                part = read_part(kind, self._where(kind, number), text)
                for unit in by_id[service_id]:
                    unit.children.append(part)
        return units

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
