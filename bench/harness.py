"""What the parts of the benchmark share: the deployed functions' environment emulated in this
process, an API client that times lambda_handler alone, and counting what a response returns.

Nothing here imports the project before `production_environment()` has run: Powertools reads its
settings (log level, metrics, tracing) when the handlers are imported.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.client import Verbs

ROOT = Path(__file__).resolve().parent.parent
TABLE = "context-services-bench"
FUNCTION_NAME = "context-services-bench"
# The benchmark's caller: every request carries it as API Gateway's IAM identity, and every table
# the handlers read holds its grant (Administrator of every tenant), given with scripts/grants.py.
PRINCIPAL = "arn:aws:iam::123456789012:role/context-services-bench"
PAGE_TOKEN_SECRET = "bench-paging-secret-of-32-characters"


def deployed_environment(function: str | None = None) -> dict[str, str]:
    """The plain environment template.yaml gives `function` (or, when None, what every function
    shares, each function's own plain values added): Globals, parameter defaults, per-function
    variables such as ACCESS_MODE. Intrinsics the benchmark cannot resolve (the table's name, the
    secret, a queue's URL) are left out; empty values too."""
    from local import template

    env = {key: value for key, value in template.plain_environment().items() if value}
    for each in template.functions():
        if function is not None and each.name != function:
            continue
        for key, value in each.environment.items():
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                env.setdefault(key, str(value))
    return env


def grant(table: str, principal: str = PRINCIPAL) -> None:
    """Give `principal` the Administrator role on every tenant in `table`, the documented way
    (scripts/grants.py), when the functions check grants (ACCESS_MODE=iam)."""
    if os.environ.get("ACCESS_MODE", "").lower() != "iam":
        return
    from scripts import grants

    sys.stdout.flush()
    code = grants.main(["add", principal, "--role", "Administrator", "--tenant", "*", "--table", table,
                        "--region", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")])
    if code:
        raise RuntimeError(f"scripts.grants add {principal} --table {table} answered {code}")


class TracingLog(logging.Handler):
    """What the X-Ray SDK logs (it reports trouble by logging, never by raising), counted per
    measured case: e.g. "Failed to send entity to Daemon" when a segment outgrows a UDP datagram."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.label = "setup"
        self.counts: Counter[str] = Counter()
        self.messages: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[self.label] += 1
        self.messages[f"{record.getMessage()} ({record.exc_info[1] if record.exc_info else ''})"] += 1

    def report(self) -> dict[str, Any]:
        return {"records": sum(self.counts.values()), "by_case": dict(self.counts), "messages": dict(self.messages)}


TRACING_LOG = TracingLog()
# The environment the benchmark was started with, before it played a deployed function: what the
# processes it starts that are not functions (the local server) get.
ORIGINAL_ENVIRONMENT: dict[str, str] = {}


def label_case(name: str) -> None:
    """Name what is measured now (for what the X-Ray SDK logs meanwhile)."""
    TRACING_LOG.label = name


def production_environment() -> dict[str, Any]:
    """Set the environment template.yaml gives the functions (log level, metrics namespace,
    service name, tracing) and what Lambda itself sets, so that Powertools behaves as deployed:
    metrics on, INFO logs, and the X-Ray tracer built (lib/observability builds it only inside
    Lambda, recognised by AWS_LAMBDA_FUNCTION_NAME; the X-Ray SDK recognises Lambda by
    LAMBDA_TASK_ROOT and takes the trace header of each invocation from _X_AMZN_TRACE_ID).
    Returns what was emulated, for the report."""
    from local import template

    ORIGINAL_ENVIRONMENT.update(os.environ)
    globals_ = template.load().get("Globals", {}).get("Function", {})
    tracing = globals_.get("Tracing") == "Active"
    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_DEV", "AWS_SAM_LOCAL",
                 "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    deployed = deployed_environment()
    os.environ.update(deployed)
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench", TABLE_NAME=TABLE, PAGE_TOKEN_SECRET=PAGE_TOKEN_SECRET,
        AWS_LAMBDA_FUNCTION_NAME=FUNCTION_NAME, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(globals_.get("MemorySize", 512)),
        LAMBDA_TASK_ROOT=str(ROOT), AWS_EXECUTION_ENV="AWS_Lambda_python3.13",
        EXPORT_DIR=tempfile.mkdtemp(prefix="bench-exports-"),  # export files of the maintenance cases
    )
    if not tracing:
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    new_trace()
    logging.getLogger("aws_xray_sdk").addHandler(TRACING_LOG)
    return {"environment_from_template": deployed, "tracing": "active (X-Ray SDK, every request sampled)"
            if tracing else "off (template.yaml has no active tracing)", "metrics": "on",
            "log_level": os.environ.get("POWERTOOLS_LOG_LEVEL", ""),
            "access_mode": os.environ.get("ACCESS_MODE", "(unset)"), "caller": PRINCIPAL,
            "not_emulated": "values template.yaml takes from resources (table name, paging secret, jobs queue, "
                            "export bucket): the benchmark's own table and secret stand in; without a jobs queue "
                            "a maintenance job continues on a background thread, without a bucket exports go to a "
                            "temporary folder"}


def new_trace(sampled: bool = True) -> None:
    """A fresh X-Ray trace header, as Lambda sets one before each invocation (API Gateway with
    tracing samples 1 request a second and 5 % of the rest; the benchmark samples every request,
    the dearest case)."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    os.environ["_X_AMZN_TRACE_ID"] = f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled={1 if sampled else 0}"


class TimedApi(Verbs):
    """Calls a function's lambda_handler as the tests' client does, and times only that call: the
    API Gateway event is built before (API Gateway builds it, not the function), the reply read after.
    `cpu` and `wall` accumulate seconds of the handler calls until reset(): the CPU time of the
    process (the handler, the store's reader threads, and moto answering them: nothing else runs in
    it meanwhile), and the wall time, which on a shared machine also holds the waits for a CPU that
    other work imposes."""

    def __init__(self, headers: dict[str, str] | None = None, sampled: bool = True):
        from bench import client

        self._client = client  # the event builder, the context, the reply conversion
        self.headers = headers or {}
        self.sampled = sampled
        self.cpu = self.wall = 0.0
        self.requests = 0
        self._handlers: dict[str, Any] = {}
        self.probe: Any = None  # a context manager entered around each lambda_handler call (profiling)
        # Merged into requestContext: API Gateway's IAM identity of the caller (None: no identity).
        self.context_fragment: dict[str, Any] | None = {"identity": {"userArn": PRINCIPAL}}
        # When a list: requests are built, kept here as (event, handler) and not made (returning None).
        self.capturing: list[tuple[dict[str, Any], str]] | None = None

    def reset(self) -> None:
        self.cpu = self.wall = 0.0
        self.requests = 0

    def handler(self, name: str) -> Any:
        if name not in self._handlers:
            module, attribute = name.rsplit(".", 1)
            self._handlers[name] = getattr(importlib.import_module(module), attribute)
        return self._handlers[name]

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        event, name = self._client.event_for(method, path, body, {**self.headers, **(headers or {})})
        if self.context_fragment:
            context = dict(event.get("requestContext") or {})
            for key, value in self.context_fragment.items():
                context[key] = {**(context.get(key) or {}), **value} if isinstance(value, dict) else value
            event["requestContext"] = context
        if self.capturing is not None:
            self.capturing.append((event, name))
            return None
        function = self.handler(name)
        context = self._client.context(name.rsplit(".", 1)[0])
        new_trace(self.sampled)
        started, cpu = time.perf_counter(), time.process_time()
        if self.probe is None:
            result = function(event, context)
        else:
            with self.probe:
                result = function(event, context)
        self.cpu += time.process_time() - cpu
        self.wall += time.perf_counter() - started
        self.requests += 1
        return self._client.to_reply(result)

    def follow(self, path: str, expect: int = 200) -> tuple[list[Any], int, int]:
        """GET a list and every next page its Link headers name: (items, pages, response bytes)."""
        from bench.client import BASE

        items: list[Any] = []
        pages = size = 0
        while path:
            reply = self.get(path)
            if reply.status != expect:
                raise RuntimeError(f"GET {path}: {reply.status} {reply.text[:300]}")
            items.extend(reply.json)
            pages += 1
            size += len(reply.text.encode())
            path = next_link(reply.headers, BASE)
        return items, pages, size


def next_link(headers: dict[str, str], base: str) -> str | None:
    """The path (relative to the base path) of the `rel="next"` Link of a reply, if any."""
    for name, value in headers.items():
        if name.lower() != "link":
            continue
        for part in value.split(","):
            if 'rel="next"' in part:
                target = part.split(";")[0].strip().strip("<>")
                index = target.find(base)
                return target[index + len(base):] if index >= 0 else target
    return None


def returned_items(body: Any) -> int:
    """Items a response returns: services, states and tasks, embedded ones included; for a start,
    the ids it answers with."""
    if isinstance(body, list):
        return sum(returned_items(element) for element in body)
    if not isinstance(body, dict):
        return 0
    if list(body) == ["services"] and isinstance(body["services"], list):  # composite start
        return sum(sum(1 for key in ("service_id", "state_id", "task_id") if key in element)
                   for element in body["services"])
    count = 1 if any(key in body for key in ("service_id", "state_id", "task_id")) else 0
    for key in ("active_states", "completed_states", "active_tasks", "completed_tasks"):
        count += returned_items(body.get(key) or [])
    return count


@lru_cache(maxsize=1)
def raw_client() -> Any:
    """A plain boto3 DynamoDB client of the benchmark's own (tables, raw copies, bare calls): the
    benchmark never reaches into lib/ for one."""
    import boto3

    return boto3.client("dynamodb", region_name="us-east-1")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def settle() -> None:
    """Collect, then freeze what survives (moto's tables live in this process; a Lambda's garbage
    collector never walks DynamoDB's data), so that measured requests pay only for their own garbage."""
    gc.collect()
    gc.freeze()
