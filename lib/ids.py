"""Service id generation: time-ordered 63-bit integers with no central counter.

Layout (Snowflake-like): 42 bits of milliseconds since 2020-01-01 (enough until 2159) followed by
21 random bits. Ids from different Lambdas only collide when two are made in the same millisecond
with the same 21 random bits (p = 1 / 2 097 152 per pair); the store creates services with a
conditional put, so a collision is detected and retried, never silently merged.
"""

from __future__ import annotations

import secrets

from lib import clock

_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
_RANDOM_BITS = 21


def new_service_id() -> str:
    """A new service id: decimal string of a positive 64-bit integer that grows with time."""
    elapsed = max(clock.now_ms() - _EPOCH_MS, 0)
    return str((elapsed << _RANDOM_BITS) | secrets.randbits(_RANDOM_BITS) or 1)
