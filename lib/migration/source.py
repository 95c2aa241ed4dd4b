"""What every source of an import offers (export files: lib.migration.files; a running Context
Services' export stream: lib.migration.stream)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from lib.migration.records import Part, Unit


class SourceError(Exception):
    """The source cannot be read (missing files, unreachable, refused): the import cannot start or go on."""


@dataclass
class Batch:
    """Conversations read together, and where the source continues after them."""

    units: list[Unit]
    position: dict[str, Any] | None  # where the next batch starts (a checkpoint resumes there)


class Source(Protocol):
    description: str  # what is read, for people
    identity: dict[str, Any]  # what makes a checkpoint belong to this source
    total: int | None  # conversations to read, when known
    unattached: list[Part]  # records that belong to no conversation (known after prepare)

    def prepare(self) -> None: ...

    def batches(self, position: dict[str, Any] | None, size: int) -> Iterator[Batch]: ...

    def close(self) -> None: ...
