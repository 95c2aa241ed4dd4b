"""The write rate of an import: at most the operator's limit (items a second), and slower for a while
whenever DynamoDB pushes back (adaptive back-off: the allowed rate halves at a throttling answer
and grows again by 5 % + 5 items a second with each request that goes through, up to the limit).

A token bucket: a request of n items waits until n tokens are there; tokens accrue at the allowed
rate, up to one second's worth (at least one full request), and the bucket starts with one request's
worth, so over any T seconds at most `rate × T + 25` items are written. Push-backs close together
(within a second: the same congestion, seen by the requests already on their way) halve it once.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

FULL_REQUEST = 25
MIN_RATE = 1.0  # items a second: the floor of the adaptive back-off
RECOVERY = 0.05  # growth of the allowed rate after each request that went through: 5 % ...
RECOVERY_ITEMS = 5.0  # ... plus 5 items a second, so a low rate recovers in tens of requests, not hundreds
CUT_INTERVAL_S = 1.0  # push-backs within this time of a cut are the same congestion: one cut
WINDOW_S = 5.0  # how far back the observed rate looks (throttling without a limit set)
UNKNOWN_RATE = 100.0  # assumed when throttled before anything was measured


@dataclass
class Pace:
    """Rate limit and adaptive back-off (see the module doc). `limit` None: no limit until DynamoDB
    pushes back; then the observed rate, halved, becomes the allowed rate."""

    limit: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    allowed: float | None = None
    throttles: int = 0
    slept_s: float = 0.0
    lowest: float | None = None  # the slowest rate throttling brought it to
    _cut_at: float | None = None
    _tokens: float = float(FULL_REQUEST)
    _last: float | None = None
    _recent: deque[tuple[float, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit <= 0:
            raise ValueError("the rate limit must be a positive number of items a second")
        self.allowed = self.limit

    def wait(self, items: int) -> None:
        """Block until `items` may be sent."""
        if self.allowed is None:
            return
        now = self.clock()
        capacity = max(float(FULL_REQUEST), self.allowed)
        if self._last is not None:
            self._tokens = min(capacity, self._tokens + (now - self._last) * self.allowed)
        self._last = now
        if self._tokens < items:
            pause = (items - self._tokens) / self.allowed
            self.sleep(pause)
            self.slept_s += pause
            self._last = now + pause
            self._tokens = float(items)
        self._tokens -= items

    def throttled(self) -> None:
        """DynamoDB refused a request or handed items back: halve the allowed rate (once a second at most)."""
        self.throttles += 1
        now = self.clock()
        if self._cut_at is not None and now - self._cut_at < CUT_INTERVAL_S:
            return
        self._cut_at = now
        current = self.allowed if self.allowed is not None else self.observed_rate() or UNKNOWN_RATE
        self.allowed = max(MIN_RATE, current / 2)
        self.lowest = self.allowed if self.lowest is None else min(self.lowest, self.allowed)
        self._tokens = min(self._tokens, float(FULL_REQUEST))

    def written(self, items: int) -> None:
        """A request went through: note its items; let the allowed rate grow back towards the limit."""
        now = self.clock()
        self._recent.append((now, items))
        while self._recent and self._recent[0][0] < now - WINDOW_S:
            self._recent.popleft()
        if self.allowed is not None and (self.limit is None or self.allowed < self.limit):
            grown = self.allowed * (1 + RECOVERY) + RECOVERY_ITEMS
            self.allowed = grown if self.limit is None else min(self.limit, grown)

    def observed_rate(self) -> float | None:
        """Items a second acknowledged over the last few seconds (None before two requests)."""
        if len(self._recent) < 2:
            return None
        span = self._recent[-1][0] - self._recent[0][0]
        return sum(n for _, n in list(self._recent)[1:]) / span if span > 0 else None
