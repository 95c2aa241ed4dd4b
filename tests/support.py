"""What the tests of every tier share (the fixtures are in tests/conftest.py):

* the HTTP verbs of every test client, and the in-process client: the real `lambda_handler` of the
  function template.yaml routes a request to, called with the event API Gateway would send (built
  by local.events, the adapter `make run` uses too);
* the contract's error reply (§2), the stored items, the DynamoDB calls and items a request reads,
  and the `Link` of a page;
* the local server (`python -m local.server`) as a subprocess, started on a free port and stopped
  with SIGTERM, leaving no process behind.

Imports nothing from the tests themselves; nothing outside tests/ imports it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

# The store's insides that race and fault tests patch or call (a concurrent change placed between a
# read and its write, a fault after a commit point, a worker taking a job) are imported here only:
# when the store's rooms move, these lines are the ones to follow.
from lib.store import ends, erasure, starts
from lib.store import jobs as stored_jobs
from lib.store import table as store_table
from lib.store.concurrency import Write
from lib.store.expressions import Query
from lib.store.keys import conversation_pk
from local import template
from local.events import HttpRequest, LambdaContext, build_event, compile_routes, find_route, to_response
from local.template import ROOT

BASE = "/genesys/1/cs"
STAGE = "Prod"
ROUTES = compile_routes(template.api_routes())
ERROR_KEYS = {"message", "exception"}

# Re-exported: the Lambda context of in-process calls, and the store's insides named above.
__all__ = ["LambdaContext", "Query", "Write", "conversation_pk", "ends", "erasure", "starts", "store_table",
           "stored_jobs"]


# ---------------------------------------------------------------- the clients


class Verbs:
    """The HTTP verbs of every test client: each defines `request(method, path, body=None, ...)`."""

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        raise NotImplementedError

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


def event_for(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              raw_body: str | bytes | None = None) -> tuple[dict[str, Any], str]:
    """(event, handler) for a request; `path` is relative to the base path, as a client writes it on
    the request line (percent-encoded where it needs to be), and may carry a query."""
    if raw_body is not None:
        data = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
    else:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
    all_headers = {"Host": "api.test", "Content-Type": "application/json", **(headers or {})}
    request = HttpRequest.from_target(method, BASE + path, all_headers.items(), data)
    found = find_route(ROUTES, request.method, request.raw_path)
    if found is None:
        raise LookupError(f"template.yaml routes nothing to {request.raw_path}")
    route, params = found
    return build_event(request, route, params, stage=STAGE, stage_in_path=True), route.api.handler


def invoke(event: dict[str, Any], handler: str, context: Any = None) -> Reply:
    """Call `handler` ("module.function") with `event`, as Lambda would; its result as a Reply."""
    module_name, attribute = handler.rsplit(".", 1)
    result = getattr(importlib.import_module(module_name), attribute)(event, context or LambdaContext(module_name))
    response = to_response(result)
    headers: dict[str, str] = {}
    for key, value in response.headers:
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Reply(response.status, headers, response.body.decode("utf-8"))


class Api(Verbs):
    """The in-process client: `api.post("/services/start", {...})` -> Reply."""

    def __init__(self, headers: dict[str, str] | None = None):
        self.headers = headers or {}

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                raw_body: str | bytes | None = None) -> Reply:
        event, handler = event_for(method, path, body, {**self.headers, **(headers or {})}, raw_body)
        return invoke(event, handler)

    def start(self, **body: Any) -> str:
        """Start a service and return its id (asserting the 201)."""
        if "customer_id" not in body and "contact_key" not in body:
            body["customer_id"] = "c-1"
        reply = self.post("/services/start", body)
        assert reply.status == 201, reply.text
        return reply.json["service_id"]

    def start_state(self, service_id: str, **body: Any) -> int:
        """Start a state and return its id (asserting the 201 and its Location)."""
        return self._start_child(service_id, "state", body)

    def start_task(self, service_id: str, **body: Any) -> int:
        """Start a task and return its id (asserting the 201 and its Location)."""
        return self._start_child(service_id, "task", body)

    def _start_child(self, service_id: str, kind: str, body: dict[str, Any]) -> int:
        reply = self.post(f"/services/{service_id}/{kind}s/start", body)
        assert reply.status == 201, reply.text
        child_id = reply.json[f"{kind}_id"]
        assert reply.headers["Location"] == f"/{STAGE}{BASE}/services/{service_id}/{kind}s/{child_id}"
        return child_id


def erase_deleted(clock: Any) -> int:
    """Run the scheduled maintenance past the erasures' grace (a DELETE answers at its commit point
    and leaves its conversation's other items to it): returns the erasures it finished."""
    from lib.rules import maintenance

    clock.advance(61)
    return maintenance.scheduled(60_000)["erasures_finished"]


