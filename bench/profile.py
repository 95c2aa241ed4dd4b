"""Where the time a handler adds goes: a statistical profiler (the technique of pyinstrument) over
zero-latency requests, attributing each sample by module.

Every 0.25 ms of wall time (ITIMER_REAL: the kernel's CPU-time timers tick at its scheduler's rate,
far too coarse here) the sampler looks at the running Python stack while a measured call is in
progress and charges the sample to the innermost frame that is not the standard library (json
called by Powertools is Powertools' time; json called by lib/ is the project's); when the request's
thread waits (the store reads on a pool of threads), the running threads are sampled instead. The
shares of the samples are then applied to the times measured without the profiler (the zero-latency
medians of bench/operations.py): sampling itself slows what it samples. Categories:

* project: lib/ and handlers/ (in the framework floor, bench/floor_app.py: the app's own code);
* Powertools routing and validation: its event handler, the event data classes, pydantic and
  pydantic-core;
* Powertools logging and metrics;
* tracing: the X-Ray SDK, Powertools' Tracer, wrapt (which the SDK patches botocore with);
* Powertools idempotency;
* item encoding: boto3's TypeSerializer / TypeDeserializer, which lib/store uses to turn items
  into Python values and back (the bare calls take the wire format as it is);
* botocore: the DynamoDB calls themselves (serialising, signing, parsing) and the recorded backend;
* standard library only: samples with no other frame on the stack.
Shared helpers (JMESPath, Powertools' shared functions) are charged to their caller, like the
standard library.
"""

from __future__ import annotations

import copy
import signal
import sys
import sysconfig
import threading
import time
from collections import Counter
from typing import Any

from bench.harness import ROOT, raw_client

INTERVAL = 0.00025
_STDLIB = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])

CATEGORIES = (
    "project (lib/, handlers/)",
    "Powertools routing and validation (event handler, pydantic)",
    "Powertools logging and metrics",
    "tracing (X-Ray SDK, Powertools Tracer)",
    "Powertools idempotency",
    "item encoding (boto3.dynamodb.types, called by lib/store)",
    "botocore (the DynamoDB calls and the recorded backend)",
    "standard library only",
    "other",
)
# Helpers that several parts call (JMESPath: the Logger's correlation id and Idempotency's keys):
# treated like the standard library, charged to their caller.
SHARED = ("jmespath", "aws_lambda_powertools/utilities/jmespath_utils", "aws_lambda_powertools/shared",
          "typing_extensions")
PROJECT, ROUTING, LOGGING, TRACING, IDEMPOTENCY, ENCODING, BOTOCORE, STDLIB, OTHER = CATEGORIES


def category(filename: str) -> str | None:
    """The category of a frame's file, or None for the standard library."""
    path = filename.replace("\\", "/")
    if "site-packages/" not in path:
        if path.startswith((str(ROOT / "lib"), str(ROOT / "handlers"), str(ROOT / "bench" / "floor_app.py"))):
            return PROJECT
        if path.startswith(str(ROOT / "bench")):
            return BOTOCORE  # bench/calls.py answering for the backend
        if path.startswith(_STDLIB) or path.startswith("<"):
            return None
        return OTHER
    package = path.split("site-packages/", 1)[1]
    if package.startswith(SHARED):
        return None  # helpers of everyone: charged to whoever called them
    if package.startswith(("aws_lambda_powertools/utilities/idempotency",
                           "aws_lambda_powertools/utilities/serialization")):
        return IDEMPOTENCY
    if package.startswith(("aws_lambda_powertools/event_handler", "aws_lambda_powertools/utilities/data_classes",
                           "pydantic", "annotated_types", "typing_inspection")):
        return ROUTING
    if package.startswith(("aws_lambda_powertools/logging", "aws_lambda_powertools/metrics")):
        return LOGGING
    if package.startswith(("aws_xray_sdk", "aws_lambda_powertools/tracing", "wrapt")):
        return TRACING
    if package.startswith("boto3/dynamodb/types"):
        return ENCODING
    if package.startswith(("botocore", "boto3", "urllib3", "dateutil", "s3transfer")):
        return BOTOCORE
    return OTHER


_WAITS = ("threading.py", "queue.py", "concurrent/futures/_base.py", "concurrent/futures/thread.py", "selectors.py")


def _waiting(frame: Any) -> bool:
    """Whether a thread's innermost frame is a wait (lock, condition, queue, future)."""
    return frame.f_code.co_filename.replace("\\", "/").endswith(_WAITS)


