"""The no-Docker local run (`make run`): the template's functions, served as Lambda would serve them.

* Embedded DynamoDB: moto's server, made faithful by local.embedded_dynamodb (every call atomic),
  on a free loopback port, in this process. Skipped when AWS_ENDPOINT_URL_DYNAMODB points at a
  DynamoDB already. The table is created from the template (keys, indexes, TTL) unless it exists.
* Functions: each function of the template gets a pool of worker *processes* (spawned, each
  importing the handler module once, like Lambda execution environments). A worker serves one
  invocation at a time; a pool starts with one worker (or none with LOCAL_WARM=0: started on first
  use, like a cold start) and grows to LOCAL_POOL_SIZE (4) when requests overlap. Powertools keeps per-request state on the resolver class, so copies sharing one
  interpreter would mix requests up; separate processes cannot. Workers reach the embedded
  services through AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS.
* API events: every `Api` event becomes a route; requests become API Gateway REST proxy events
  (local.events, the adapter the tests use too) and the results HTTP responses.
* SQS events: moto's SQS on another loopback port (unless AWS_ENDPOINT_URL_SQS is set), the
  template's queues created there, the function's environment pointing at them (!Ref queue = its
  URL); each SQS event is polled and its batches handed to the function as Lambda's event source
  mapping does: messages are deleted when the invocation succeeds (with ReportBatchItemFailures,
  all but the failed ones), and come back after the visibility timeout when it fails.
* Schedule events: the function is invoked with an EventBridge "Scheduled Event" (or the event's
  Input) every LOCAL_SCHEDULE_SECONDS (default 60), whatever the rate or cron expression says.
* EXPORT_DIR (default ./exports) is set for every function and created.
* AUTH=on: the local access mode (see local.events): X-CS-Principal names the caller.
* AUTH=sigv4: the SigV4-verifying mode (local.signatures): requests to IAM routes must be signed
  with one of the fixed test keys; the signer is the caller (grants from GRANTS_FILE, as AUTH=on).
* AUTH=cognito: AUTH=sigv4 with the viewer's deployed sign-in played locally (local.cognito): a user
  pool at /local/cognito-idp/ and the identity pool's two calls at /local/cognito-identity/, whose
  temporary credentials the signature check accepts.
* `/viewer/`: the journey viewer, served by the template's ViewerFunction like any route (its routes
  are public: no signature needed in AUTH=sigv4); VIEWER_SIGN_IN tells the page the access mode.
* `/swagger`: Swagger UI 5 (flask-swagger-ui's copy of its dist; no CDN) over docs/openapi.json, whose
  examples name the demo tenant's data, seeded when the page first loads (local.demo; LOCAL_DEMO=0: off).
* SIGTERM, SIGINT (Ctrl-C) or SIGHUP, once or many times, to the server or to make's process group,
  stops everything (workers, pollers, embedded services, their ports) and exits with 0: the
  handlers only record the request (local.shutdown), the main thread stops everything once. A
  SIGINT the process inherited as ignored (a background job of a non-interactive shell) stays
  ignored; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import logging
import mimetypes
import multiprocessing
import multiprocessing.connection
import multiprocessing.resource_tracker
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local import demo, embedded_dynamodb, events, signatures, stream, template
from local.shutdown import STOP_SIGNALS, StopRequested, StopSignals

LOCAL_REGION = events.LOCAL_REGION
LOCAL_ACCOUNT = events.LOCAL_ACCOUNT
GATEWAY_TIMEOUT = 29  # seconds: API Gateway's integration timeout
SQS_IDLE_SECONDS = 0.5
# Template variables the local run does not copy (unless exported): the deployed access mode
# (locally the API is open, or AUTH=on enforces access with a grants file).
DEPLOYED_ONLY = {"ACCESS_MODE"}
log = logging.getLogger("local-run")


# ---------------------------------------------------------------- worker processes


def _worker_main(conn: Any, code_root: str, handler: str, environment: dict[str, str], function: str,
                 memory: int) -> None:
    """A Lambda execution environment: import the handler once, then run one invocation at a time."""
    # Ctrl-C reaches the whole process group; the parent decides when workers stop. The stop
    # signals were blocked while this process started (Worker.__init__): one that arrived meanwhile
    # is delivered now, with these dispositions, not as a KeyboardInterrupt in the middle of an import.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    os.environ.update(environment)
    if code_root not in sys.path:
        sys.path.insert(0, code_root)
    module_name, attribute = handler.rsplit(".", 1)
    try:
        entry = getattr(importlib.import_module(module_name), attribute)
    except BaseException:  # Lambda's Runtime.ImportModuleError, reported to the parent
        conn.send(("init-error", traceback.format_exc()))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        event, timeout_ms = message
        context = events.LambdaContext(function, memory_limit_in_mb=memory, timeout_ms=timeout_ms)
        try:
            reply: tuple[str, Any] = ("ok", entry(event, context))
        except Exception:  # a function error, as Lambda reports it
            reply = ("error", traceback.format_exc())
        try:
            conn.send(reply)
        except Exception:  # a result that cannot be serialised is a function error too
            conn.send(("error", traceback.format_exc()))


class FunctionError(Exception):
    """The invocation failed: the handler raised, timed out, or its environment died."""

    def __init__(self, message: str, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


@dataclass
class FunctionSpec:
    name: str
    handler: str
    code_root: Path
    timeout: int
    memory: int
    environment: dict[str, str]


class Worker:
    """One execution environment: a spawned process and the pipe to it."""

    def __init__(self, context: Any, spec: FunctionSpec, index: int):
        self.spec = spec
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main, name=f"{spec.name}-{index}", daemon=True,
            args=(child, str(spec.code_root), spec.handler, spec.environment, spec.name, spec.memory))
        # The child inherits this thread's signal mask: it starts with the stop signals blocked.
        # The resource tracker is started first: starting it unblocks SIGINT and SIGTERM.
        multiprocessing.resource_tracker.ensure_running()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        child.close()

    def ready(self, timeout: float = 120, interrupt: StopSignals | None = None) -> None:
        """Wait for the environment to have imported its handler (or for a stop request)."""
        deadline = time.monotonic() + timeout
        while True:
            waiting = [self.conn] + ([interrupt] if interrupt is not None else [])
            try:
                ready = multiprocessing.connection.wait(waiting, max(0.0, deadline - time.monotonic()))
            except (OSError, ValueError):  # closed by close() while starting
                self.kill()
                raise FunctionError(f"{self.spec.name}: the execution environment was stopped") from None
            if interrupt is not None and interrupt.requested:
                self.kill()
                raise StopRequested(interrupt.name)
            if self.conn in ready:
                break
            if time.monotonic() >= deadline:
                self.kill()
                raise FunctionError(f"{self.spec.name}: environment did not start in {timeout:.0f} s")
        try:
            kind, payload = self.conn.recv()
        except (EOFError, OSError):
            kind, payload = "init-error", "the environment exited while starting"
        if kind != "ready":
            self.kill()
            raise FunctionError(f"{self.spec.name}: cannot import {self.spec.handler}\n{payload}")

    def call(self, event: Any, timeout: float) -> Any:
        """The handler's result, or FunctionError. A worker that timed out or died is dead after this."""
        try:
            self.conn.send((event, int(timeout * 1000)))
            if not self.conn.poll(timeout):
                self.kill()
                raise FunctionError(f"{self.spec.name}: task timed out after {timeout:.0f} s", timed_out=True)
            kind, payload = self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self.kill()
            raise FunctionError(f"{self.spec.name}: the execution environment exited") from None
        if kind == "error":
            raise FunctionError(f"{self.spec.name}: {payload}")
        return payload

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        with contextlib.suppress(OSError):  # already closed by the pool's close() on another thread
            self.conn.close()