def drop_store_client() -> None:
    """Forget the store's DynamoDB client without building another (the next `table` fixture, or the
    first store call, builds one): building one costs about 20 ms, and every API test ends with this."""
    store_table._client = None


def service_with_tasks(api: Api, n: int, customer: str = "big") -> str:
    """A service with state 1 and `n` tasks on it: its id."""
    service_id = api.start(customer_id=customer)
    assert api.start_state(service_id, state_type="s") == 1
    for _ in range(n):
        assert api.post(f"/services/{service_id}/tasks/start", {"task_type": "t", "state_id": 1}).status == 201
    return service_id


def at(day: int, hour: int = 0) -> str:
    """A timestamp in January 2026."""
    return f"2026-01-{day:02d}T{hour:02d}:00:00.000Z"


def stream(api: Api, query: str, headers: dict[str, str] | None = None) -> list:
    """The export stream's answer to `query` (asserting the 200)."""
    reply = api.get(f"/maintenance/services/stream?{query}", headers=headers or {})
    assert reply.status == 200, reply.text
    return reply.json


def run_maintenance(event: dict[str, Any], timeout_ms: int = 900_000) -> Any:
    """The maintenance function invoked as Lambda invokes it for a queue message or the schedule."""
    from handlers import maintenance

    return maintenance.lambda_handler(event, LambdaContext("MaintenanceFunction", timeout_ms=timeout_ms))


# ---------------------------------------------------------------- what a reply and the table say


def error_problem(reply: Any, status: int, exception: str | None = None) -> str | None:
    """None when `reply` is the contract's error (§2) with that status, else what is wrong."""
    if reply.status != status:
        return f"status {reply.status} (expected {status}): {reply.text[:200]}"
    try:
        body = json.loads(reply.text)
    except ValueError:
        return f"error body is not JSON: {reply.text[:200]}"
    if not isinstance(body, dict) or set(body) != ERROR_KEYS:
        return f"error body is not {{message, exception}}: {reply.text[:200]}"
    if exception and body["exception"] != exception:
        return f"exception {body['exception']} (expected {exception})"
    return None


def assert_error(reply: Any, status: int, exception: str | None = None, mentions: str | None = None) -> None:
    """`reply` is the contract's error with this status (and exception), its message naming `mentions`."""
    problem = error_problem(reply, status, exception)
    assert problem is None, problem
    if mentions:
        assert mentions in reply.json["message"], reply.json["message"]


def scan(client: Any) -> list[dict[str, Any]] | str:
    """Every stored item, raw (attribute values as DynamoDB holds them), in key order; or what went
    wrong when the table cannot even be scanned (moto refuses to scan an item holding a lone surrogate)."""
    found, request = [], {"TableName": os.environ["TABLE_NAME"], "ConsistentRead": True}
    while True:
        try:
            page = client.scan(**request)
        except ClientError as error:
            return f"the stored items cannot be scanned: {error}"
        found += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(found, key=lambda item: (item["PK"]["S"], item["SK"]["S"]))


