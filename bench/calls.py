"""Every AWS API call of the process, counted and, on request, recorded or answered from a recording.

`install()` wraps botocore's ClientCreator.create_client, so every client created afterwards (the
project's, Powertools', any other) gets three event hooks:

* `provide-client-params.*.*`: one API call (operation and parameters);
* `before-send.*.*`: one HTTP attempt (a retried call sends several); while a recording is being
  replayed, this hook answers the attempt itself with the recorded response, so nothing leaves the
  process and the call costs what botocore costs (serialising, signing, parsing) and nothing else:
  a backend that answers at once;
* `after-call.*.*`: the response (recorded with the call) and what it read.

Calls may run on several threads at once (the store reads in parallel): each thread's call in
progress is kept in a thread-local, and a replayed call is answered by the recorded call of the same
operation whose parameters it shares most with (the same request, with its own timestamps). A call
made by a task of a thread pool counts as started when its burst of submissions began (`install()`
also wraps ThreadPoolExecutor.submit and Future.result: a burst is the tasks one thread submits
before it waits for a result): calls submitted together are parallel even when the interpreter
happens to run them one after the other.

Latency: while `latency_s` is set, every HTTP attempt waits that long in `before-send` before it is
answered (by the recording, or by whatever answers after the hook), in the thread that makes it, so
calls in flight on several threads wait at the same time, as they do on a network; each wait is kept
on its call (`windows`). `chain()` is then the number of round trips of latency the caller waited.

Nothing here knows the project's code; the benchmark uses it around whole requests.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# Operations that read items, and how to count the items a response read.
READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@dataclass
class Call:
    """One API call: what was asked, what came back (status, headers, body), what it read."""

    service: str
    operation: str
    params: dict[str, Any]
    attempts: int = 0
    status: int | None = None
    headers: Any = field(default_factory=dict)
    body: bytes = b""
    items_read: int = 0
    items_written: int = 0
    started: float = 0.0  # perf_counter when the call began and ended (calls may overlap)
    ended: float = 0.0
    side: bool = False  # a call of another layer (an authorization lookup), kept apart
    # (start, end) perf_counter of each injected round trip of latency (one per HTTP attempt)
    windows: list[tuple[float, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.operation


def sequential(calls: list[Call]) -> int:
    """Round trips one after the other: calls that overlapped in time (made in parallel) count once."""
    waves, end = 0, float("-inf")
    for call in sorted(calls, key=lambda c: c.started):
        if call.started >= end:
            waves += 1
            end = call.ended
        else:
            end = max(end, call.ended)
    return waves


def chain(calls: list[Call]) -> int:
    """Round trips of latency a caller waited: the longest sequence of injected waits (one per HTTP
    attempt) each starting after the previous one ended. Waits that overlapped were in flight at the
    same time and count once; a wait that began after another ended was made after it (it could not
    overlap it), whatever made it wait: the code waiting for an answer, or a bounded pool of threads
    being busy. Found by the greedy earliest-end choice, which yields the longest such sequence."""
    count, end = 0, float("-inf")
    for began, ended in sorted((window for call in calls for window in call.windows), key=lambda w: w[1]):
        if began >= end:
            count += 1
            end = ended
    return count


def leaves(value: Any, path: str = "") -> set[tuple[str, str]]:
    """(path, value) of every leaf of a parameter structure."""
    if isinstance(value, dict):
        found: set[tuple[str, str]] = set()
        for key, inner in value.items():
            found |= leaves(inner, f"{path}/{key}")
        return found
    if isinstance(value, (list, tuple)):
        found = set()
        for index, inner in enumerate(value):
            found |= leaves(inner, f"{path}/{index}")
        return found
    return {(path, repr(value))}


def items_read(operation: str, parsed: dict[str, Any]) -> int:
    """Items a read examined: ScannedCount for Query and Scan (what DynamoDB reads before any
    filter), the items found for the key-value reads."""
    if operation in ("Query", "Scan"):
        return int(parsed.get("ScannedCount") or 0)
    if operation == "GetItem":
        return 1 if parsed.get("Item") else 0
    if operation == "BatchGetItem":
        return sum(len(items) for items in (parsed.get("Responses") or {}).values())
    if operation == "TransactGetItems":
        return sum(1 for response in parsed.get("Responses") or [] if response.get("Item"))
    return 0


def items_written(operation: str, params: dict[str, Any]) -> int:
    """Items a write asked to change (ConditionCheck actions change nothing)."""
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return 1
    if operation == "BatchWriteItem":
        return sum(len(requests) for requests in (params.get("RequestItems") or {}).values())
    if operation == "TransactWriteItems":
        return sum(1 for action in params.get("TransactItems") or [] if "ConditionCheck" not in action)
    return 0


def _side_key(operation: str, params: dict[str, Any]) -> str:
    import json

    return operation + json.dumps(params.get("Key") or params, sort_keys=True, default=str)


class _Raw:
    """The raw body of a recorded response, as botocore reads it (`stream()`)."""

    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_: Any):
        yield self.body


class Tracker:
    """Counts every call of every client; records calls and their responses; replays responses."""

    def __init__(self) -> None:
        self.installed = False
        self.recording = False
        self.calls: list[Call] = []
        self.clients = 0
        self._replay: list[Call] | None = None
        self._used: list[bool] = []
        self._shapes: list[set[tuple[str, str]]] = []
        self._position = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self.unexpected: list[str] = []
        self.excluded_thread: int | None = None  # calls of this thread are not recorded (polling a job)
        self.excluded = 0
        # Calls of another layer (the access check's grant lookups, cached per process): recorded
        # apart (`side_calls`), never mixed into an operation's calls, and answered in a replay from
        # their last live answer, since the cache decides when they happen, not the request.
        self.side: Any = None  # (operation, params) -> bool
        self.side_calls: list[Call] = []
        self.side_total = 0
        self._side_answers: dict[str, Call] = {}
        self.latency_s = 0.0  # injected round-trip time of every HTTP attempt (0: none)

    # ------------------------------------------------------------ installation

    def install(self) -> None:
        """Hook every botocore client created from now on (call before any client exists)."""
        if self.installed:
            return
        from botocore.client import ClientCreator

        original = ClientCreator.create_client
        tracker = self

        def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(self, *args, **kwargs)
            tracker.attach(client)
            return client

        ClientCreator.create_client = create_client

        from concurrent.futures import Future, ThreadPoolExecutor

        submit, result = ThreadPoolExecutor.submit, Future.result
        bursts = threading.local()

        def stamped(pool: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            now = time.perf_counter()
            if not getattr(bursts, "open", False) or now - bursts.last > 0.05:
                bursts.open, bursts.began = True, now
            bursts.last = now
            submitted = bursts.began

            def task() -> Any:
                tracker._local.submitted = submitted
                try:
                    return fn(*args, **kwargs)
                finally:
                    tracker._local.submitted = None

            return submit(pool, task)

        def waited(future: Any, *args: Any, **kwargs: Any) -> Any:
            bursts.open = False  # the next submission of this thread starts a new burst
            return result(future, *args, **kwargs)

        ThreadPoolExecutor.submit = stamped
        Future.result = waited
        self.installed = True

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("provide-client-params.*.*", self._params)
        # First, so that a replayed response wins over any other stub (moto's is disabled meanwhile).
        events.register_first("before-send.*.*", self._send)
        events.register("after-call.*.*", self._after)
        self.clients += 1

    # ------------------------------------------------------------ hooks

    def _params(self, params: dict[str, Any], model: Any, event_name: str = "", **_: Any) -> None:
        service = event_name.split(".")[1] if event_name.count(".") >= 2 else ""
        # A reference (copying costs time inside the measured request); stop() copies it.
        submitted = getattr(self._local, "submitted", None)
        self._local.submitted = None  # only a task's first call started with it
        call = Call(service, model.name, params, started=submitted or time.perf_counter())
        call.side = bool(self.side is not None and self.side(model.name, params))
        self._local.call = call
        if call.side:
            self.side_total += 1
            if self.recording:
                with self._lock:
                    self.side_calls.append(call)
            return
        if self.recording:
            if self.excluded_thread == threading.get_ident():
                self.excluded += 1
                return
            with self._lock:
                self.calls.append(call)

    def _send(self, request: Any, event_name: str = "", **_: Any) -> Any:
        call = getattr(self._local, "call", None)
        if call is not None:
            call.attempts += 1
        if self.latency_s:
            began = time.perf_counter()
            time.sleep(self.latency_s)  # releases the GIL: calls of other threads wait meanwhile
            if call is not None:
                call.windows.append((began, time.perf_counter()))
        if self._replay is None:
            return None
        from botocore.awsrequest import AWSResponse

        operation = event_name.rsplit(".", 1)[-1]
        if call is not None and call.side:
            recorded = self._side_answers.get(_side_key(operation, call.params))
            if recorded is None:
                raise RuntimeError(f"replay: no live answer of {operation} {call.params.get('Key')} to replay")
            return AWSResponse(request.url, recorded.status, recorded.headers, _Raw(recorded.body))
        recorded = self._match(operation, call.params if call is not None else {})
        return AWSResponse(request.url, recorded.status, recorded.headers, _Raw(recorded.body))

    def _match(self, operation: str, params: dict[str, Any]) -> Call:
        """The unused recorded call of `operation` whose parameters share most with `params`."""
        assert self._replay is not None
        with self._lock:
            candidates = [n for n, call in enumerate(self._replay) if not self._used[n] and call.operation == operation]
            if not candidates:
                left = [call.operation for n, call in enumerate(self._replay) if not self._used[n]]
                self.unexpected.append(f"{operation} where the recording has {left}")
                raise RuntimeError(f"replay: {operation} called where the recording has {left or 'nothing left'}")
            if len(candidates) > 1:
                shape = leaves(params)
                candidates.sort(key=lambda n: -len(shape & self._shapes[n]))
            chosen = candidates[0]
            self._used[chosen] = True
            self._position += 1
            return self._replay[chosen]

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        call = getattr(self._local, "call", None)
        if call is None or call.operation != model.name:
            return
        if call.side and self._replay is None and http_response.status_code == 200:
            self._side_answers[_side_key(call.operation, call.params)] = Call(
                call.service, call.operation, {}, status=200, headers=copy.copy(http_response.headers),
                body=http_response.content)
        if not self.recording:
            return
        call.ended = time.perf_counter()
        call.status = http_response.status_code
        call.headers = copy.copy(http_response.headers)
        call.body = http_response.content
        call.items_read = items_read(model.name, parsed)
        call.items_written = items_written(model.name, call.params)

    # ------------------------------------------------------------ recording and replay

    def start(self) -> None:
        """Start recording (and counting) calls."""
        self.calls = []
        self.side_calls = []
        self.recording = True

    def stop(self) -> list[Call]:
        """Stop recording; the recorded calls, their parameters copied (so a replay cannot change
        them) without the idempotency token botocore fills in (a replay gets its own)."""
        self.recording = False
        calls = []
        for call in self.calls:
            params = copy.deepcopy(call.params)
            if call.operation == "TransactWriteItems":
                params.pop("ClientRequestToken", None)
            calls.append(dataclasses.replace(call, params=params, windows=list(call.windows)))
        self.calls = []
        return calls

    def replaying(self, calls: list[Call]) -> _Replay:
        """Context manager: answer every HTTP attempt from `calls`, in order."""
        return _Replay(self, calls)


class _Replay:
    def __init__(self, tracker: Tracker, calls: list[Call]):
        self.tracker, self.calls = tracker, calls

    def __enter__(self) -> _Replay:
        tracker = self.tracker
        tracker._shapes = [leaves(call.params) for call in self.calls]  # before any clock starts
        tracker._used = [False] * len(self.calls)
        tracker._replay, tracker._position = self.calls, 0
        return self

    @property
    def consumed(self) -> int:
        return self.tracker._position

    def __exit__(self, *exc: Any) -> None:
        position = self.tracker._position
        self.tracker._replay, self.tracker._position = None, 0
        if exc[0] is None and position != len(self.calls):
            raise RuntimeError(f"replay: {len(self.calls) - position} recorded responses left unused")


TRACKER = Tracker()


def _unwrapped(method: Any) -> Any:
    while hasattr(method, "__wrapped__"):
        method = method.__wrapped__
    return method


def bare_call(client: Any) -> Any:
    """botocore's own `_make_api_call` for `client`, without what wraps it (the X-Ray SDK patches it
    when tracing is on): what a handler without Powertools pays for one call. Use it inside
    `untraced()`, which also takes the SDK's trace-header injection away."""
    from botocore.client import BaseClient

    method = _unwrapped(BaseClient._make_api_call)
    return lambda operation, params: method(client, operation, params)


class untraced:  # used as a statement: `with untraced():`
    """botocore as it is without the X-Ray SDK's patches (it wraps Endpoint.prepare_request to add
    the trace header to every request), for the bare calls."""

    def __enter__(self) -> None:
        from botocore.endpoint import Endpoint

        self.original = Endpoint.__dict__["prepare_request"]
        Endpoint.prepare_request = _unwrapped(self.original)

    def __exit__(self, *_: Any) -> None:
        from botocore.endpoint import Endpoint

        Endpoint.prepare_request = self.original
