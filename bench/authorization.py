"""The authorization lookup (issue 11, point 3): what checking a caller's grant costs. Deployed
(ACCESS_MODE=iam), every request's caller is looked up in the table (lib/api/access.py: one
GetItem of `ACCESS#<principal>` / `#GRANT`) and cached per execution environment, so that a warm
function answers without an extra round trip.

The benchmark keeps those lookups apart from the operations' calls (bench/calls.py `side`): the
cache, not the request, decides when they happen (a grant is fetched again once a minute). This
case measures them on purpose: for each round, a new principal is granted (scripts/grants.py) and
makes the same GET twice: the first request (its grant not cached: cold) and the second (warm).
"""

from __future__ import annotations

import gc
import os
from typing import Any

from bench import harness
from bench.calls import TRACKER
from bench.harness import median

NOT_AVAILABLE = "not available: the functions do not check grants (ACCESS_MODE is not iam)"


def is_grant_lookup(operation: str, params: dict[str, Any]) -> bool:
    """The access check's grant lookup (the item layout lib/api/access.py and scripts/grants.py
    document: PK `ACCESS#<principal>`, SK `#GRANT`)."""
    key = params.get("Key") or {}
    return operation == "GetItem" and str((key.get("PK") or {}).get("S", "")).startswith("ACCESS#")


def measure(api: Any, path: str, reps: int) -> dict[str, Any]:
    """GET `path` as a newly granted caller, twice, `reps` times (plus a warm-up round): the grant
    lookups and the handler time of the cold and the warm request."""
    if os.environ.get("ACCESS_MODE", "").lower() != "iam":
        return {"status": NOT_AVAILABLE, "extra_round_trips_cold": None, "extra_round_trips_warm": None}
    original = api.context_fragment
    cold_ms: list[float] = []
    warm_ms: list[float] = []
    lookups: dict[str, list[int]] = {"cold": [], "warm": []}
    trips: list[int] = []
    try:
        for rep in range(reps + 1):
            principal = f"arn:aws:iam::123456789012:role/bench-caller-{os.getpid()}-{rep}"
            harness.grant(harness.TABLE, principal)
            api.context_fragment = {"identity": {"userArn": principal}}
            for label, samples in (("cold", cold_ms), ("warm", warm_ms)):
                TRACKER.start()
                api.reset()
                gc.disable()
                try:
                    reply = api.get(path)
                finally:
                    gc.enable()
                calls = TRACKER.stop()
                if reply.status != 200:
                    raise RuntimeError(f"authorization: GET {path} ({label}): {reply.status} {reply.text[:300]}")
                lookups[label].append(len(TRACKER.side_calls))
                trips.append(len(calls))
                if rep:
                    samples.append(api.cpu * 1000)
    finally:
        api.context_fragment = original
    cold, warm = median(cold_ms), median(warm_ms)
    return {
        "status": "measured",
        "request": f"GET {path}",
        "round_trips_of_the_request": max(trips),
        "extra_round_trips_cold": max(lookups["cold"]),
        "extra_round_trips_warm": max(lookups["warm"]),
        "cold_ms": round(cold, 3),
        "warm_ms": round(warm, 3),
        "cold_minus_warm_ms": round(cold - warm, 3),
        "rounds": reps,
    }
