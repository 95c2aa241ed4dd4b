"""The local run's stop-signal handler cannot deadlock, whenever a second signal arrives.

Python runs a signal handler in the main thread at the next check of the interpreter's "eval breaker"
(a call, a backward jump), also in the middle of another handler: make forwards its SIGTERM to the
server that got the process group's SIGTERM too, so handlers nest. A handler that takes a lock (as
threading.Event.set() does) deadlocks when the nested call waits for the lock the outer call holds.

The test runs `local.server.serve` (start-up and stop replaced by no-ops: only the signal handling is
under test) in a subprocess and sends the first SIGTERM, SIGINT or SIGHUP; a tracer then sends the
same signal again at every bytecode the handler (and whatever it calls) executes, one position per
round. Every round must end with serve() returning 0 after exactly one stop; a deadlock is a
subprocess that does not finish in time.
"""

from __future__ import annotations

import json
import subprocess
import sys

from local.template import ROOT

HARNESS = r"""
import json, os, signal, sys, threading

import local.server as server

stops = []


class NoRun:
    def __init__(self, *args, **kwargs):
        pass

    def start(self):
        pass

    def stop(self):
        stops.append(1)


server.LocalRun = NoRun
original_sigint = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whatever pytest inherited
server._say = lambda *args, **kwargs: None
signum = int(sys.argv[1])
state = {"target": -1, "count": 0, "handler_code": None}


def in_handler(frame):
    while frame is not None:
        if frame.f_code is state["handler_code"]:
            return True
        frame = frame.f_back
    return False


def opcode_tracer(frame, event, arg):
    frame.f_trace_opcodes = True  # set again here: Python 3.13.0 ignores it when set in the "call" event
    if event in ("line", "opcode"):
        if state["count"] == state["target"]:
            os.kill(os.getpid(), signum)  # a second signal arrives at this bytecode of the handler
        state["count"] += 1
    return opcode_tracer


def tracer(frame, event, arg):
    if event == "call" and state["handler_code"] is not None and in_handler(frame):
        frame.f_trace_opcodes = True
        return opcode_tracer
    return None


original_signal = signal.signal


def recording_signal(sig, handler):
    # Whatever handler serve() installs for this signal is the one traced.
    if sig == signum and callable(handler):
        state["handler_code"] = getattr(handler, "__code__", None) or handler.__func__.__code__
    return original_signal(sig, handler)


signal.signal = recording_signal
results = []
target = 0
while True:
    state.update(target=target, count=0)
    stops.clear()
    threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
    sys.settrace(tracer)
    code = server.serve("127.0.0.1", 0)
    sys.settrace(None)
    results.append({"target": target, "code": code, "stops": len(stops), "opcodes": state["count"]})
    if target >= state["count"]:  # every bytecode of the handler had its turn
        break
    target += 1
print("RESULTS " + json.dumps(results), flush=True)
"""


def _rounds(signum: int) -> list[dict]:
    done = subprocess.run([sys.executable, "-c", HARNESS, str(signum)], cwd=ROOT, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULTS "))
    return json.loads(line[8:])


def test_a_signal_nested_at_any_bytecode_of_the_handler_neither_deadlocks_nor_stops_twice():
    import signal

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        try:
            rounds = _rounds(int(signum))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{signum.name}: a nested handler call deadlocked the server") from None
        assert rounds and rounds[0]["opcodes"] >= 1, rounds  # the handler ran and was traced
        assert all(r["code"] == 0 and r["stops"] == 1 for r in rounds), rounds