class FunctionPool:
    """A function's execution environments: one invocation per worker, at most `size` workers."""

    def __init__(self, context: Any, spec: FunctionSpec, size: int):
        self.context = context
        self.spec = spec
        self.size = size
        self.idle: list[Worker] = []
        self.workers: set[Worker] = set()  # every environment started, starting ones included
        self.spawned = 0
        self.closed = False
        self.condition = threading.Condition()

    def _spawn(self) -> Worker:
        self.spawned += 1
        return Worker(self.context, self.spec, self.spawned)

    def warm(self) -> Worker:
        """Start one environment now (at start-up, like a provisioned one)."""
        with self.condition:
            worker = self._spawn()
            self.workers.add(worker)
        return worker

    def _acquire(self) -> Worker:
        with self.condition:
            while True:
                if self.closed:
                    raise FunctionError(f"{self.spec.name}: stopping")
                if self.idle:
                    return self.idle.pop()
                if len(self.workers) < self.size:
                    # In `workers` from the start, so that close() stops it even while it imports.
                    worker = self._spawn()
                    self.workers.add(worker)
                    break
                self.condition.wait()
        try:
            worker.ready()
        except BaseException:
            with self.condition:
                self.workers.discard(worker)
                self.condition.notify()
            raise
        with self.condition:
            if self.closed:  # closed while it started: close() has killed it
                self.workers.discard(worker)
                raise FunctionError(f"{self.spec.name}: stopping")
        return worker

    def _release(self, worker: Worker) -> None:
        with self.condition:
            if worker.alive and not self.closed:
                self.idle.append(worker)
            else:
                self.workers.discard(worker)
                worker.kill()
            self.condition.notify()

    def invoke(self, event: Any, timeout: float | None = None) -> Any:
        worker = self._acquire()
        try:
            return worker.call(event, timeout or self.spec.timeout)
        finally:
            self._release(worker)

    def close(self) -> None:
        """Stop every worker, busy or not, at once (as Lambda ends its environments: they keep
        nothing that needs flushing)."""
        with self.condition:
            self.closed = True
            workers = list(self.workers)
            self.idle.clear()
            self.condition.notify_all()
        for worker in workers:
            if worker.process.is_alive():
                worker.process.kill()
        for worker in workers:
            worker.kill()


