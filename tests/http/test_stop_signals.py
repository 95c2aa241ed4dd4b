"""`make run` stops on SIGTERM, SIGINT and SIGHUP, sent once or repeatedly, to make's process group
(as a terminal's Ctrl-C or a supervisor does) or to the server alone, and SIGTERM to make alone (make
forwards it): within 5 s nothing of the run is left (no process of its group, no process below the
server) and every port it opened (the API, the embedded DynamoDB and SQS) is free again.

Each case is a real `make run` (PORT=0, LOCAL_WARM=0 so that a start takes about a second and a half),
several at a time. `make test` runs 28 cases (every signal to each target once; each repeat count with
every signal and with each target; and the moments below); `make stop-signals` (STOP_SIGNALS=all) runs
every signal x target x repeat count twice over with the same moments: 52. Some cases signal before the API is up, or while a function's execution
environment is still importing its handler (a request's cold start), not only when it is idle.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from local.template import ROOT

STOP_BUDGET = 5.0  # seconds from the (last) signal until nothing is left and the ports are free
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PARALLEL = 3


@dataclass
class Case:
    signals: tuple[int, ...]  # sent in this order, a few milliseconds apart
    target: str  # "group" (make's process group), "server" (the Python process), "make" (make alone)
    # "idle": API up; "starting": before the API is up; "warming": while LOCAL_WARM=1 starts one worker per
    # function; "cold-start": a request's worker imports its handler
    moment: str = "idle"

    @property
    def label(self) -> str:
        names = "+".join(signal.Signals(s).name for s in self.signals)
        return f"{names} to {self.target} ({self.moment})"


@dataclass
class Outcome:
    case: Case
    lines: list[str] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)
    code: int | None = None
    seconds: float | None = None
    left: set[int] = field(default_factory=set)
    busy_ports: set[int] = field(default_factory=set)


# How many times a signal is sent: once, repeated, and a burst (handlers nested in handlers).
REPEATS = (1, 3, 10)
# `make stop-signals` (STOP_SIGNALS=all): every signal x target x repeat count, twice over, besides the
# moments below (52 runs). `make test` runs every signal to every target once and every repeat count
# with every signal and with every target (pairwise: 12 runs instead of 36), and the same other cases.
EVERY = os.environ.get("STOP_SIGNALS") == "all"


def cases() -> list[Case]:
    found = []
    if EVERY:
        for _round in range(2):
            found += [Case((sig,) * n, target) for sig in SIGNALS for target in ("group", "server") for n in REPEATS]
    else:
        found += [Case((sig,), target) for sig in SIGNALS for target in ("group", "server")]
        for n, first in ((3, 0), (10, 1)):  # each signal with each target across the two counts
            found += [Case((sig,) * n, ("group", "server")[(i + first) % 2]) for i, sig in enumerate(SIGNALS)]
    found += [Case((signal.SIGTERM,), "make"), Case((signal.SIGTERM,) * 3, "make")]
    found += [Case((signal.SIGTERM, signal.SIGINT, signal.SIGHUP), "group"),
              Case((signal.SIGHUP, signal.SIGTERM), "server")]
    found += [Case((sig,), "group", "starting") for sig in SIGNALS]
    found += [Case((sig, sig), "server", "starting") for sig in SIGNALS]
    found += [Case((sig,), "group", "cold-start") for sig in SIGNALS] + [Case((signal.SIGTERM,), "server", "cold-start")]
    found += [Case((signal.SIGTERM,), "group", "warming"), Case((signal.SIGINT, signal.SIGINT), "server", "warming")]
    return found


# ---------------------------------------------------------------- processes and ports


def _stat(pid: int) -> list[str] | None:
    """state, ppid, pgrp, ... of a process (None when it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _running(pids: set[int]) -> set[int]:
    return {pid for pid in pids if (fields := _stat(pid)) is not None and fields[0] != "Z"}


def _processes() -> dict[int, list[str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = fields
    return found


def _group(pgid: int) -> set[int]:
    return {pid for pid, fields in _processes().items() if int(fields[2]) == pgid and fields[0] != "Z"}


def _descendants(pid: int) -> set[int]:
    parents = {child: int(fields[1]) for child, fields in _processes().items()}
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _port_busy(port: int) -> bool:
    """Whether something still listens on the port, or it cannot be bound again (as a restart of
    `make run` would bind it: SO_REUSEADDR, like every server)."""
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return True
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            again.bind(("127.0.0.1", port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def _listeners(port: int) -> set[int]:
    """The processes holding a socket bound to `port` on this machine (any state, either family), by
    the socket inodes of /proc/net/tcp* found among each process's descriptors."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] != "0":
                    inodes.add(f"socket:[{fields[9]}]")
    owners = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if any(_link(fd) in inodes for fd in (entry / "fd").iterdir()):
                    owners.add(int(entry.name))
    return owners


def _link(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _still_ours(port: int, ours: set[int], pgid: int) -> bool:
    """Whether a port of this run is still bound by this run: busy, and not held only by processes
    that are not this run's. Every test tier runs at once (make -j), binding ports the kernel hands
    out, so a port this run freed may be bound again by another server before it is probed; a
    process of this run that escaped its group (an orphan) still holds it and counts."""
    if not _port_busy(port):
        return False
    owners = _listeners(port)
    if not owners:
        return True  # busy, but no process found holding it: not proven someone else's
    return any(pid in ours or ((fields := _stat(pid)) is not None and int(fields[2]) == pgid) for pid in owners)


# ---------------------------------------------------------------- one case


def _environment(exports: Path, warm: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_ENDPOINT_URL") and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update({"LOCAL_WARM": "1" if warm else "0", "EXPORT_DIR": str(exports), "TABLE_NAME": "stop-signals",
                "LOCAL_SCHEDULE_SECONDS": "3600"})
    return env


def _default_signals() -> None:
    """preexec_fn: the stop signals as a terminal's foreground job has them (whatever pytest's worker inherited)."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


def run_case(case: Case, exports: Path) -> Outcome:
    outcome = Outcome(case)
    make = subprocess.Popen(["make", "--no-print-directory", "run", "PORT=0"], cwd=ROOT,
                            env=_environment(exports, warm=case.moment == "warming"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=_default_signals)
    pgid = make.pid
    up = threading.Event()
    first_line = threading.Event()
    warming = threading.Event()

    def read() -> None:
        for line in make.stdout:
            outcome.lines.append(line)
            outcome.ports |= {int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", line)}
            if "embedded DynamoDB" in line:
                first_line.set()
            if line.startswith("access:"):  # printed just before the workers start
                warming.set()
            if "Context Services API on" in line:
                up.set()
        first_line.set()
        warming.set()
        up.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if case.moment == "starting":
            assert first_line.wait(60), "make run printed nothing"
        elif case.moment == "warming":
            assert warming.wait(60), "make run printed nothing"
        else:
            assert up.wait(60), "make run did not start: " + "".join(outcome.lines)
            assert make.poll() is None, "".join(outcome.lines)
        server = _server_pid(make.pid)
        if case.moment == "warming":
            deadline = time.monotonic() + 10
            while len(_descendants(server)) < 5 and time.monotonic() < deadline:  # resource tracker + 4 workers
                time.sleep(0.02)
            assert not up.is_set(), "the workers started before the signal: not a stop while warming"
        if case.moment == "cold-start":
            url = re.search(r"Context Services API on (http://\S+)", "".join(outcome.lines)).group(1)
            _send_request_in_background(url)
            deadline = time.monotonic() + 10
            while len(_descendants(server)) < 2 and time.monotonic() < deadline:  # resource tracker + worker
                time.sleep(0.02)
            assert len(_descendants(server)) >= 2, "no execution environment was starting"
        everything = {make.pid, server} | _descendants(make.pid)
        for index, sig in enumerate(case.signals):
            if index:
                time.sleep(0.002 if len(case.signals) > 3 else 0.05)
            with contextlib.suppress(ProcessLookupError):
                if case.target == "group":
                    os.killpg(pgid, sig)
                elif case.target == "server":
                    os.kill(server, sig)
                else:
                    os.kill(make.pid, sig)
        sent = time.monotonic()
        everything |= _descendants(make.pid)
        deadline = sent + STOP_BUDGET
        while time.monotonic() < deadline:
            if make.poll() is not None and not _group(pgid) and not _running(everything):
                break
            time.sleep(0.02)
        outcome.left = _group(pgid) | _running(everything)
        reader.join(timeout=max(0.0, deadline - time.monotonic()))
        outcome.busy_ports = {port for port in outcome.ports if _still_ours(port, everything, pgid)}
        outcome.seconds = time.monotonic() - sent
        outcome.code = make.poll()
        return outcome
    finally:
        if make.poll() is None or _group(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            make.wait(timeout=10)


def _server_pid(make_pid: int, timeout: float = 10) -> int:
    """The Python process `make run` execs (make's only child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [pid for pid, fields in _processes().items() if int(fields[1]) == make_pid]
        if children:
            return children[0]
        time.sleep(0.01)
    raise AssertionError("make run started no server")


def _send_request_in_background(url: str) -> None:
    def call() -> None:
        request = urllib.request.Request(url + "/services/start", data=b'{"customer_id": "stop"}', method="POST")
        with contextlib.suppress(Exception):  # the server is being stopped under it: any answer, or none
            urllib.request.urlopen(request, timeout=30).read()

    threading.Thread(target=call, daemon=True).start()


# ---------------------------------------------------------------- the test


def test_make_run_stops_on_every_stop_signal_leaving_nothing_behind(tmp_path):
    all_cases = cases()
    assert len(all_cases) == (52 if EVERY else 28)
    pairs = {(c.signals[0], c.target, len(c.signals)) for c in all_cases if c.moment == "idle" and len(set(c.signals)) == 1}
    for sig in SIGNALS:  # every signal once to each target, and sent each number of times
        assert {(sig, "group", 1), (sig, "server", 1)} <= pairs
        assert {n for s, _, n in pairs if s == sig} >= set(REPEATS)
    for n in REPEATS:  # each number of times to each target
        assert {t for _, t, k in pairs if k == n} >= {"group", "server"}
    started = time.monotonic()
    with ThreadPoolExecutor(PARALLEL) as pool:
        outcomes = list(pool.map(lambda case: run_case(case, tmp_path), all_cases))
    problems = []
    for outcome in outcomes:
        text = "".join(outcome.lines)
        if outcome.left or outcome.busy_ports or outcome.code is None or outcome.seconds > STOP_BUDGET:
            problems.append(f"{outcome.case.label}: left {sorted(outcome.left)}, ports still bound "
                            f"{sorted(outcome.busy_ports)}, make exit {outcome.code}, {outcome.seconds:.1f} s\n{text}")
            continue
        if outcome.case.moment not in ("starting", "warming") and not text.rstrip().endswith("stopped"):
            problems.append(f"{outcome.case.label}: the server did not say it stopped\n{text}")
        first = signal.Signals(outcome.case.signals[0]).name
        if outcome.case.target == "server" and outcome.case.moment not in ("starting", "warming") and (
                outcome.code != 0 or f"stopping ({first})" not in text):
            # To the server alone, a stop signal is a clean stop: it says why, exits 0, and so does make.
            problems.append(f"{outcome.case.label}: not a clean stop (make exit {outcome.code})\n{text}")
        if "Traceback" in text:
            problems.append(f"{outcome.case.label}: a traceback\n{text}")
    slowest = max(o.seconds for o in outcomes)
    print(f"{len(outcomes)} runs of make run stopped in {time.monotonic() - started:.0f} s; "
          f"slowest stop {slowest:.2f} s")
    assert not problems, "\n\n".join(problems[:5]) + f"\n({len(problems)} of {len(outcomes)} failed)"

