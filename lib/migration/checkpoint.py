"""Where an interrupted import resumes: a small JSON file written after every batch whose
conversations are all stored (atomically: a temporary file renamed over the old one), holding the
source position after that batch, what was counted up to it, and the run's token (written on every
item, so the resumed run recognises the conversations its first attempt stored after the last
checkpoint).

The file belongs to one import (source and target): its key is a digest of both. By default it lives
in `.cs-import/` of the working directory, named by that key, so running the same command again after
an interruption resumes it, and running it again after it finished starts a new pass (which finds
every conversation already present).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.clock import format_ms, now_ms

VERSION = 1
FOLDER = ".cs-import"


class CheckpointError(Exception):
    """A checkpoint file that cannot be used for this import."""


def key_of(source: dict[str, Any], target: dict[str, Any]) -> str:
    text = json.dumps({"source": source, "target": target}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def default_path(key: str) -> Path:
    return Path(FOLDER) / f"checkpoint-{key[:16]}.json"


@dataclass
class Checkpoint:
    path: Path
    key: str
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    position: dict[str, Any] | None = None
    tally: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # what the first attempt fixed (the stream's window)
    started: str = field(default_factory=lambda: format_ms(now_ms()))
    finished: bool = False
    resumed: bool = False

    @classmethod
    def open(cls, path: Path, key: str, restart: bool = False) -> Checkpoint:
        """This import's unfinished checkpoint at `path`, else a new one. A file of another import is
        refused (unless `restart`), never overwritten by accident."""
        if path.exists() and not restart:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                raise CheckpointError(f"{path}: not a checkpoint ({error}); remove it or use --restart") from None
            if data.get("key") != key:
                raise CheckpointError(f"{path} is the checkpoint of another import (another source or target); "
                                      "choose another --checkpoint file, or --restart to replace it")
            if not data.get("finished"):
                return cls(path, key, data["token"], data.get("position"), data.get("tally", {}),
                           data.get("settings", {}), data.get("started", ""), False, True)
        return cls(path, key)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": VERSION, "key": self.key, "token": self.token, "started": self.started,
                "saved": format_ms(now_ms()), "finished": self.finished, "position": self.position,
                "settings": self.settings, "tally": self.tally}
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w") as handle:
            json.dump(data, handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