# ---------------------------------------------------------------- the API application


class LocalApi:
    """WSGI application that plays API Gateway in front of the template's functions."""

    def __init__(self, routes: list[events.Route], pools: dict[str, FunctionPool], port: int,
                 mounts: dict[str, Callable] | None = None):
        self.routes = routes
        self.pools = pools
        self.port = port
        self.mounts = mounts or {}  # path prefix -> WSGI app of the local run's own (AUTH=cognito's stand-in)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix, app in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                return app({**environ, "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + prefix,
                            "PATH_INFO": path[len(prefix):] or "/"}, start_response)
        request = Request(environ)
        started = time.perf_counter()
        target = _raw_target(environ)
        response = self.dispatch(request, target)
        log.info("%s %s %s %.1f ms", request.method, target, response.status_code,
                 (time.perf_counter() - started) * 1000)
        return response(environ, start_response)

    def dispatch(self, request: Request, target: str) -> Response:
        if request.path == "/swagger" or request.path.startswith("/swagger/"):
            return swagger(request.path, self)
        http = events.HttpRequest.from_target(
            request.method, target, request.headers.items(), request.get_data(),
            source_ip=request.remote_addr or "127.0.0.1",
            protocol=request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"), scheme="http", port=self.port)
        found = events.find_route(self.routes, http.method, http.raw_path)
        if found is None:
            return _response(events.not_found())
        route, params = found
        signed = None
        if events.sigv4_mode() and not route.api.public:
            try:
                caller = signatures.verify(http, request.host)
            except signatures.SignatureRejected as rejected:
                return _response(events.HttpResponse(
                    401, [("Content-Type", "application/json")],
                    json.dumps({"message": str(rejected), "exception": "UnauthorizedException"}).encode()))
            signed = (caller.principal, caller.access_key, caller.identity) if caller.identity else \
                (caller.principal, caller.access_key)
        event = events.build_event(http, route, params, signed=signed)
        request_id = event["requestContext"]["requestId"]
        pool = self.pools[route.api.function]
        timeout = min(pool.spec.timeout, GATEWAY_TIMEOUT)
        try:
            result = pool.invoke(event, timeout)
            return _response(events.to_response(result))
        except FunctionError as error:
            log.error("%s", error)
            # Lambda's own timeout is a function error (502); API Gateway's 29 s is a 504.
            status = 504 if error.timed_out and timeout == GATEWAY_TIMEOUT else 502
            return _response(events.gateway_error(status, request_id))
        except events.MalformedResult as error:
            log.error("%s: malformed proxy result: %s", route.api.function, error)
            return _response(events.gateway_error(502, request_id))


def _raw_target(environ: dict) -> str:
    """The request target exactly as the client sent it (`/path?query`, still percent-encoded)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        query = environ.get("QUERY_STRING")
        return environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
    try:  # werkzeug passes the request line through the WSGI latin-1 "encoding dance"
        raw = raw.encode("latin-1").decode("utf-8").encode("latin-1").decode("utf-8", "replace")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    if raw.startswith(("http://", "https://")):  # absolute form, as sent to a proxy
        parts = urlsplit(raw)
        raw = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return raw


def _response(http: events.HttpResponse) -> Response:
    response = Response(http.body, status=http.status)
    response.headers.pop("Content-Type", None)
    for key, value in http.headers:
        response.headers.add(key, value)
    return response


SWAGGER_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Context Services API</title>
<link rel="stylesheet" href="/swagger/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/swagger/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/swagger/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>"""


def swagger_assets() -> Path:
    """Swagger UI's dist folder, as the flask-swagger-ui package ships it (found without importing Flask)."""
    spec = importlib.util.find_spec("flask_swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("flask-swagger-ui is not installed (make run installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "dist"


def swagger(path: str, api: LocalApi) -> Response:
    if path in ("/swagger", "/swagger/"):
        return Response(SWAGGER_HTML, content_type="text/html; charset=utf-8")
    if path == "/swagger/openapi.json":
        # With the ids of the demo tenant as path examples, so that "Try it out" works (local.demo).
        document = demo.served_document(api, json.loads((template.ROOT / "docs" / "openapi.json").read_text()))
        return Response(json.dumps(document, indent=2), content_type="application/json")
    name = path.removeprefix("/swagger/assets/")
    asset = swagger_assets() / name
    if name == path or "/" in name or name.startswith(".") or not asset.is_file():
        return _response(events.HttpResponse(404, [("Content-Type", "application/json")],
                                             b'{"message": "no such asset", "exception": "NotFoundException"}'))
    return Response(asset.read_bytes(), content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")


# ---------------------------------------------------------------- other event sources


def sqs_records(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping sends for a batch of received messages."""
    records = []
    for message in messages:
        attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            attributes[name] = {
                "stringValue": value.get("StringValue"),
                "binaryValue": _b64(value.get("BinaryValue")),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": [_b64(v) for v in value.get("BinaryListValues", [])],
                "dataType": value.get("DataType"),
            }
        records.append({
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": message.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": LOCAL_REGION,
        })
    return {"Records": records}


def _b64(value: Any) -> Any:
    import base64

    return base64.b64encode(value).decode("ascii") if isinstance(value, (bytes, bytearray)) else value


def scheduled_event(rule_arn: str) -> dict[str, Any]:
    """The event an EventBridge schedule rule sends."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": LOCAL_ACCOUNT, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION, "resources": [rule_arn], "detail": {},
    }


class SqsPoller(threading.Thread):
    """Lambda's SQS event source mapping for one (queue, function)."""

    def __init__(self, client: Any, queue_url: str, queue_arn: str, pool: FunctionPool, batch_size: int,
                 report_failures: bool, stopping: threading.Event, label: str):
        super().__init__(name=f"sqs-{label}", daemon=True)
        self.client, self.queue_url, self.queue_arn, self.pool = client, queue_url, queue_arn, pool
        self.batch_size = max(1, min(batch_size, 10))
        self.report_failures = report_failures
        self.stopping = stopping
        self.label = label

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # keep polling, as the event source mapping does
                if not self.stopping.is_set():
                    log.exception("%s: polling failed", self.label)
                self.stopping.wait(SQS_IDLE_SECONDS)

    def poll_once(self) -> None:
        messages = self.client.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=0,
            AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            self.stopping.wait(SQS_IDLE_SECONDS)
            return
        try:
            result = self.pool.invoke(sqs_records(messages, self.queue_arn))
        except FunctionError as error:
            log.error("%s: %d message(s) not processed, back after the visibility timeout: %s",
                      self.label, len(messages), error)
            return
        failed: set[str] = set()
        if self.report_failures and isinstance(result, dict):
            failed = {str(item.get("itemIdentifier")) for item in result.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        log.info("%s: %d message(s), %d deleted%s", self.label, len(messages), len(done),
                 f", {len(failed)} reported failed" if failed else "")


class Schedule(threading.Thread):
    """An EventBridge schedule rule, every `interval` seconds."""

    def __init__(self, pool: FunctionPool, interval: float, rule_arn: str, payload: Any,
                 stopping: threading.Event, label: str):
        super().__init__(name=f"schedule-{label}", daemon=True)
        self.pool, self.interval, self.rule_arn, self.payload = pool, interval, rule_arn, payload
        self.stopping = stopping
        self.label = label

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            event = self.payload if self.payload is not None else scheduled_event(self.rule_arn)
            try:
                self.pool.invoke(event)
                log.info("%s: invoked", self.label)
            except FunctionError as error:
                if not self.stopping.is_set():
                    log.error("%s: %s", self.label, error)


# ---------------------------------------------------------------- the local run


# The page's sign-in for each local access mode (handlers/viewer.py serves it as /viewer/config.json).
VIEWER_SIGN_IN = {"": "open", "on": "principal", "sigv4": "sigv4", "cognito": "cognito"}


def access_environment() -> dict[str, str]:
    """The local access mode's variables: the viewer's sign-in, and with AUTH=sigv4 or AUTH=cognito
    the functions' access check (AUTH=on turns it on by itself, see lib.settings). AUTH=cognito's
    pool ids are added when the stand-in has made them (LocalRun.start)."""
    mode = os.environ.get("AUTH", "").strip().lower()
    variables = {"VIEWER_SIGN_IN": VIEWER_SIGN_IN.get(mode, "open")}
    if mode in ("sigv4", "cognito"):
        variables.update(ACCESS_MODE="iam", GRANTS_FILE=os.environ.get("GRANTS_FILE") or "local-grants.json")
    if mode == "cognito":
        variables["VIEWER_COGNITO_ENDPOINTS"] = ""
    return variables


def default_environment(path: Path | str | None = None) -> dict[str, str]:
    """What the local run sets unless the user exported it: the template's plain values, then local
    defaults (which win over the template's)."""
    return {
        **access_environment(),
        **template.plain_environment(path),
        "TABLE_NAME": "context-services-local",
        "PAGE_TOKEN_SECRET": "local-run-secret",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "EXPORT_DIR": str(template.ROOT / "exports"),
    }


def configure_environment(path: Path | str | None = None) -> dict[str, str]:
    """Set the local defaults in os.environ (the user's exported values win)."""
    defaults = default_environment(path)
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    if not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        # The embedded services accept any credentials; never pick up real ones by accident.
        os.environ["AWS_ACCESS_KEY_ID"] = "local"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "local"
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
    return defaults


def _serve_in_thread(app: Callable, host: str, name: str) -> tuple[Any, str]:
    server = make_server(host, 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server, f"http://{host}:{server.server_port}"


class LocalRun:
    """Everything `make run` starts, and stops."""

    def __init__(self, host: str, port: int, template_path: Path | str | None = None,
                 pool_size: int | None = None, interrupt: StopSignals | None = None):
        self.host, self.port = host, port
        # Start-up checks it between its steps: a stop asked for while starting ends the start early.
        self.interrupt = interrupt
        self.template_path = Path(template_path or template.TEMPLATE).resolve()
        self.pool_size = pool_size or int(os.environ.get("LOCAL_POOL_SIZE", "4"))
        self.stopping = threading.Event()
        self.services: list[Any] = []  # embedded HTTP servers (DynamoDB, SQS)
        self.pools: dict[str, FunctionPool] = {}
        self.threads: list[threading.Thread] = []
        self.http: Any = None
        self._stop_lock = threading.Lock()
        self._stopped = False
        self.feed: stream.LocalFeed | None = None  # the change feed: stream, embedded bus, /local/events

    # -- start

    def _check(self) -> None:
        if self.interrupt is not None:
            self.interrupt.check()

    def start(self) -> None:
        path = self.template_path
        configure_environment(path)
        grants_note = self.check_grants_file() if events.auth_mode() or events.sigv4_mode() else ""
        refs: dict[str, str] = {name: str(p["Default"]) for name, p in template.load(path).get("Parameters", {}).items()
                                if "Default" in p}
        refs.update({"AWS::Region": LOCAL_REGION, "AWS::AccountId": LOCAL_ACCOUNT, "AWS::StackName": "local",
                     "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"})
        attributes: dict[tuple[str, str], str] = {}

        tables = template.resources("AWS::DynamoDB::Table", path)
        self._check()
        if tables:
            if not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
                embedded_dynamodb.faithful_updates()
                embedded_dynamodb.partition_scoped()
                server, endpoint = embedded_dynamodb.start(self.host)
                self.services.append(server)
                os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
                print(f"embedded DynamoDB (moto, serialised) on {endpoint}", flush=True)
            else:
                print(f"using DynamoDB at {os.environ['AWS_ENDPOINT_URL_DYNAMODB']}", flush=True)
            self.ensure_table(os.environ["TABLE_NAME"])
            for name in tables:
                refs[name] = os.environ["TABLE_NAME"]
                attributes[(name, "Arn")] = f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT}:table/{refs[name]}"

        queues = template.resources("AWS::SQS::Queue", path)
        sqs = None
        self._check()
        if queues:
            sqs = self.start_sqs()
            self.create_queues(sqs, queues, refs, attributes)

        if stream.wanted(path):  # before the functions: their environment names the bus
            self.feed = stream.LocalFeed(self.host, LOCAL_REGION, self.stopping)
            self.feed.start_bus(path, refs, attributes)

        export_dir = Path(os.environ["EXPORT_DIR"]).resolve()
        export_dir.mkdir(parents=True, exist_ok=True)
        os.environ["EXPORT_DIR"] = str(export_dir)
        print(f"exports: {export_dir} (EXPORT_DIR)", flush=True)
        mounts: dict[str, Callable] = {}
        if os.environ.get("AUTH", "").strip().lower() == "cognito":
            from local import cognito

            sign_in, mounts, _ = cognito.start(path)
            os.environ.update(sign_in.environment())  # the viewer function's config.json
            print(f"access: AUTH=cognito - people sign in to a local user pool ({sign_in.user_pool_id}, groups "
                  f"Administrator and Supervisor; add one: README, Sign-in locally) and the page signs its calls "
                  f"with their role's temporary credentials (SigV4, verified); grants from {os.environ.get('GRANTS_FILE')}",
                  flush=True)
            print(f"access: {grants_note}", flush=True)
        elif events.sigv4_mode():
            print("access: AUTH=sigv4 - requests must be signed (SigV4) with a test key of local/signatures.py; "
                  f"grants from {os.environ.get('GRANTS_FILE')}", flush=True)
            print(f"access: {grants_note}", flush=True)
        elif events.auth_mode():
            print("access: AUTH=on - the caller is the X-CS-Principal header (IAM identity in the event); "
                  f"no header, no identity; {grants_note}", flush=True)
        else:
            print("access: open (AUTH unset: no caller identity in events; AUTH=on enforces access)", flush=True)

        context = multiprocessing.get_context("spawn")
        functions = template.functions(path)
        for function in functions:
            spec = FunctionSpec(function.name, function.handler, function.code_root, function.timeout,
                                function.memory, self.function_environment(function, refs, attributes))
            self.pools[function.name] = FunctionPool(context, spec, self.pool_size)
        warm = os.environ.get("LOCAL_WARM", "1").strip().lower() not in ("0", "off", "false", "no")
        self._check()
        if warm:
            self.warm()
        print(f"functions: {', '.join(self.pools)} (isolated processes, up to {self.pool_size} each"
              f"{'' if warm else '; each started on its first invocation (LOCAL_WARM=0)'})", flush=True)

        self._check()
        for function in functions:
            self.start_event_sources(function, sqs, refs, attributes)
        if self.feed is not None:
            self.feed.start_consumers(path, self.pools, refs, attributes, LOCAL_ACCOUNT)

        routes = events.compile_routes(template.api_routes(path))
        if routes:
            api = LocalApi(routes, self.pools, self.port, mounts)
            self.http = make_server(self.host, self.port, self.feed.serve_events(api) if self.feed else api,
                                    threaded=True)
            api.port = self.http.server_port
            self.port = self.http.server_port
            threading.Thread(target=self.http.serve_forever, name="http", daemon=True).start()
            base = "/genesys/1/cs" if any(r.api.path.startswith("/genesys/1/cs/") for r in routes) else ""
            viewer = (f", journey viewer: http://{self.host}:{self.port}/viewer/"
                      if any(r.api.path == "/viewer" for r in routes) else "")
            print(f"Context Services API on http://{self.host}:{self.port}{base}  "
                  f"(Swagger UI: http://{self.host}:{self.port}/swagger{viewer}) - Ctrl-C, SIGTERM or SIGHUP stops",
                  flush=True)
            self.write_state(f"http://{self.host}:{self.port}{base}")

    @staticmethod
    def check_grants_file() -> str:
        """AUTH=on, sigv4, cognito: the grants file must be there and valid before anything starts
        (SystemExit with the reason otherwise). What to print about it."""
        from lib.api.access import FileGrants
        from lib.settings import settings

        try:
            grants_file = settings().grants_file or ""
            count = len(FileGrants(grants_file).load())
        except Exception as error:  # GrantsFileError, ConfigurationError: the reason, no traceback
            raise SystemExit(f"AUTH={os.environ.get('AUTH', '').strip()}: {error}") from None
        return (f"grants from {os.path.abspath(grants_file)} (GRANTS_FILE: {count} principal"
                f"{'' if count == 1 else 's'}), read again at every request")

    def ensure_table(self, table_name: str) -> None:
        import boto3

        client = boto3.client("dynamodb", region_name=os.environ.get("AWS_DEFAULT_REGION", LOCAL_REGION),
                              endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
        if table_name not in client.list_tables().get("TableNames", []):
            template.create_table(client, table_name, self.template_path)

    def start_sqs(self) -> Any:
        import boto3

        if not os.environ.get("AWS_ENDPOINT_URL_SQS"):
            from moto.server import create_backend_app

            server, endpoint = _serve_in_thread(embedded_dynamodb.SerializedApp(create_backend_app("sqs")),
                                                self.host, "embedded-sqs")
            self.services.append(server)
            os.environ["AWS_ENDPOINT_URL_SQS"] = endpoint
            print(f"embedded SQS (moto) on {endpoint}", flush=True)
        else:
            print(f"using SQS at {os.environ['AWS_ENDPOINT_URL_SQS']}", flush=True)
        return boto3.client("sqs", region_name=os.environ.get("AWS_DEFAULT_REGION", LOCAL_REGION),
                            endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"])

    def create_queues(self, sqs: Any, queues: dict[str, dict[str, Any]], refs: dict[str, str],
                      attributes: dict[tuple[str, str], str]) -> None:
        """The template's queues, dead-letter queues first (a redrive policy names its queue's ARN)."""
        pending = dict(queues)
        while pending:
            progressed = False
            for name, resource in list(pending.items()):
                props = resource.get("Properties") or {}
                try:
                    queue_attributes = self.queue_attributes(props, refs, attributes)
                except template.Unresolved:
                    continue
                try:
                    queue_name = template.resolve(props["QueueName"], refs, attributes) if "QueueName" in props else name
                except template.Unresolved:
                    queue_name = name
                if props.get("FifoQueue") and not queue_name.endswith(".fifo"):
                    queue_name += ".fifo"
                url = sqs.create_queue(QueueName=queue_name, Attributes=queue_attributes)["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                refs[name] = url
                attributes.update({(name, "Arn"): arn, (name, "QueueName"): queue_name, (name, "QueueUrl"): url})
                print(f"queue {name}: {url}", flush=True)
                del pending[name]
                progressed = True
            if not progressed:
                raise SystemExit(f"cannot create queues {sorted(pending)}: their properties refer to what the "
                                 "local run does not emulate")

    @staticmethod
    def queue_attributes(props: dict[str, Any], refs: dict[str, str],
                         attributes: dict[tuple[str, str], str]) -> dict[str, str]:
        names = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize",
                 "ReceiveMessageWaitTimeSeconds", "FifoQueue", "ContentBasedDeduplication")
        result = {name: template.resolve(props[name], refs, attributes) for name in names if name in props}
        if "RedrivePolicy" in props:
            policy = props["RedrivePolicy"]
            result["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": template.resolve(policy["deadLetterTargetArn"], refs, attributes),
                "maxReceiveCount": int(template.resolve(policy["maxReceiveCount"], refs, attributes)),
            })
        return result

    def function_environment(self, function: template.Function, refs: dict[str, str],
                             attributes: dict[tuple[str, str], str]) -> dict[str, str]:
        """The function's variables as the template writes them, resolved against the local resources;
        local defaults, then what the user exported, win. Variables that refer to something the local
        run does not emulate (a secret) are left out, unless a local default covers them."""
        environment: dict[str, str] = {}
        for key, value in function.environment.items():
            if key in DEPLOYED_ONLY:
                continue
            try:
                environment[key] = template.resolve(value, refs, attributes)
            except template.Unresolved:
                pass
        defaults = default_environment(self.template_path)
        for key in list(environment) + list(defaults):
            if key in os.environ:
                environment[key] = os.environ[key]
        return environment

    def warm(self) -> None:
        """One environment per function, started together; a handler that does not import stops here."""
        workers = [pool.warm() for pool in self.pools.values()]
        failures = []
        for pool, worker in zip(self.pools.values(), workers):
            try:
                worker.ready(interrupt=self.interrupt)
            except StopRequested:
                raise  # stop() ends every environment, started or starting
            except FunctionError as error:
                failures.append(str(error))
                with pool.condition:
                    pool.workers.discard(worker)
                continue
            pool._release(worker)
        if failures:
            raise SystemExit("\n".join(failures))

    def start_event_sources(self, function: template.Function, sqs: Any, refs: dict[str, str],
                            attributes: dict[tuple[str, str], str]) -> None:
        pool = self.pools[function.name]
        interval = float(os.environ.get("LOCAL_SCHEDULE_SECONDS", "60"))
        for event_name, (kind, props) in function.events.items():
            if kind == "Api":
                continue
            if str(props.get("Enabled", True)).lower() == "false":
                print(f"{kind} {event_name} -> {function.name}: disabled in the template", flush=True)
                continue
            label = f"{kind} {event_name} -> {function.name}"
            if kind == "SQS" and sqs is not None:
                arn = template.resolve(props["Queue"], refs, attributes)
                url = next((refs[name] for (name, attribute), value in attributes.items()
                            if attribute == "Arn" and value == arn), None)
                if url is None:
                    raise SystemExit(f"{label}: no local queue has the ARN {arn}")
                report = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
                thread: threading.Thread = SqsPoller(sqs, url, arn, pool, int(props.get("BatchSize", 10)), report,
                                                     self.stopping, label)
                print(f"{label}: polled every {SQS_IDLE_SECONDS} s when idle, batches of "
                      f"{thread.batch_size}{', ReportBatchItemFailures' if report else ''}", flush=True)
            elif kind == "Schedule":
                payload = json.loads(props["Input"]) if isinstance(props.get("Input"), str) else None
                rule_arn = f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:rule/{function.name}{event_name}"
                thread = Schedule(pool, interval, rule_arn, payload, self.stopping, label)
                try:
                    expression = template.resolve(props.get("Schedule"), refs, attributes)
                except template.Unresolved:
                    expression = props.get("Schedule")
                print(f"{label}: every {interval:g} s (LOCAL_SCHEDULE_SECONDS; the template says {expression})",
                      flush=True)
            else:
                print(f"{label}: not emulated by the local run", flush=True)
                continue
            thread.start()
            self.threads.append(thread)

    # -- stop

    def write_state(self, url: str) -> None:
        """`.local-run/<port>.json` (LOCAL_RUN_DIR): what `cs-import` needs to write into this run's
        store by default (its DynamoDB endpoint, table and defaults); removed when the run stops."""
        folder = Path(os.environ.get("LOCAL_RUN_DIR") or template.ROOT / ".local-run")
        folder.mkdir(parents=True, exist_ok=True)
        self.state_file = folder / f"{self.port}.json"
        self.state_file.write_text(json.dumps({
            "pid": os.getpid(), "url": url, "dynamodb_endpoint": os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"),
            "table": os.environ.get("TABLE_NAME"), "region": os.environ.get("AWS_DEFAULT_REGION"),
            "export_dir": os.environ.get("EXPORT_DIR"),
            "settings": {name: os.environ.get(name) for name in ("DEFAULT_EXPIRATION", "AUTO_COMPLETE_AFTER")}}))
        print(f"local run state: {self.state_file} (cs-import reads it)", flush=True)

    def stop(self) -> None:
        """Stop everything start() started, whatever it got to: the HTTP servers (the API and the
        embedded services) stop accepting, every execution environment ends (which ends the
        invocations in flight), the pollers and the schedule stop; every port is closed when this
        returns. Idempotent: a second call waits for the first to finish, then returns."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            self.stopping.set()
            servers = ([self.http] if self.http is not None else []) + list(self.services)
            # socketserver's shutdown() waits for its loop's next turn (up to 0.5 s): all at once.
            stoppers = [threading.Thread(target=server.shutdown, name="shutdown", daemon=True) for server in servers]
            # Each step runs even if an earlier one failed: nothing may be left running.
            steps: list[Callable[[], None]] = [stopper.start for stopper in stoppers]
            if self.feed is not None:  # the change feed's stream reader and embedded bus
                steps.insert(0, self.feed.stop)
            if getattr(self, "state_file", None) is not None:  # cs-import's pointer to this run
                steps.insert(0, lambda: self.state_file.unlink(missing_ok=True))
            steps += [pool.close for pool in self.pools.values()]
            steps += [lambda: self._join(self.threads + stoppers)]
            steps += [server.server_close for server in servers]
            for step in steps:
                try:
                    step()
                except Exception:  # logged; the next steps still run
                    log.exception("while stopping")

    @staticmethod
    def _join(threads: list[threading.Thread], budget: float = 3.0) -> None:
        deadline = time.monotonic() + budget
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


def _say(text: str, stream: Any = None) -> None:
    """Print a line of the run's output; a closed terminal (SIGHUP) or pipe must not stop the stop."""
    try:
        print(text, file=stream or sys.stdout, flush=True)
    except (OSError, ValueError):
        pass


def serve(host: str, port: int, template_path: Path | str | None = None) -> int:
    """Start everything, serve until SIGTERM, SIGINT or SIGHUP, stop everything. The exit code."""
    signals = StopSignals()
    signals.install()
    run = LocalRun(host, port, template_path, interrupt=signals)
    code = 0
    try:
        run.start()
        signals.wait()
    except StopRequested:
        pass  # asked to stop while starting
    except SystemExit as error:
        _say(error.code if isinstance(error.code, str) else "start-up failed", sys.stderr)
        code = 1
    finally:
        if signals.requested:
            _say(f"stopping ({signals.name})")
        run.stop()
        _say("stopped")
    return code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Context Services API locally (no Docker).")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--template", default=os.environ.get("LOCAL_TEMPLATE") or str(template.TEMPLATE),
                        help="the SAM template to serve (default: template.yaml)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    for noisy in ("werkzeug", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    code = serve(args.host, args.port, args.template)
    # Everything is stopped and every port closed; what remains is memory (the embedded tables and
    # queues). The interpreter's own clean-up of it took 1.4 s on a busy 2-core machine (measured),
    # the kernel's is immediate: flush the output, then leave without it.
    logging.shutdown()
    for output in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            output.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