class Sampler:
    """Counts samples per category while `active`."""

    def __init__(self) -> None:
        self.active = False
        self.counts: Counter[str] = Counter()
        self._cache: dict[str, str | None] = {}

    def _sample(self, _signum: int, frame: Any) -> None:
        """One sample of every thread that is running (the store reads on a pool of threads while
        the request's thread waits for them): a thread waiting on a lock or a queue is skipped."""
        if not self.active:
            return
        if frame is not None and not _waiting(frame):
            self._charge(frame)  # the request's own thread is running: that is the sample
            return
        main = threading.main_thread().ident
        for ident, top in sys._current_frames().items():
            if ident != main and top is not None and not _waiting(top):
                self._charge(top)

    def _charge(self, frame: Any) -> None:
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename not in self._cache:
                self._cache[filename] = category(filename)
            found = self._cache[filename]
            if found is not None:
                self.counts[found] += 1
                return
            frame = frame.f_back
        self.counts[STDLIB] += 1

    def __enter__(self) -> Sampler:
        self._previous = signal.signal(signal.SIGALRM, self._sample)
        signal.setitimer(signal.ITIMER_REAL, INTERVAL, INTERVAL)
        return self

    def __exit__(self, *_: Any) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, self._previous)

    def spread(self, total_us: float) -> dict[str, float]:
        """`total_us` shared out in proportion to the samples of each category."""
        count = sum(self.counts.values())
        return {name: round(total_us * self.counts[name] / count, 1) if count else 0.0 for name in CATEGORIES}


class Probe:
    """What TimedApi calls around lambda_handler: switches the sampler on for exactly that call."""

    def __init__(self, sampler: Sampler):
        self.sampler = sampler

    def __enter__(self) -> None:
        self.sampler.active = True

    def __exit__(self, *_: Any) -> None:
        self.sampler.active = False


def split(api: Any, op: Any, calls: list[Any], runs: int, handler_total_us: float, bare_total_us: float,
          floor_total_us: float | None = None) -> dict[str, Any]:
    """`runs` zero-latency requests, `runs` direct replays of their calls and, with
    `floor_total_us`, `runs` requests of the framework floor (bench/floor_app.py), sampled; the
    time per request by category for each (the shares of the samples applied to the totals measured
    without the profiler: sampling slows what it samples), and the differences: what the handler
    adds to the bare calls, and to the floor."""
    from bench import client, floor, floor_app
    from bench.calls import TRACKER, bare_call
    from bench.harness import new_trace
    from bench.operations import Moto, direct

    bare = bare_call(raw_client())
    ctx = op.prepare()
    handler, plain, framework = Sampler(), Sampler(), Sampler()
    bare_cpu = floor_cpu = 0.0
    event = floor.floor_event(api, op, ctx) if floor_total_us is not None else None
    context = client.context("floor")
    with Moto():
        api.reset()
        with handler:
            api.probe = Probe(handler)
            try:
                for _ in range(runs):
                    with TRACKER.replaying(calls):
                        op.call(ctx)
            finally:
                api.probe = None
        handler_cpu = api.cpu
        with plain:
            for _ in range(runs):
                with TRACKER.replaying(calls):
                    plain.active = True
                    try:
                        bare_cpu += direct(calls, bare).cpu
                    finally:
                        plain.active = False
        if event is not None:
            with framework:
                for _ in range(runs):
                    floor_app.PENDING = floor.floor_calls(calls)
                    copied = copy.deepcopy(event)
                    new_trace()
                    with TRACKER.replaying(calls):
                        cpu = time.process_time()
                        framework.active = True
                        try:
                            floor_app.lambda_handler(copied, context)
                        finally:
                            framework.active = False
                            floor_cpu += time.process_time() - cpu
    handler_us = handler.spread(handler_total_us)
    bare_us = plain.spread(bare_total_us)
    added = {name: round(handler_us[name] - bare_us[name], 1) for name in CATEGORIES}
    total_added = sum(added.values())
    result: dict[str, Any] = {
        "runs": runs,
        "sample_interval_us": INTERVAL * 1e6,
        "profiled_cpu_us": {"handler": round(handler_cpu * 1e6 / runs, 1), "bare": round(bare_cpu * 1e6 / runs, 1)},
        "samples": {"handler": sum(handler.counts.values()), "bare": sum(plain.counts.values())},
        "handler_us": handler_us,
        "bare_us": bare_us,
        "added_us": added,
        "added_total_us": round(total_added, 1),
        "added_share": {name: (round(value / total_added, 3) if total_added > 0 else None)
                        for name, value in added.items()},
    }
    if event is not None and floor_total_us is not None:
        floor_us = framework.spread(floor_total_us)
        over = {name: round(handler_us[name] - floor_us[name], 1) for name in CATEGORIES}
        total_over = sum(over.values())
        result["profiled_cpu_us"]["floor"] = round(floor_cpu * 1e6 / runs, 1)
        result["samples"]["floor"] = sum(framework.counts.values())
        result.update(floor_us=floor_us, added_over_floor_us=over, added_over_floor_total_us=round(total_over, 1),
                      added_over_floor_share={name: (round(value / total_over, 3) if total_over > 0 else None)
                                              for name, value in over.items()})
    return result
