"""The slot for the authorization lookup (issue 11, point 3): what checking a caller's tenant grants
costs on the hot path. It must cost no extra round trip once cached; the benchmark measures the
first request of a caller (cold cache) and the next ones (warm), against the same request made
without a caller identity.

Not available until the project's access code exists. To make this case measure, the access code's
author sets CALLER to the API Gateway `requestContext` fragment of a caller granted the default
tenant (what an IAM or Cognito authorizer puts there), e.g.
    {"identity": {"userArn": "arn:aws:iam::123456789012:role/Administrator", ...}}
or {"authorizer": {"claims": {"cognito:groups": "Administrator", ...}}},
and, if the grants live in the table, GRANT to a function(api) that grants that caller through
the public API or a script (called once, before measuring).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from bench.calls import TRACKER
from bench.harness import median

CALLER: dict[str, Any] | None = None
GRANT: Callable[[Any], None] | None = None
NOT_AVAILABLE = ("not available: no caller identity to send (bench/authorization.py CALLER is unset until "
                 "the access code of issue 11 exists)")


def measure(api: Any, path: str, reps: int, caller: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET `path` as `caller` (cold, then warm) and without an identity, interleaved: the round trips
    and handler time the identity adds."""
    caller = caller if caller is not None else CALLER
    if caller is None:
        return {"status": NOT_AVAILABLE, "extra_round_trips_cold": None, "extra_round_trips_warm": None,
                "added_ms_warm": None}
    if GRANT is not None:
        GRANT(api)
    original = api.context_fragment
    results: dict[str, Any] = {}
    samples: dict[str, list[float]] = {"anonymous": [], "caller": []}
    trips: dict[str, list[int]] = {"anonymous": [], "caller": []}
    try:
        for rep in range(reps + 1):
            for label in (("caller", "anonymous") if rep % 2 == 0 else ("anonymous", "caller")):
                api.context_fragment = caller if label == "caller" else None
                TRACKER.start()
                api.reset()
                gc.disable()
                try:
                    reply = api.get(path)
                finally:
                    gc.enable()
                calls = TRACKER.stop()
                if reply.status != 200:
                    raise RuntimeError(f"authorization: GET {path} as {label}: {reply.status} {reply.text[:300]}")
                trips[label].append(len(calls))
                if rep:
                    samples[label].append(api.cpu * 1000)
    finally:
        api.context_fragment = original
    plain = trips["anonymous"][-1]
    results.update(
        status="measured",
        round_trips_without_identity=plain,
        extra_round_trips_cold=trips["caller"][0] - plain,  # the caller's first request
        extra_round_trips_warm=max(trips["caller"][1:] or [0]) - plain,
        added_ms_warm=round(median(samples["caller"]) - median(samples["anonymous"]), 3),
    )
    return results
