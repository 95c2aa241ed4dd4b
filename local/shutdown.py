"""How `make run` is asked to stop: SIGTERM, SIGINT or SIGHUP, once or many times, from anyone.

A stop request is a flag and a byte on a pipe, nothing more. The signal handler only records which
signal came first: it takes no lock, prints nothing and stops nothing. Python runs signal handlers
in the main thread between any two bytecodes - inside that thread's own `with lock:` blocks too - and
a second signal can arrive while the first handler runs (make forwards its own SIGTERM to the server
that also got the group's), so a handler that stops things itself can deadlock on a lock it, or an
outer call of itself, already holds. Here the main thread waits on the pipe and stops everything
once, after the handlers have returned.

The byte is written by the interpreter's C-level handler (signal.set_wakeup_fd) the moment the
signal arrives, whichever thread the kernel delivers it to: a main thread blocked in select() or a
pipe read wakes up even when another thread took the signal.
"""

from __future__ import annotations

import os
import select
import signal
import time
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_STOP_BYTES = frozenset({0, *(int(s) & 0xFF for s in STOP_SIGNALS)})


class StopRequested(Exception):
    """Raised by :meth:`StopSignals.check` when a stop was asked for while the run was starting."""


class StopSignals:
    """SIGTERM, SIGINT and SIGHUP turned into one stop request the main thread can wait for."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self.received: int | None = None  # the first stop signal; set by the handler only
        self._previous: dict[int, Any] = {}
        self._previous_wakeup = -1
        self._piped = False  # a stop signal's byte was read from the pipe

    def install(self, keep_ignored: tuple[int, ...] = (signal.SIGINT,)) -> list[int]:
        """Handle the stop signals (main thread only). A signal in `keep_ignored` that this process
        inherited as ignored stays ignored: a background job of a non-interactive shell gets SIGINT
        ignored so that Ctrl-C reaches only the foreground job (SIGTERM still stops it). The signals
        now handled."""
        handled = []
        self._previous_wakeup = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            if signum in keep_ignored and signal.getsignal(signum) is signal.SIG_IGN:
                continue
            self._previous[signum] = signal.signal(signum, self._handle)
            handled.append(signum)
        return handled

    def _handle(self, signum: int, _frame: Any) -> None:
        # No lock, no I/O, no logging: see the module doc. The wakeup fd has the byte already.
        if self.received is None:
            self.received = signum

    def request(self) -> None:
        """Ask for a stop from code (what a signal does)."""
        if self.received is None:
            self.received = 0
        try:
            os.write(self._write, b"\0")
        except BlockingIOError:
            pass  # the pipe is full of earlier requests: one is enough

    def _drain(self) -> None:
        """Read what the pipe holds: a stop signal's number (written by the C-level handler before
        the Python-level one has run) or 0 (request) is a stop; any other signal is not."""
        try:
            data = os.read(self._read, 4096)
        except BlockingIOError:
            return
        if any(byte in _STOP_BYTES for byte in data):
            self._piped = True

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        if self.received is None and not self._piped:
            self._drain()
        return self.received is not None or self._piped

    def fileno(self) -> int:
        """Readable when a signal arrived: call :attr:`requested` to know whether it was a stop."""
        return self._read

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is asked for (or `timeout` seconds pass); whether one was."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.requested:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            select.select([self._read], [], [], left)
        return True

    def check(self) -> None:
        """Raise StopRequested if a stop was asked for (start-up calls it between its steps)."""
        if self.requested:
            raise StopRequested(self.name)

    def uninstall(self) -> None:
        """Put the previous handlers back and close the pipe (tests; the run itself exits instead)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self._read)
        os.close(self._write)

    @property
    def name(self) -> str:
        """The signal that asked for the stop, for the log."""
        return signal.Signals(self.received).name if self.received else "stop request"
