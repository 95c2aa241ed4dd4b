"""Logger, metrics and tracer of every function, configured from Powertools' environment variables
(POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL, POWERTOOLS_TRACE_DISABLED).

The X-Ray SDK behind Powertools' Tracer costs a few hundred milliseconds to import even when
tracing is disabled, so the tracer is only built where it can record anything: inside Lambda with
tracing not disabled (template.yaml turns active tracing on). Elsewhere (tests, local run, benchmark)
`tracer` is None and handlers run untraced.
"""

from __future__ import annotations

import os
import warnings

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "context-services"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ContextServices"))


def _tracing_enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true")
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not disabled and "AWS_SAM_LOCAL" not in os.environ


def _make_tracer():
    if not _tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer

    return Tracer()


tracer = _make_tracer()

# log_metrics publishes the ColdStart metric; invocations that add no other metric are normal here.
warnings.filterwarnings("ignore", message="No application metrics to publish")
