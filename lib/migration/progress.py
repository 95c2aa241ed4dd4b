"""Progress of an import on stderr: on a terminal, one line redrawn in place (a bar when the total is
known, counts, rate and time left); otherwise plain lines every few seconds (logs, CI, pipes).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

BAR = 24
REDRAW_S = 0.2  # terminal
LINE_S = 5.0  # plain lines


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


@dataclass
class Progress:
    """`show(...)` as often as wanted; it draws at most every REDRAW_S (terminal) or LINE_S (plain)."""

    total: int | None = None  # conversations to read, when known
    mode: str = "auto"  # auto | bar | lines | none
    out: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], float] = time.monotonic
    done_before: int = 0  # conversations of an earlier attempt (a resumed import)
    _began: float | None = None
    _drawn: float = float("-inf")
    _width: int = 0

    def __post_init__(self) -> None:
        if self.mode == "auto":
            self.mode = "bar" if getattr(self.out, "isatty", lambda: False)() else "lines"
        self._began = self.clock()

    def line(self, done: int, imported: int, skipped: int, failed: int, dry_run: bool = False) -> str:
        began = self._began if self._began is not None else self.clock()
        elapsed = max(self.clock() - began, 1e-9)
        rate = (done - self.done_before) / elapsed
        counts = (f"{done:,}{'/' + format(self.total, ',') if self.total is not None else ''} conversations, "
                  f"{'would import' if dry_run else 'imported'} {imported:,}, skipped {skipped:,}, failed {failed:,}, "
                  f"{rate:,.0f}/s")
        if self.total:
            share = min(1.0, done / self.total)
            left = (self.total - done) / rate if rate > 0 else None
            bar = "#" * int(share * BAR) + "-" * (BAR - int(share * BAR))
            return f"[{bar}] {share:4.0%} {counts}" + (f", {_duration(left)} left" if left is not None else "")
        return counts + f", {_duration(elapsed)} elapsed"

    def show(self, done: int, imported: int, skipped: int, failed: int, dry_run: bool = False,
             final: bool = False) -> None:
        if self.mode == "none":
            return
        now = self.clock()
        if not final and now - self._drawn < (REDRAW_S if self.mode == "bar" else LINE_S):
            return
        self._drawn = now
        text = self.line(done, imported, skipped, failed, dry_run)
        if self.mode == "bar":
            self.out.write("\r" + text.ljust(self._width) + ("\n" if final else ""))
            self._width = len(text)
        else:
            self.out.write(f"import: {text}\n")
        self.out.flush()
