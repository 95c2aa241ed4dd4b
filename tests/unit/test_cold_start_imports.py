"""What a cold start imports: each function's handler, imported with `-X importtime` in a fresh
process as Lambda imports it (its environment from template.yaml, tracing on), loads none of the
modules that no request uses and that lib/api/framework_imports.py keeps out (Powertools' other
resolvers and event classes, asyncio), while the X-Ray SDK still patches botocore and the packages
still answer every name they define."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from local import template

# Modules that came with the import before and that no request of the API uses (bench/imports.py
# lists what is loaded and never runs: docs/BENCHMARKS.md, "Cold start").
REMOVED = (
    "asyncio",
    "aws_lambda_powertools.event_handler.appsync",
    "aws_lambda_powertools.event_handler.events_appsync",
    "aws_lambda_powertools.event_handler.bedrock_agent",
    "aws_lambda_powertools.event_handler.bedrock_agent_function",
    "aws_lambda_powertools.event_handler.http_resolver",
    "aws_lambda_powertools.event_handler.vpc_lattice",
    "aws_lambda_powertools.utilities.data_classes.code_pipeline_job_event",
    "aws_lambda_powertools.utilities.data_classes.s3_event",
    "aws_lambda_powertools.utilities.data_classes.kafka_event",
    "aws_lambda_powertools.utilities.data_classes.appsync_resolver_event",
    "wrapt.synchronization",
)
# The API's functions (the viewer's serves static files with the standard library alone:
# tests/unit/test_viewer_function.py; the change feed's publisher has no resolver).
HANDLERS = sorted({function.handler for function in template.functions()}
                  - {"handlers.viewer.lambda_handler", "handlers.feed.lambda_handler"})
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.M)


def _lambda_environment(function: str) -> dict[str, str]:
    """A deployed function's environment (template.yaml's plain values, Lambda's own variables,
    tracing on); what template.yaml takes from resources is stood in for."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update({key: value for key, value in template.plain_environment().items() if value})
    for each in template.functions():
        if each.handler == function:
            env.update({key: str(value) for key, value in each.environment.items()
                        if isinstance(value, (str, int)) and not isinstance(value, bool)})
    env.update(AWS_LAMBDA_FUNCTION_NAME="import-time", LAMBDA_TASK_ROOT=str(template.ROOT),
               AWS_EXECUTION_ENV="AWS_Lambda_python3.13", AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", TABLE_NAME="import-time",
               PAGE_TOKEN_SECRET="import-time-paging-secret-of-32-chars", ACCESS_MODE="iam", EVENT_BUS_NAME="import-time")
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    return env


def _fresh(code: str, function: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=template.ROOT,
                          env=_lambda_environment(function), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("handler", HANDLERS)
def test_a_cold_start_imports_none_of_the_removed_modules(handler):
    module = handler.rsplit(".", 1)[0]
    done = _fresh(f"import json, sys, {module} as m, botocore.client as c; "
                  f"print(json.dumps([type(m.app).__name__, type(c.BaseClient._make_api_call).__name__, "
                  f"sorted(sys.modules)]))", handler)
    assert done.returncode == 0, done.stderr[-3000:]
    app, api_call, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    imported = set(IMPORTED.findall(done.stderr)) | set(loaded)
    assert module in imported and "aws_lambda_powertools.event_handler.api_gateway" in imported  # it did import
    back = sorted(name for name in imported if name.startswith(REMOVED))
    assert back == [], f"{module} imports again what no request uses: {back}"
    assert app == "ContractResolver"
    assert "Wrapper" in api_call, "tracing is on: the X-Ray SDK must still wrap botocore's calls"


def test_the_deferred_packages_still_answer_every_name():
    """A name the package's own __init__ defines is there when asked for (then loaded as shipped)."""
    code = ("import handlers.services, sys; "
            "from aws_lambda_powertools.event_handler import AppSyncResolver, APIGatewayRestResolver; "
            "from aws_lambda_powertools.utilities.data_classes import S3Event, event_source; "
            "import wrapt; from wrapt import synchronized; "
            "print(AppSyncResolver.__name__, S3Event.__name__, callable(synchronized), bool(wrapt.__version__), "
            "'asyncio' in sys.modules)")
    done = _fresh(code, "handlers.services.lambda_handler")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["AppSyncResolver", "S3Event", "True", "True", "True"]


@pytest.mark.parametrize("handler", sorted(function.handler for function in template.functions()))
def test_every_handler_imports_with_the_collector_paused_and_leaves_it_on(handler):
    """handlers/__init__.py pauses the garbage collector while a handler imports (lib/api/
    framework_imports.py): once imported, every function's handler has it collecting again, and
    those built by handler_for or the feed's handler have frozen what they imported (the viewer's
    own package never pauses it)."""
    module = handler.rsplit(".", 1)[0]
    done = _fresh(f"import gc; import {module}; print(gc.isenabled(), gc.get_freeze_count())", handler)
    assert done.returncode == 0, done.stderr[-3000:]
    enabled, frozen = done.stdout.split()
    assert enabled == "True", f"{module} leaves the garbage collector paused"
    if module != "handlers.viewer":
        assert int(frozen) > 50_000, f"{module}: {frozen} objects frozen"