@contextlib.contextmanager
def count_calls(client: Any) -> Iterator[list[str]]:
    """The names of the DynamoDB calls made through `client` while the block runs."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.dynamodb.*", record)
    try:
        yield calls
    finally:
        client.meta.events.unregister("before-call.dynamodb.*", record)


@contextlib.contextmanager
def reads(client: Any) -> Iterator[dict[str, Any]]:
    """The DynamoDB calls made and the items they read (ScannedCount of Queries, items of GetItem and
    BatchGetItem) while the block runs."""
    seen: dict[str, Any] = {"calls": [], "items": 0}

    def before(model: Any, **_: Any) -> None:
        seen["calls"].append(model.name)

    def after(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            seen["items"] += parsed.get("ScannedCount", 0)
        elif model.name == "GetItem":
            seen["items"] += 1 if parsed.get("Item") else 0
        elif model.name == "BatchGetItem":
            seen["items"] += sum(len(v) for v in parsed.get("Responses", {}).values())

    client.meta.events.register("before-call.dynamodb.*", before)
    client.meta.events.register("after-call.dynamodb.*", after)
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-call.dynamodb.*", before)
        client.meta.events.unregister("after-call.dynamodb.*", after)


def element_ids(reply: Any, key: str = "service_id") -> list:
    """The ids of a list reply's elements, in order (asserting the 200)."""
    assert reply.status == 200, reply.text
    return [element[key] for element in reply.json]


def next_path(reply: Any) -> str | None:
    """The next page of a list reply, as a path relative to the base path (None on the last page):
    its `Link` is a path on the stage (`/Prod/genesys/1/cs/...`) or on a custom domain."""
    link = reply.headers.get("Link")
    if not link:
        return None
    parts = urlsplit(re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1))
    return parts.path.split(BASE, 1)[1] + ("?" + parts.query if parts.query else "")


# ---------------------------------------------------------------- the local server, as a process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sigint(disposition: Any) -> Any:
    """preexec_fn: the server starts with SIGINT handled as given (SIG_IGN: a background job of a
    non-interactive shell; SIG_DFL: a foreground run in a terminal)."""
    return lambda: signal.signal(signal.SIGINT, disposition)


def start_server(extra_env: dict[str, str] | None = None, template_path: Path | None = None,
                 sigint: Any = signal.SIG_DFL) -> tuple[subprocess.Popen, dict[str, Any]]:
    """`make run`'s server on a free port: (process, info) once it says it serves. info holds its
    "url", the "dynamodb" endpoint it embeds (None when it uses another), its output "lines" (kept
    up to date by a thread) and its "pid"."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update({"PORT": str(port), "TABLE_NAME": "local-test", **(extra_env or {})})
    command = [sys.executable, "-m", "local.server"]
    if template_path is not None:
        command += ["--template", str(template_path)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, preexec_fn=_sigint(sigint))
    lines: list[str] = []
    endpoint = None
    deadline = time.time() + 90
    try:
        while time.time() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"embedded DynamoDB .* on (http://\S+)", line)
            endpoint = found.group(1) if found else endpoint
            if "Context Services API on" in line:
                break
        else:
            raise TimeoutError("no start-up line")
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
    except Exception as error:  # leave nothing running, then fail
        process.kill()
        process.wait(timeout=10)
        pytest.fail(f"local server did not start ({error}): " + "".join(lines))
    drain = threading.Thread(target=lambda: [lines.append(x) for x in process.stdout], daemon=True)
    drain.start()
    return process, {"url": f"http://127.0.0.1:{port}", "dynamodb": endpoint, "lines": lines, "drain": drain,
                     "pid": process.pid}


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def stop_server(process: subprocess.Popen, info: dict[str, Any], sig: int = signal.SIGTERM) -> int | str:
    """Stop the server as a user or a supervisor would (SIGTERM by default); kill it if it does not
    stop, so no test leaves a server behind. Records the processes it had in info["left"]."""
    children = descendants(process.pid)
    process.send_signal(sig)
    try:
        code: int | str = process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        code = "killed after 20 s"
    info["drain"].join(timeout=5)
    deadline = time.time() + 10
    while _alive(children) and time.time() < deadline:
        time.sleep(0.2)
    info["left"] = _alive(children)
    for pid in info["left"]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return code


@contextlib.contextmanager
def running(extra_env: dict[str, str] | None = None, template_path: Path | None = None,
            sigint: Any = signal.SIG_DFL) -> Iterator[dict[str, Any]]:
    """A local server for the duration of a `with` block, stopped with SIGTERM however the block ends
    (its exit code in info["code"])."""
    process, info = start_server(extra_env, template_path, sigint)
    try:
        yield info
    finally:
        info["code"] = stop_server(process, info)
