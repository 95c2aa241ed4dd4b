"""Logs, metrics and traces of every function, configured from Powertools' environment variables
(POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL, POWERTOOLS_TRACE_DISABLED).

* The logger and the EMF metrics every function shares; what each API request logs and counts is
  lib.api.telemetry's.
* X-Ray: the X-Ray SDK costs a few hundred milliseconds to import even when tracing is disabled, so
  the tracer is only built where it can record anything: inside Lambda with tracing not disabled
  (template.yaml turns active tracing on). It patches botocore only, which gives one subsegment per
  DynamoDB call. Elsewhere (tests, local run, benchmark) `tracer` is None.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:  # the Tracer is imported only when tracing is on (it pulls in the X-Ray SDK)
    from aws_lambda_powertools import Tracer

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "context-services"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ContextServices"))

def _tracing_enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true")
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not disabled and "AWS_SAM_LOCAL" not in os.environ


def _make_tracer() -> Tracer | None:
    if not _tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer

    # botocore only: DynamoDB, S3 and SQS calls become subsegments; patching everything X-Ray knows
    # would import HTTP libraries this code never uses.
    return Tracer(patch_modules=("botocore",))


tracer = _make_tracer()

# log_metrics publishes the ColdStart metric; invocations that add no other metric are normal here.
warnings.filterwarnings("ignore", message="No application metrics to publish")
