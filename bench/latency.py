"""Latency as a chain: how many round trips of latency a caller waits for a request.

The request's DynamoDB calls are first recorded (on moto); then the same request is made again,
its calls answered from the recording (bench/calls.py) after a simulated round-trip time (RTT) per
HTTP attempt, injected in botocore's `before-send` in the thread that makes the call: calls in flight
on several threads (the store's pool) wait at the same time, and a pool whose threads are all busy
makes the next call wait for a free one, as on a network.

`latency_round_trips` is the longest sequence of injected waits each starting after the previous
one ended (bench/calls.chain). A wait can only begin after another ended if something made it wait
(the code needed the answer, or every thread of the pool was busy), so the request cannot have taken
less than that many RTTs; it is a count, not a time, and needs no subtraction of CPU time. The
machine can only lengthen it, never shorten it: when calls meant to overlap are started late (a
thread waiting for the interpreter while others parse their answers), one wait may end before the
next begins. So the least over the runs is reported, every run's count beside it, and the RTT is
long beside the CPU time of a call (20 ms against a fraction of a millisecond) so that this is rare.
`latency_wall_ms` is the wall time of the request under the RTT: the chain's RTTs plus the CPU work
no wait hid. (A wall-time difference, latency minus zero latency divided by the RTT, is not exact:
at zero latency the pool's threads compete for the interpreter, under latency they sleep, so the
CPU time itself changes with the RTT.)
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable
from typing import Any

from bench.calls import TRACKER, chain

RTT_S = 0.020  # the simulated round trip of each DynamoDB call


def measure(api: Any, request: Callable[[], Any], calls: list[Any], expect: Callable[[Any], bool],
            runs: int, rtt_s: float = RTT_S) -> dict[str, Any]:
    """`request()` (which makes its requests through `api`, a TimedApi) replayed from `calls`
    `runs` times with `rtt_s` per HTTP attempt; `expect(outcome)` checks that every replay answered
    as the recorded request did."""
    from bench.operations import Moto

    chains: list[int] = []
    walls: list[float] = []
    with Moto():
        for _ in range(runs):
            with TRACKER.replaying(calls):
                TRACKER.start()
                TRACKER.latency_s = rtt_s
                api.reset()
                gc.disable()
                try:
                    outcome = request()
                finally:
                    gc.enable()
                    TRACKER.latency_s = 0.0
                seen = TRACKER.stop()
            if not expect(outcome):
                raise RuntimeError(f"replay under latency answered differently: {str(outcome)[:300]}")
            walls.append(api.wall)
            chains.append(chain(seen))
    return {
        "latency_round_trips": min(chains),
        "latency_round_trips_per_run": chains,
        "latency_wall_ms": round(statistics.median(walls) * 1000, 2),
        "latency_rtt_ms": rtt_s * 1000,
    }
